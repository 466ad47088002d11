package crashfs

import (
	"errors"
	"io"
	"os"
)

// file is an open file of an FS.
type file struct {
	fs     *FS
	n      *node
	name   string
	gen    int
	flag   int
	off    int64 // for Write
	closed bool
}

var errReadOnly = errors.New("file not open for writing")

// begin checks the handle and accounts for op, with fs.mu held.
func (f *file) begin(op Op, write bool) error {
	switch {
	case f.closed:
		return &os.PathError{Op: op.String(), Path: f.name, Err: os.ErrClosed}
	case f.gen != f.fs.gen:
		return &os.PathError{Op: op.String(), Path: f.name, Err: ErrStale}
	case write && f.flag&(os.O_WRONLY|os.O_RDWR) == 0:
		return &os.PathError{Op: op.String(), Path: f.name, Err: errReadOnly}
	}
	return f.fs.begin(op, f.name)
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.begin(OpRead, false); err != nil {
		return 0, err
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.begin(OpWrite, true); err != nil {
		return 0, err
	}
	f.n.change(change{off: off, data: append([]byte(nil), p...)})
	return len(p), nil
}

func (f *file) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.begin(OpWrite, true); err != nil {
		return 0, err
	}
	f.n.change(change{off: f.off, data: append([]byte(nil), p...)})
	f.off += int64(len(p))
	return len(p), nil
}

func (f *file) sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.begin(OpSync, false); err != nil {
		return err
	}
	f.n.synced = append(f.n.synced[:0], f.n.data...)
	f.n.pending = nil
	return nil
}

// Sync makes the data durable; the directory entry needs SyncDir.
func (f *file) Sync() error { return f.sync() }

// Datasync is Sync: the file's size is part of what it makes durable.
func (f *file) Datasync() error { return f.sync() }

func (f *file) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.begin(OpTruncate, true); err != nil {
		return err
	}
	f.n.change(change{size: size})
	return nil
}

func (f *file) Preallocate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.begin(OpPreallocate, true); err != nil {
		return err
	}
	if size > int64(len(f.n.data)) {
		f.n.change(change{size: size})
	}
	return nil
}

func (f *file) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, &os.PathError{Op: "stat", Path: f.name, Err: os.ErrClosed}
	}
	if f.gen != f.fs.gen {
		return 0, &os.PathError{Op: "stat", Path: f.name, Err: ErrStale}
	}
	return int64(len(f.n.data)), nil
}

// Close closes the file; like close(2), it makes nothing durable.
func (f *file) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return &os.PathError{Op: "close", Path: f.name, Err: os.ErrClosed}
	}
	f.closed = true
	if f.gen != f.fs.gen {
		return &os.PathError{Op: "close", Path: f.name, Err: ErrStale}
	}
	return nil
}
