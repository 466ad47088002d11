package wal

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// Save persists what one Ready asks for, in one write: the snapshot (if
// not empty), then the entries (an entry at index i replaces every stored
// entry at i or after), then the hard state (if not empty). It syncs once
// when anything must be durable: a snapshot, entries, or a change of term
// or vote (raft.MustSync). A change of the commit index alone is written
// but not synced: Raft does not need it durable, and the next sync or
// Close makes it so.
//
// The arguments are checked first, with the errors MemoryStorage returns:
// raft.ErrSnapOutOfDate for a snapshot not newer than the stored one, an
// error for entries that are not contiguous, and one wrapping
// raft.ErrUnavailable for entries that leave a gap after the last index;
// nothing is written then. Entries the log has compacted are skipped.
//
// If writing or syncing fails, what is on disk is unknown: Save returns
// that error, and every later Save, CreateSnapshot and Compact an error
// wrapping ErrFailed and it. Reads still serve what earlier Saves stored.
// Close the Storage and open it again to recover what was durable (see
// ErrFailed for a failed sync).
//
// Save keeps the entries for its cache as they are, sharing their Data:
// the caller must not modify them afterwards (Ready's entries are never
// modified).
func (s *Storage) Save(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	hasSnap := !raft.IsEmptySnap(snap)
	base, last := s.base, s.lastIndex()
	if hasSnap {
		if snap.Metadata.Index <= s.snap.Metadata.Index {
			return raft.ErrSnapOutOfDate
		}
		base, last = snap.Metadata.Index, snap.Metadata.Index
	}
	ents, err := checkAppend(ents, base, last)
	if err != nil {
		return err
	}
	hasHS := !raft.IsEmptyHardState(hs) && hs != s.hs
	if !hasSnap && len(ents) == 0 && !hasHS {
		return nil
	}
	// The stored hard state stands in for the previous one when this
	// Save carries none (only the entries then decide).
	next := s.hs
	if hasHS {
		next = hs
	}
	mustSync := hasSnap || raft.MustSync(next, s.hs, len(ents))

	if hasSnap {
		if err := writeSnapshotFile(s.fs, s.dir, snap); err != nil {
			return s.fail(err)
		}
	}
	buf, offs := s.encode(hs, hasHS, ents, snap, hasSnap)
	if err := s.rotateIfFull(len(buf)); err != nil {
		return err
	}
	tail := s.segs[len(s.segs)-1]
	if s.tailOff+int64(len(buf)) > 1<<32-1 {
		return fmt.Errorf("wal: a write of %d bytes does not fit a segment", len(buf))
	}
	if _, err := tail.f.WriteAt(buf, s.tailOff); err != nil {
		return s.fail(fmt.Errorf("wal: write %s: %w", tail.path, err))
	}
	off := s.tailOff
	s.tailOff += int64(len(buf))
	s.dirty = true
	if mustSync {
		if err := s.sync(syncSave); err != nil {
			return err
		}
	}

	s.mu.Lock()
	oldSnap := s.snap.Metadata.Index
	if hasSnap {
		s.snap = snap
		s.base, s.baseTerm = snap.Metadata.Index, snap.Metadata.Term
		s.locs.reset()
		s.cache, s.cacheFirst, s.cacheBytes = nil, s.base+1, 0
	}
	if len(ents) > 0 {
		s.appendLocked(ents, tail.seq, off, offs)
	}
	if hasHS {
		s.hs = hs
	}
	s.mu.Unlock()

	if hasSnap && oldSnap > 0 {
		removeFile(s.fs, filepath.Join(s.dir, snapshotName(oldSnap)))
	}
	return nil
}

// checkAppend validates entries to be appended to a log of base+1 ... last
// and returns them without those the log has compacted.
func checkAppend(ents []pb.Entry, base, last uint64) ([]pb.Entry, error) {
	for i := 1; i < len(ents); i++ {
		if ents[i].Index != ents[i-1].Index+1 {
			return nil, fmt.Errorf("wal: append: entries not contiguous: index %d follows %d", ents[i].Index, ents[i-1].Index)
		}
	}
	if len(ents) == 0 || ents[len(ents)-1].Index <= base {
		return nil, nil
	}
	if ents[0].Index <= base {
		ents = ents[base+1-ents[0].Index:]
	}
	if ents[0].Index > last+1 {
		return nil, fmt.Errorf("%w: append: entry %d leaves a gap after the last index %d", raft.ErrUnavailable, ents[0].Index, last)
	}
	return ents, nil
}

// encode builds the records of one Save in s.buf and returns them with
// the offset of each entry's record within them.
func (s *Storage) encode(hs pb.HardState, hasHS bool, ents []pb.Entry, snap pb.Snapshot, hasSnap bool) ([]byte, []uint32) {
	buf := s.buf[:0]
	if hasSnap {
		buf = appendSnapshotRecord(buf, snap.Metadata.Index, snap.Metadata.Term)
	}
	offs := slices.Grow(s.offs[:0], len(ents))[:len(ents)]
	s.offs = offs
	for i := range ents {
		offs[i] = uint32(len(buf))
		buf = appendEntry(buf, &ents[i])
	}
	if hasHS {
		n := hs.Size()
		var start int
		var p []byte
		buf, start, p = appendFrame(buf, recHardState, n)
		if _, err := hs.MarshalToSizedBuffer(p); err != nil {
			panic(fmt.Sprintf("wal: marshal hard state: %v", err)) // sized above: cannot fail
		}
		buf = seal(buf, start, n)
	}
	s.buf = buf
	return buf, offs
}

// appendSnapshotRecord appends a recSnapshot record: the log restarts
// after index, of term.
func appendSnapshotRecord(buf []byte, index, term uint64) []byte {
	var p [16]byte
	binary.LittleEndian.PutUint64(p[:], index)
	binary.LittleEndian.PutUint64(p[8:], term)
	return appendRecord(buf, recSnapshot, p[:])
}

// appendLocked records entries just written at off in segment seq (offs
// relative to off) in the index and the cache. Holds mu.
func (s *Storage) appendLocked(ents []pb.Entry, seq uint64, off int64, offs []uint32) {
	first := ents[0].Index
	s.locs.truncate(int(first - s.base - 1))
	for i := range ents {
		s.locs.append(loc{
			term: ents[i].Term,
			seq:  seq,
			off:  uint32(off) + offs[i],
			size: uint32(ents[i].Size()),
		})
	}
	if s.opts.CacheSize < 0 {
		s.cacheFirst = s.lastIndex() + 1
		return
	}
	switch {
	case first < s.cacheFirst:
		s.cache, s.cacheFirst, s.cacheBytes = nil, first, 0
	case first < s.cacheFirst+uint64(len(s.cache)):
		// Replacing a suffix: copy, a reader may hold the old entries.
		s.cache = slices.Clip(s.cache[:first-s.cacheFirst])
		s.cacheBytes = 0
		for i := range s.cache {
			s.cacheBytes += s.cache[i].Size()
		}
	}
	s.cache = append(s.cache, ents...)
	for i := range ents {
		s.cacheBytes += int(s.loc(ents[i].Index).size)
	}
	drop := 0
	for drop < len(s.cache) && s.cacheBytes > s.opts.CacheSize {
		s.cacheBytes -= int(s.loc(s.cacheFirst + uint64(drop)).size)
		drop++
	}
	s.cache = s.cache[drop:]
	s.cacheFirst += uint64(drop)
}

// rotateIfFull starts a new segment when n more bytes do not fit the last
// one (unless it holds nothing but its header).
func (s *Storage) rotateIfFull(n int) error {
	tail := s.segs[len(s.segs)-1]
	if s.tailOff+int64(n) <= s.opts.SegmentSize || s.tailOff == s.tailHdr {
		return nil
	}
	if s.dirty {
		if err := s.sync(syncRotate); err != nil {
			return err
		}
	}
	seg, off, err := createSegment(s.fs, s.dir, tail.seq+1, s.opts.SegmentSize, s.hs)
	if err != nil {
		return s.fail(err)
	}
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.mu.Unlock()
	s.tailOff, s.tailHdr, s.dirty = off, off, false
	return nil
}

func (s *Storage) sync(site syncSite) error {
	if !s.opts.NoSync {
		tail := s.segs[len(s.segs)-1]
		if err := syncData(site, tail.f); err != nil {
			return s.fail(fmt.Errorf("wal: sync %s: %w", tail.path, err))
		}
	}
	s.dirty = false
	return nil
}

// fail stops the Storage after a write, sync, create, rename or removal
// failed: what is on disk is then unknown (a failed fsync may even have
// dropped the data it was to make durable), so nothing more may be
// acknowledged. It returns err.
func (s *Storage) fail(err error) error {
	s.failed = err
	return err
}

func (s *Storage) writable() error {
	if s.closed {
		return ErrClosed
	}
	if s.failed != nil {
		return fmt.Errorf("%w: %w", ErrFailed, s.failed)
	}
	return nil
}

// Append saves entries (Save without hard state or snapshot).
func (s *Storage) Append(ents []pb.Entry) error {
	return s.Save(pb.HardState{}, ents, pb.Snapshot{})
}

// SetHardState saves the hard state (Save without entries or snapshot).
func (s *Storage) SetHardState(hs pb.HardState) error {
	return s.Save(hs, nil, pb.Snapshot{})
}

// ApplySnapshot saves a snapshot received from the leader: the log then
// starts after it (Save with only a snapshot). It returns
// raft.ErrSnapOutOfDate for a snapshot not newer than the stored one.
func (s *Storage) ApplySnapshot(snap pb.Snapshot) error {
	return s.Save(pb.HardState{}, nil, snap)
}

// CreateSnapshot stores a snapshot of the state machine at applied index
// i, with configuration cs (nil keeps the previous one) and data, durably
// in its own file, and returns it. The log is not compacted: call Compact
// for that. Errors are those of MemoryStorage: raft.ErrSnapOutOfDate when
// i is not newer than the stored snapshot, raft.ErrCompacted when i is
// before the compaction point, an error wrapping raft.ErrUnavailable when
// i is past the last index.
func (s *Storage) CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return pb.Snapshot{}, err
	}
	switch {
	case i <= s.snap.Metadata.Index:
		return pb.Snapshot{}, raft.ErrSnapOutOfDate
	case i > s.lastIndex():
		return pb.Snapshot{}, fmt.Errorf("%w: snapshot index %d past the last index %d", raft.ErrUnavailable, i, s.lastIndex())
	case i < s.base:
		return pb.Snapshot{}, raft.ErrCompacted
	}
	snap := pb.Snapshot{Data: data, Metadata: pb.SnapshotMetadata{Index: i, Term: s.baseTerm, ConfState: s.snap.Metadata.ConfState}}
	if i > s.base {
		snap.Metadata.Term = s.loc(i).term
	}
	if cs != nil {
		snap.Metadata.ConfState = *cs
	}
	if err := writeSnapshotFile(s.fs, s.dir, snap); err != nil {
		return pb.Snapshot{}, s.fail(err)
	}
	s.mu.Lock()
	old := s.snap.Metadata.Index
	s.snap = snap
	s.mu.Unlock()
	if old > 0 {
		removeFile(s.fs, filepath.Join(s.dir, snapshotName(old)))
	}
	return snap, nil
}

// Compact discards the entries before compactIndex from the log; the term
// of compactIndex stays known, so FirstIndex becomes compactIndex+1. Only
// compact what the application has applied. Segment files are deleted once
// every entry in them is both compacted and covered by the stored snapshot
// (so that the log can be replayed from the snapshot after a restart); the
// log reopens at the snapshot. Errors are those of MemoryStorage:
// raft.ErrCompacted when compactIndex is not past the compaction point, an
// error wrapping raft.ErrUnavailable when it is past the last index.
func (s *Storage) Compact(compactIndex uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if compactIndex <= s.base {
		return raft.ErrCompacted
	}
	if last := s.lastIndex(); compactIndex > last {
		return fmt.Errorf("%w: compact %d past the last index %d", raft.ErrUnavailable, compactIndex, last)
	}
	// The segment holding the first entry a replay needs, and every later
	// one, stay.
	keepSeq := s.segs[len(s.segs)-1].seq
	if need := min(compactIndex, s.snap.Metadata.Index) + 1; need <= s.base {
		keepSeq = s.segs[0].seq // located before an earlier compaction: keep all
	} else if need <= s.lastIndex() {
		keepSeq = s.loc(need).seq
	}

	s.mu.Lock()
	s.baseTerm = s.loc(compactIndex).term
	s.locs.dropFront(int(compactIndex - s.base))
	s.base = compactIndex
	if s.cacheFirst <= compactIndex {
		drop := compactIndex + 1 - s.cacheFirst
		for i := range s.cache[:drop] {
			s.cacheBytes -= s.cache[i].Size()
		}
		s.cache, s.cacheFirst = s.cache[drop:], compactIndex+1
	}
	var gone []*segment
	for len(s.segs) > 1 && s.segs[0].seq < keepSeq {
		gone = append(gone, s.segs[0])
		s.segs = s.segs[1:]
	}
	s.mu.Unlock()

	if len(gone) == 0 {
		return nil
	}
	for _, seg := range gone {
		seg.f.Close()
		if err := removeFile(s.fs, seg.path); err != nil {
			return s.fail(fmt.Errorf("wal: remove %s: %w", seg.path, err))
		}
	}
	if err := syncDir(s.fs, syncCompactDir, s.dir); err != nil {
		return s.fail(fmt.Errorf("wal: sync %s: %w", s.dir, err))
	}
	return nil
}
