// Package crashfs is an in-memory wal.FS for testing durability under
// power loss, and a place to inject I/O errors.
//
// It keeps, beside what the files hold now, what a power failure would
// leave of them. Data written to a file is durable only once that file is
// synced (Sync or Datasync); a file's creation, rename or removal, and a
// directory's creation, only once the directory holding it is synced
// (SyncDir). Crash throws away what is not durable, as a power failure
// would, in one of three ways (Mode): everything unsynced is lost, or an
// ordered prefix of it survives with the first write after the prefix torn
// at a sector boundary, or an arbitrary subset of the unsynced sectors
// survives. Directory changes that were not synced survive as an ordered
// prefix (as a journaling file system commits them) except under
// DropUnsynced, which loses them all. Kill is a process dying without a
// power failure: everything stays as written, no more durable than it was.
//
// The model is strict on purpose: a real file system often persists more
// than it promised, which hides a missing sync; this one persists nothing
// it did not promise.
//
// Paths are slash-separated and absolute ("/data/node-1"); "/" always
// exists. All methods are safe for concurrent use.
package crashfs

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sync"

	"github.com/raftcore/raft/wal"
)

// SectorSize is the unit a simulated disk writes atomically: a torn write
// keeps or loses whole sectors (counted from the start of the file).
const SectorSize = 512

// Mode says what a Crash keeps of the data that was not synced.
type Mode int

const (
	// DropUnsynced loses every write and every directory change that was
	// not synced.
	DropUnsynced Mode = iota
	// TearWrites keeps, for each file, a random prefix of the unsynced
	// writes in the order they were made, plus a prefix of the sectors of
	// the next one; and a random prefix of the unsynced directory
	// changes.
	TearWrites
	// ScrambleSectors keeps each unsynced sector of each write (and each
	// unsynced size change) or not, at random: later sectors may survive
	// where earlier ones did not, as a disk that reorders writes leaves
	// them. Directory changes as with TearWrites.
	ScrambleSectors
)

func (m Mode) String() string {
	switch m {
	case DropUnsynced:
		return "drop-unsynced"
	case TearWrites:
		return "tear-writes"
	case ScrambleSectors:
		return "scramble-sectors"
	}
	return fmt.Sprintf("mode-%d", int(m))
}

// Op is a kind of operation, for counting and for injecting faults.
type Op int

const (
	// OpCreate is an OpenFile that creates or truncates a file.
	OpCreate Op = iota
	// OpOpen is an OpenFile of an existing file, without O_TRUNC.
	OpOpen
	// OpWrite is File.WriteAt and File.Write.
	OpWrite
	// OpRead is File.ReadAt.
	OpRead
	// OpSync is File.Sync and File.Datasync.
	OpSync
	// OpTruncate is File.Truncate.
	OpTruncate
	// OpPreallocate is File.Preallocate.
	OpPreallocate
	// OpRename is FS.Rename.
	OpRename
	// OpRemove is FS.Remove.
	OpRemove
	// OpMkdir is FS.MkdirAll.
	OpMkdir
	// OpSyncDir is FS.SyncDir.
	OpSyncDir
	numOps
)

var opNames = [numOps]string{
	"create", "open", "write", "read", "sync", "truncate", "preallocate",
	"rename", "remove", "mkdir", "sync-dir",
}

func (o Op) String() string {
	if o >= 0 && o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("op-%d", int(o))
}

// mutating reports whether o changes the file system: the steps a power
// cut can fall between.
func (o Op) mutating() bool { return o != OpOpen && o != OpRead }

// ErrPowerCut is returned by every operation after the power was cut
// (CutPowerAfter), until Crash.
var ErrPowerCut = errors.New("crashfs: power cut")

// ErrStale is returned by a file or lock opened before the last Crash.
var ErrStale = errors.New("crashfs: file opened before a crash")

// node is a file or a directory.
type node struct {
	dir bool
	// data is the file as it reads now; synced as it was at the last
	// sync; pending the changes since, in order.
	data    []byte
	synced  []byte
	pending []change
}

// change is a write (data != nil) or a size change of a file.
type change struct {
	off  int64
	data []byte
	size int64
}

// nsChange is a change to a directory: entry name now names n (nil:
// removed).
type nsChange struct {
	name string
	n    *node
}

// FS is the crash-simulating file system. The zero value is not ready;
// use New.
type FS struct {
	mu sync.Mutex
	// names is the namespace as it is now; durable as it was when each
	// directory was last synced; nsPending the changes since, in order.
	names     map[string]*node
	durable   map[string]*node
	nsPending []nsChange
	locks     map[string]bool
	gen       int // bumped by Crash; handles of older generations fail

	ops    int // mutating operations so far
	cutAt  int // the power fails before mutating operation cutAt (0: never)
	cut    bool
	counts [numOps]int
	faults []fault
}

type fault struct {
	op  Op
	nth int // of the op's calls, counted from when it was injected
	err error
}

// New returns an empty file system.
func New() *FS {
	return &FS{
		names:   map[string]*node{"/": {dir: true}},
		durable: map[string]*node{"/": {dir: true}},
		locks:   map[string]bool{},
	}
}

var _ wal.FS = (*FS)(nil)

// Ops returns how many mutating operations (every Op but OpOpen and
// OpRead) have been made since New: the points a power cut can fall
// between. A deterministic workload makes the same operations each run,
// so a test counts them once and then cuts the power before each.
func (fs *FS) Ops() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.ops
}

// CutPowerAfter makes the power fail once n more mutating operations have
// been made: every operation after them fails with ErrPowerCut and
// changes nothing, until Crash.
func (fs *FS) CutPowerAfter(n int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.cutAt = fs.ops + n + 1
	fs.cut = n < 0
}

// PowerCut reports whether the power has been cut and Crash not yet
// called.
func (fs *FS) PowerCut() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.cut
}

// InjectFault makes the nth call of op from now (1 is the next) fail with
// err and change nothing. Faults stay armed across Crash.
func (fs *FS) InjectFault(op Op, nth int, err error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.faults = append(fs.faults, fault{op: op, nth: fs.counts[op] + nth, err: err})
}

// Count returns how many times op has been called since New.
func (fs *FS) Count(op Op) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.counts[op]
}

// begin accounts for one operation, with fs.mu held, and returns the
// error it must fail with, if any.
func (fs *FS) begin(op Op, name string) error {
	if fs.cut {
		return &os.PathError{Op: op.String(), Path: name, Err: ErrPowerCut}
	}
	if op.mutating() {
		fs.ops++
		if fs.ops == fs.cutAt {
			fs.cut = true
			return &os.PathError{Op: op.String(), Path: name, Err: ErrPowerCut}
		}
	}
	fs.counts[op]++
	for i, f := range fs.faults {
		if f.op == op && f.nth == fs.counts[op] {
			fs.faults = slices.Delete(fs.faults, i, i+1)
			return &os.PathError{Op: op.String(), Path: name, Err: f.err}
		}
	}
	return nil
}

// Crash simulates a power failure and a reboot: whatever was not durable
// is lost as mode says (seed picks what survives under TearWrites and
// ScrambleSectors), every open file and lock is invalidated (they fail
// with ErrStale), and the power is on again.
func (fs *FS) Crash(mode Mode, seed uint64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	rng := rand.New(rand.NewPCG(seed, 0x6372617368))
	names := maps.Clone(fs.durable)
	if mode != DropUnsynced && len(fs.nsPending) > 0 {
		for _, c := range fs.nsPending[:rng.IntN(len(fs.nsPending)+1)] {
			applyNS(names, c)
		}
	}
	// An entry whose directory did not survive is gone with it.
	for p := range names {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if names[d] == nil {
				delete(names, p)
				break
			}
		}
	}
	seen := map[*node]bool{}
	for _, p := range slices.Sorted(maps.Keys(names)) { // in order: rng decides
		n := names[p]
		if n.dir || seen[n] {
			continue
		}
		seen[n] = true
		n.data = n.survivors(mode, rng)
		n.synced = slices.Clone(n.data)
		n.pending = nil
	}
	fs.names, fs.durable, fs.nsPending = names, maps.Clone(names), nil
	fs.locks = map[string]bool{}
	fs.gen++
	fs.cut, fs.cutAt = false, 0
}

// Kill simulates the death of the process using the file system, with
// no power failure: what it wrote stays, in the operating system's cache,
// and is no more durable than it was (a later Crash still loses what was
// not synced); every open file and lock is invalidated (they fail with
// ErrStale), and the power, if cut, is on again. Cutting the power
// (CutPowerAfter) and then calling Kill is a process killed before that
// operation.
func (fs *FS) Kill() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.locks = map[string]bool{}
	fs.gen++
	fs.cut, fs.cutAt = false, 0
}

func applyNS(names map[string]*node, c nsChange) {
	if c.n == nil {
		delete(names, c.name)
	} else {
		names[c.name] = c.n
	}
}

// survivors returns what a crash leaves of the file.
func (n *node) survivors(mode Mode, rng *rand.Rand) []byte {
	data := slices.Clone(n.synced)
	switch mode {
	case DropUnsynced:
		return data
	case TearWrites:
		keep := rng.IntN(len(n.pending) + 1)
		for _, c := range n.pending[:keep] {
			data = c.apply(data)
		}
		if keep < len(n.pending) && n.pending[keep].data != nil {
			c := n.pending[keep]
			sectors := splitSectors(c.off, len(c.data))
			part := sectors[rng.IntN(len(sectors))]
			data = change{off: c.off, data: c.data[:part]}.apply(data)
		}
	case ScrambleSectors:
		for _, c := range n.pending {
			if c.data == nil {
				if rng.IntN(2) == 0 {
					data = c.apply(data)
				}
				continue
			}
			start := 0
			for _, end := range splitSectors(c.off, len(c.data)) {
				if end > start && rng.IntN(2) == 0 {
					data = change{off: c.off + int64(start), data: c.data[start:end]}.apply(data)
				}
				start = end
			}
		}
	}
	return data
}

// splitSectors returns the ends (relative to off) of the sector-aligned
// pieces of an n-byte write at off: 0 first (nothing of it), n last.
func splitSectors(off int64, n int) []int {
	ends := []int{0}
	next := (off/SectorSize + 1) * SectorSize
	for ; next < off+int64(n); next += SectorSize {
		ends = append(ends, int(next-off))
	}
	return append(ends, n)
}

func (c change) apply(data []byte) []byte {
	if c.data == nil {
		if c.size <= int64(len(data)) {
			return data[:c.size]
		}
		return append(data, make([]byte, c.size-int64(len(data)))...)
	}
	if end := c.off + int64(len(c.data)); end > int64(len(data)) {
		data = append(data, make([]byte, end-int64(len(data)))...)
	}
	copy(data[c.off:], c.data)
	return data
}

// change records and applies a change to the file.
func (n *node) change(c change) {
	n.pending = append(n.pending, c)
	n.data = c.apply(n.data)
}

func clean(name string) string { return path.Clean("/" + name) }

func notExist(op, name string) error {
	return &os.PathError{Op: op, Path: name, Err: iofs.ErrNotExist}
}

// dirOK reports whether the directory of name exists.
func (fs *FS) dirOK(name string) bool {
	d := fs.names[path.Dir(name)]
	return d != nil && d.dir
}

// setName changes the namespace now and records the change as pending.
func (fs *FS) setName(name string, n *node) {
	c := nsChange{name: name, n: n}
	applyNS(fs.names, c)
	fs.nsPending = append(fs.nsPending, c)
}

// OpenFile implements wal.FS.
func (fs *FS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	name = clean(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.names[name]
	op := OpOpen
	if (n == nil && flag&os.O_CREATE != 0) || (n != nil && flag&os.O_TRUNC != 0) {
		op = OpCreate
	}
	if err := fs.begin(op, name); err != nil {
		return nil, err
	}
	switch {
	case n != nil && n.dir:
		return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
	case n != nil && flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, &os.PathError{Op: "open", Path: name, Err: iofs.ErrExist}
	case n == nil && flag&os.O_CREATE == 0:
		return nil, notExist("open", name)
	case n == nil && !fs.dirOK(name):
		return nil, notExist("open", path.Dir(name))
	case n == nil:
		n = &node{}
		fs.setName(name, n)
	case flag&os.O_TRUNC != 0:
		n.change(change{size: 0})
	}
	return &file{fs: fs, n: n, name: name, gen: fs.gen, flag: flag}, nil
}

// Rename implements wal.FS.
func (fs *FS) Rename(oldpath, newpath string) error {
	oldpath, newpath = clean(oldpath), clean(newpath)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.begin(OpRename, oldpath); err != nil {
		return err
	}
	n := fs.names[oldpath]
	if n == nil {
		return notExist("rename", oldpath)
	}
	if !fs.dirOK(newpath) {
		return notExist("rename", newpath)
	}
	if t := fs.names[newpath]; t != nil && t.dir {
		return &os.PathError{Op: "rename", Path: newpath, Err: errors.New("is a directory")}
	}
	fs.setName(newpath, n)
	fs.setName(oldpath, nil)
	return nil
}

// Remove implements wal.FS.
func (fs *FS) Remove(name string) error {
	name = clean(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.begin(OpRemove, name); err != nil {
		return err
	}
	n := fs.names[name]
	if n == nil {
		return notExist("remove", name)
	}
	if n.dir && len(fs.list(name)) > 0 {
		return &os.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
	}
	fs.setName(name, nil)
	return nil
}

func (fs *FS) list(dir string) []string {
	var names []string
	for p := range fs.names {
		if p != "/" && path.Dir(p) == dir {
			names = append(names, path.Base(p))
		}
	}
	slices.Sort(names)
	return names
}

// ReadDir implements wal.FS.
func (fs *FS) ReadDir(dir string) ([]string, error) {
	dir = clean(dir)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.cut {
		return nil, &os.PathError{Op: "readdir", Path: dir, Err: ErrPowerCut}
	}
	if n := fs.names[dir]; n == nil || !n.dir {
		return nil, notExist("readdir", dir)
	}
	return fs.list(dir), nil
}

// MkdirAll implements wal.FS.
func (fs *FS) MkdirAll(dir string, perm os.FileMode) ([]string, error) {
	dir = clean(dir)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.begin(OpMkdir, dir); err != nil {
		return nil, err
	}
	var missing []string
	for d := dir; fs.names[d] == nil; d = path.Dir(d) {
		missing = append(missing, d)
	}
	if n := fs.names[path.Dir(dir)]; n != nil && !n.dir {
		return nil, &os.PathError{Op: "mkdir", Path: dir, Err: errors.New("not a directory")}
	}
	slices.Reverse(missing)
	for _, d := range missing {
		fs.setName(d, &node{dir: true})
	}
	return missing, nil
}

// SyncDir implements wal.FS: the pending changes to entries of dir become
// durable.
func (fs *FS) SyncDir(dir string) error {
	dir = clean(dir)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.begin(OpSyncDir, dir); err != nil {
		return err
	}
	if n := fs.names[dir]; n == nil || !n.dir {
		return notExist("syncdir", dir)
	}
	rest := fs.nsPending[:0]
	for _, c := range fs.nsPending {
		if path.Dir(c.name) == dir {
			applyNS(fs.durable, c)
		} else {
			rest = append(rest, c)
		}
	}
	fs.nsPending = rest
	return nil
}

// Lock implements wal.FS. Locks are in memory only: a Crash releases them.
func (fs *FS) Lock(name string) (io.Closer, error) {
	name = clean(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.cut {
		return nil, &os.PathError{Op: "lock", Path: name, Err: ErrPowerCut}
	}
	if !fs.dirOK(name) {
		return nil, notExist("lock", path.Dir(name))
	}
	if fs.locks[name] {
		return nil, fmt.Errorf("%w: %s", wal.ErrLocked, path.Dir(name))
	}
	fs.locks[name] = true
	return &lock{fs: fs, name: name, gen: fs.gen}, nil
}

type lock struct {
	fs     *FS
	name   string
	gen    int
	closed bool
}

func (l *lock) Close() error {
	l.fs.mu.Lock()
	defer l.fs.mu.Unlock()
	if l.closed || l.gen != l.fs.gen {
		return ErrStale
	}
	l.closed = true
	delete(l.fs.locks, l.name)
	return nil
}
