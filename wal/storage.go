package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// ErrCorrupt is wrapped by the errors Open and reads return for data on
// disk that fails its checksum or cannot have been written by this package:
// damage anywhere except a torn write at the very end of the log. The error
// is a *CorruptError naming the file and offset. Storage never serves a
// log that corruption has silently shortened; restore the directory from a
// replica or a backup.
var ErrCorrupt = errors.New("wal: corrupt data")

// ErrLocked is wrapped by the error Open returns when another Storage, in
// this or another process, has the directory open.
var ErrLocked = errors.New("wal: directory is locked by another process")

// ErrFailed is wrapped, with the error that caused it, by the errors every
// write (Save, CreateSnapshot, Compact) returns once a write, sync,
// creation, rename or removal of a file has failed: the Storage
// acknowledges nothing after such a failure. Reads go on serving what was
// stored before it. Close the Storage and open it again: Open syncs what
// it finds before serving it.
//
// Every Save that returned nil before the failure is durable. What was
// written since the last successful sync must be considered lost, and
// reopening cannot always tell: on Linux a failed fsync may have marked
// pages clean that never reached the disk, so they read back as written
// and Open's own sync passes over them. A restarted node could then build
// on data the disk does not hold, and a later power failure would take it
// back (Open then reports ErrCorrupt, or a shorter log). After a failed
// sync, reboot the machine before reopening (Open then reads what the disk
// holds), or rebuild the node from its peers.
var ErrFailed = errors.New("wal: storage failed")

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("wal: storage is closed")

// CorruptError describes corrupt data: the file, the byte offset of the
// damaged record, and what is wrong. It wraps ErrCorrupt.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt data in %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corruptf(file string, off int64, format string, args ...any) error {
	return &CorruptError{File: file, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// Options tune a Storage. The zero value is ready to use.
type Options struct {
	// SegmentSize is the size segment files are preallocated to; a new
	// segment starts when the next write would not fit. A write larger
	// than a segment gets a segment of its own. Default 64 MiB.
	SegmentSize int64
	// CacheSize is how many bytes of the most recently written entries
	// stay in memory, so that the core reads them without touching the
	// disk. Default 8 MiB; negative disables the cache.
	CacheSize int
	// NoSync skips every fsync. The data is then only as durable as the
	// operating system's page cache: a process crash loses nothing, a power
	// failure can lose anything. For tests and simulations only.
	NoSync bool
	// FS is the file system the files are kept in; nil is the operating
	// system's. Tests use one that simulates power loss or injects
	// errors.
	FS FS
}

const (
	defaultSegmentSize = 64 << 20
	defaultCacheSize   = 8 << 20
	// maxSegmentSize keeps record offsets within 32 bits.
	maxSegmentSize = 1 << 31
)

func (o *Options) withDefaults() (Options, error) {
	r := *o
	if r.SegmentSize == 0 {
		r.SegmentSize = defaultSegmentSize
	}
	if r.SegmentSize < 4096 || r.SegmentSize > maxSegmentSize {
		return r, fmt.Errorf("wal: SegmentSize %d out of range [4096, %d]", r.SegmentSize, int64(maxSegmentSize))
	}
	if r.CacheSize == 0 {
		r.CacheSize = defaultCacheSize
	}
	if r.FS == nil {
		r.FS = osFS{}
	}
	return r, nil
}

// loc is where an entry lives on disk.
type loc struct {
	term uint64
	seq  uint64 // segment
	off  uint32 // of the record in the segment
	size uint32 // of the marshaled entry (the record's payload)
}

// Storage is a durable raft.Storage: a write-ahead log in segment files in
// one directory, plus the newest snapshot in a file of its own.
//
// The core reads it through the raft.Storage methods; the application
// writes to it from the Ready loop with Save, and compacts it with
// CreateSnapshot and Compact. All methods are safe for concurrent use:
// reads go on while a Save is writing or syncing, and see each Save whole
// once it has returned.
//
// Only one Storage at a time may have a directory open (a lock file
// enforces it across processes).
type Storage struct {
	dir  string
	fs   FS
	opts Options
	lock io.Closer

	// wmu serializes writers: Save, Compact, CreateSnapshot, Close.
	wmu sync.Mutex
	// The fields below up to mu are the writer's own, under wmu.
	tailOff int64    // end of the written data in the last segment
	tailHdr int64    // end of the last segment's header: it holds no records yet if tailOff == tailHdr
	dirty   bool     // the last segment has writes not yet synced
	buf     []byte   // reused for encoding
	offs    []uint32 // reused: record offsets of a Save's entries
	// failed is set when a write or sync failed: what is on disk is then
	// unknown, and every later write returns ErrFailed wrapping it.
	failed error

	// mu guards the state readers see. Writers hold wmu too when they
	// change it, so they may read it without mu.
	mu     sync.RWMutex
	closed bool
	segs   []*segment // oldest first, consecutive seqs; the last is written to
	snap   pb.Snapshot
	hs     pb.HardState
	// base is the compaction point: the log holds base+1 ... base+len(locs).
	// Invariant: snap.Metadata.Index <= base or base < snap.Metadata.Index
	// with the entries up to the snapshot still on disk.
	base     uint64
	baseTerm uint64
	locs     locIndex // locs.at(i) is the entry at base+1+i
	// cache holds the entries cacheFirst ... lastIndex, the most recently
	// written ones, as they were saved. cacheBytes is their payload size.
	cache      []pb.Entry
	cacheFirst uint64
	cacheBytes int
}

var _ raft.Storage = (*Storage)(nil)

// Dir returns the directory the Storage keeps its files in.
func (s *Storage) Dir() string { return s.dir }

func (s *Storage) lastIndex() uint64 { return s.base + uint64(s.locs.len()) }

// loc returns where the entry at index i is. Holds mu or wmu.
func (s *Storage) loc(i uint64) loc { return s.locs.at(int(i - s.base - 1)) }

// InitialState implements raft.Storage: the saved hard state and the
// configuration of the newest snapshot.
func (s *Storage) InitialState() (pb.HardState, pb.ConfState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return pb.HardState{}, pb.ConfState{}, ErrClosed
	}
	return s.hs, s.snap.Metadata.ConfState, nil
}

// HardState returns the saved hard state.
func (s *Storage) HardState() pb.HardState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.hs
}

// FirstIndex implements raft.Storage.
func (s *Storage) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.base + 1, nil
}

// LastIndex implements raft.Storage.
func (s *Storage) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.lastIndex(), nil
}

// Term implements raft.Storage. It never touches the disk.
func (s *Storage) Term(i uint64) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case s.closed:
		return 0, ErrClosed
	case i < s.base:
		return 0, raft.ErrCompacted
	case i == s.base:
		return s.baseTerm, nil
	case i > s.lastIndex():
		return 0, raft.ErrUnavailable
	}
	return s.loc(i).term, nil
}

// Snapshot implements raft.Storage: the newest snapshot (empty if none).
func (s *Storage) Snapshot() (pb.Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return pb.Snapshot{}, ErrClosed
	}
	return s.snap, nil
}

// Entries implements raft.Storage. Entries still in the cache are returned
// without copying (the slice is shared: do not modify it); older ones are
// read from disk, one read per segment, and checked against their CRC.
func (s *Storage) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case s.closed:
		return nil, ErrClosed
	case lo > hi:
		return nil, fmt.Errorf("%w: invalid range [%d,%d)", raft.ErrUnavailable, lo, hi)
	case lo <= s.base:
		return nil, raft.ErrCompacted
	case hi > s.lastIndex()+1:
		return nil, fmt.Errorf("%w: entries [%d,%d) past the last index %d", raft.ErrUnavailable, lo, hi, s.lastIndex())
	case lo == hi:
		return nil, nil
	}
	if lo >= s.cacheFirst {
		return limitSize(s.cache[lo-s.cacheFirst:hi-s.cacheFirst:hi-s.cacheFirst], maxSize), nil
	}
	// How many entries fit in maxSize (at least one), from the index alone.
	n, size := uint64(1), uint64(s.loc(lo).size)
	for ; lo+n < hi; n++ {
		size += uint64(s.loc(lo + n).size)
		if size > maxSize {
			break
		}
	}
	hi = lo + n
	ents := make([]pb.Entry, 0, n)
	diskHi := min(hi, s.cacheFirst)
	var err error
	if ents, err = readEntries(ents, 0, lo, diskHi, s.loc, s.segment); err != nil {
		return nil, err
	}
	if diskHi < hi {
		ents = append(ents, s.cache[:hi-s.cacheFirst]...)
	}
	return ents, nil
}

// segment returns the open segment seq. Holds mu or wmu.
func (s *Storage) segment(seq uint64) *segment { return s.segs[seq-s.segs[0].seq] }

// readEntries appends the entries [lo, hi) read from disk to ents, one
// read per run of entries in a segment: at(i) says where entry i is, seg
// returns an open segment by its sequence number. The entries are those
// of group (recGroupEntry records) or, if group is 0, of a single-group
// log (recEntry records).
func readEntries(ents []pb.Entry, group, lo, hi uint64, at func(uint64) loc, segAt func(uint64) *segment) ([]pb.Entry, error) {
	for lo < hi {
		first := at(lo)
		// The run of entries in the same segment, at increasing offsets.
		j := lo + 1
		for ; j < hi; j++ {
			l := at(j)
			if l.seq != first.seq || l.off < first.off {
				break
			}
		}
		last := at(j - 1)
		seg := segAt(first.seq)
		end := int64(last.off) + int64(frameSize(int(last.size)))
		buf := make([]byte, end-int64(first.off))
		if _, err := seg.f.ReadAt(buf, int64(first.off)); err != nil {
			return nil, fmt.Errorf("wal: read %s at %d: %w", seg.path, first.off, err)
		}
		for i := lo; i < j; i++ {
			l := at(i)
			rel := int(l.off - first.off)
			t, payload, _, st := readFrame(buf, rel)
			var e pb.Entry
			if st == frameOK && group != 0 {
				ok := t == recGroupEntry && len(payload) >= 8 && binary.LittleEndian.Uint64(payload) == group
				t, payload = recEntry, payload[min(8, len(payload)):]
				if !ok {
					st = frameBad
				}
			}
			if st != frameOK || t != recEntry || decodeEntry(payload, &e) != nil || e.Index != i {
				return nil, corruptf(seg.path, int64(l.off), "entry %d does not read back", i)
			}
			ents = append(ents, e)
		}
		lo = j
	}
	return ents, nil
}

// limitSize returns the longest prefix of ents within maxSize bytes, but at
// least one entry.
func limitSize(ents []pb.Entry, maxSize uint64) []pb.Entry {
	if len(ents) == 0 || maxSize == math.MaxUint64 {
		return ents
	}
	size := uint64(ents[0].Size())
	for n := 1; n < len(ents); n++ {
		size += uint64(ents[n].Size())
		if size > maxSize {
			return ents[:n:n]
		}
	}
	return ents
}

// Close syncs what is written, closes the files and releases the
// directory. Reads and writes after Close return ErrClosed.
func (s *Storage) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	var err error
	if s.dirty && s.failed == nil && !s.opts.NoSync {
		err = s.segs[len(s.segs)-1].f.Datasync()
	}
	for _, seg := range s.segs {
		if cerr := seg.f.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := s.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeFile removes a file the Storage no longer needs; failing to is not
// an error (Open ignores such leftovers) but is reported to the caller
// through the returned value for logging.
func removeFile(fs FS, path string) error {
	if err := fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
