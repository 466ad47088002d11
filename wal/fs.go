package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
)

// FS is the file system a Storage keeps its files in: every operation the
// log performs on its directory goes through it. The default (a nil
// Options.FS) is the operating system's. Tests substitute one that
// simulates power loss (keeping only what was synced) or injects errors.
//
// Paths are those the Storage builds with filepath.Join from the directory
// passed to Open.
type FS interface {
	// OpenFile opens a file with os.OpenFile's flags and permissions.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Rename replaces newpath with oldpath; the change is durable once
	// the directory is synced.
	Rename(oldpath, newpath string) error
	// Remove deletes a file; the change is durable once the directory is
	// synced.
	Remove(name string) error
	// ReadDir returns the names of the entries in dir.
	ReadDir(dir string) ([]string, error)
	// MkdirAll creates dir and any missing parents and returns the
	// directories it created, outermost first (each durable once its
	// parent is synced).
	MkdirAll(dir string, perm os.FileMode) ([]string, error)
	// SyncDir makes the creations, renames and removals in dir durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on the file name, creating it, for as
	// long as the returned Closer is open; an error wrapping ErrLocked if
	// another holder has it.
	Lock(name string) (io.Closer, error)
}

// File is an open file of an FS.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Writer
	io.Closer
	// Sync makes the file's data and metadata durable (fsync).
	Sync() error
	// Datasync makes the file's data durable, with the metadata needed to
	// read it back such as its size (fdatasync).
	Datasync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Preallocate reserves size bytes for the file and extends it to
	// that size if it is smaller; the new bytes read as zeros.
	Preallocate(size int64) error
	// Size returns the file's size.
	Size() (int64, error)
}

// osFS is the operating system's file system, the default FS.
type osFS struct{}

// osFile is an open *os.File.
type osFile struct{ *os.File }

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

func (osFS) Remove(name string) error { return os.Remove(name) }

func (osFS) ReadDir(dir string) ([]string, error) { return fileutil.ReadDir(dir) }

func (osFS) MkdirAll(dir string, perm os.FileMode) ([]string, error) {
	// The directories that do not exist yet, innermost first.
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return nil, err
	}
	for i, j := 0, len(missing)-1; i < j; i, j = i+1, j-1 {
		missing[i], missing[j] = missing[j], missing[i]
	}
	return missing, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := fileutil.OpenDir(dir)
	if err != nil {
		return err
	}
	err = fileutil.Fsync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) Lock(name string) (io.Closer, error) {
	l, err := fileutil.TryLockFile(name, os.O_WRONLY|os.O_CREATE, 0o600)
	if errors.Is(err, fileutil.ErrLocked) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, filepath.Dir(name))
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (f osFile) Sync() error { return fileutil.Fsync(f.File) }

func (f osFile) Datasync() error { return fileutil.Fdatasync(f.File) }

func (f osFile) Preallocate(size int64) error { return fileutil.Preallocate(f.File, size, true) }

func (f osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// readFile returns the whole of the file name.
func readFile(fs FS, name string) ([]byte, error) {
	f, err := fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	data := make([]byte, n)
	if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return data, nil
}

// syncSite names one of the syncs the log's durability depends on. The
// power-loss tests disable each in turn (skipSync) and show that a test
// then loses an acknowledged Save or finds the log unopenable.
type syncSite int

const (
	// syncSave: Save's fdatasync of the last segment.
	syncSave syncSite = iota
	// syncRotate: the full segment, before the next one is created.
	syncRotate
	// syncSegmentFile: a new segment's header, before its rename.
	syncSegmentFile
	// syncSegmentDir: the directory, after a new segment's rename.
	syncSegmentDir
	// syncSnapFile: a snapshot file, before its rename.
	syncSnapFile
	// syncSnapDir: the directory, after a snapshot file's rename.
	syncSnapDir
	// syncCompactDir: the directory, after Compact deleted segments.
	syncCompactDir
	// syncOpenTail: Open's fsync of the last segment, after replaying it
	// (and cutting off a torn tail).
	syncOpenTail
	// syncOpenDir: Open's sync of the directory.
	syncOpenDir
	// syncOpenParents: Open's sync of each directory above it.
	syncOpenParents
	numSyncSites
)

var syncSiteNames = [numSyncSites]string{
	"save", "rotate", "segment-file", "segment-dir", "snapshot-file",
	"snapshot-dir", "compact-dir", "open-tail", "open-dir", "open-parents",
}

func (s syncSite) String() string { return syncSiteNames[s] }

// skipSync, set only by tests, turns sync sites into no-ops.
var skipSync [numSyncSites]bool

// syncData makes f's data durable (fdatasync) for the given site.
func syncData(site syncSite, f File) error {
	if skipSync[site] {
		return nil
	}
	return f.Datasync()
}

// syncFile makes f's data and metadata durable (fsync) for the given site.
func syncFile(site syncSite, f File) error {
	if skipSync[site] {
		return nil
	}
	return f.Sync()
}

// syncDir makes dir's entries durable for the given site.
func syncDir(fs FS, site syncSite, dir string) error {
	if skipSync[site] {
		return nil
	}
	return fs.SyncDir(dir)
}
