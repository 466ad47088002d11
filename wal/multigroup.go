package wal

import (
	"fmt"
	"path/filepath"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// GroupStorage is one group's durable raft.Storage in a MultiLog: give it
// to the group's raft.Config. It behaves as a Storage of its own (same
// errors, same compaction rules) except that its records share the
// MultiLog's segments and its snapshot is in a file named after the group.
// The entries of its latest Saves are served from memory (the groups share
// Options.CacheSize); older ones are read from disk.
//
// Save on a GroupStorage saves that group alone; to save many groups with
// one write and one sync, use MultiLog.Save. All methods are safe for
// concurrent use. After the group is removed, every method returns an
// error wrapping ErrGroupRemoved.
type GroupStorage struct {
	ml *MultiLog
	id uint64

	// The fields below are guarded by ml.mu; writers hold ml.wmu too.
	removed bool
	hs      pb.HardState
	snap    pb.Snapshot
	// base is the compaction point: the log holds base+1 ...
	// base+locs.len(), as in Storage.
	base     uint64
	baseTerm uint64
	locs     locIndex
	// pin is the oldest segment holding a record the group needs after a
	// restart (the entry after min(base, snapshot index)); 0 if none.
	// It may be older than needed, never newer.
	pin uint64
	// saveGen is the MultiLog.Save that last took an update of the group
	// (to refuse two in one Save).
	saveGen uint64
	// cache holds the entries cacheFirst ... lastIndex, or none, as they
	// were saved (see multicache.go).
	cache      []pb.Entry
	cacheFirst uint64
}

var _ raft.Storage = (*GroupStorage)(nil)

// ID returns the group's ID.
func (g *GroupStorage) ID() uint64 { return g.id }

func (g *GroupStorage) empty() bool {
	return raft.IsEmptyHardState(g.hs) && g.snap.Metadata.Index == 0 && g.locs.len() == 0
}

func (g *GroupStorage) lastIndex() uint64 { return g.base + uint64(g.locs.len()) }

// loc returns where the entry at index i is. Holds ml.mu or ml.wmu.
func (g *GroupStorage) loc(i uint64) loc { return g.locs.at(int(i - g.base - 1)) }

// readable returns the error a read fails with, if any. Holds ml.mu.
func (g *GroupStorage) readable() error {
	switch {
	case g.ml.closed:
		return ErrClosed
	case g.removed:
		return fmt.Errorf("%w: %d", ErrGroupRemoved, g.id)
	}
	return nil
}

// writable returns the error a write fails with, if any. Holds ml.wmu.
func (g *GroupStorage) writable() error {
	if err := g.ml.writable(); err != nil {
		return err
	}
	if g.removed {
		return fmt.Errorf("%w: %d", ErrGroupRemoved, g.id)
	}
	return nil
}

// InitialState implements raft.Storage: the saved hard state and the
// configuration of the newest snapshot.
func (g *GroupStorage) InitialState() (pb.HardState, pb.ConfState, error) {
	g.ml.mu.RLock()
	defer g.ml.mu.RUnlock()
	if err := g.readable(); err != nil {
		return pb.HardState{}, pb.ConfState{}, err
	}
	return g.hs, g.snap.Metadata.ConfState, nil
}

// HardState returns the saved hard state.
func (g *GroupStorage) HardState() pb.HardState {
	g.ml.mu.RLock()
	defer g.ml.mu.RUnlock()
	return g.hs
}

// FirstIndex implements raft.Storage.
func (g *GroupStorage) FirstIndex() (uint64, error) {
	g.ml.mu.RLock()
	defer g.ml.mu.RUnlock()
	if err := g.readable(); err != nil {
		return 0, err
	}
	return g.base + 1, nil
}

// LastIndex implements raft.Storage.
func (g *GroupStorage) LastIndex() (uint64, error) {
	g.ml.mu.RLock()
	defer g.ml.mu.RUnlock()
	if err := g.readable(); err != nil {
		return 0, err
	}
	return g.lastIndex(), nil
}

// Term implements raft.Storage. It never touches the disk.
func (g *GroupStorage) Term(i uint64) (uint64, error) {
	g.ml.mu.RLock()
	defer g.ml.mu.RUnlock()
	if err := g.readable(); err != nil {
		return 0, err
	}
	switch {
	case i < g.base:
		return 0, raft.ErrCompacted
	case i == g.base:
		return g.baseTerm, nil
	case i > g.lastIndex():
		return 0, raft.ErrUnavailable
	}
	return g.loc(i).term, nil
}

// Snapshot implements raft.Storage: the newest snapshot (empty if none).
func (g *GroupStorage) Snapshot() (pb.Snapshot, error) {
	g.ml.mu.RLock()
	defer g.ml.mu.RUnlock()
	if err := g.readable(); err != nil {
		return pb.Snapshot{}, err
	}
	return g.snap, nil
}

// Entries implements raft.Storage. Entries still in the cache are
// returned without copying (the slice is shared: do not modify it); older
// ones are read from disk, one read per segment, and checked against their
// CRC.
func (g *GroupStorage) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	g.ml.mu.RLock()
	defer g.ml.mu.RUnlock()
	if err := g.readable(); err != nil {
		return nil, err
	}
	switch {
	case lo > hi:
		return nil, fmt.Errorf("%w: invalid range [%d,%d)", raft.ErrUnavailable, lo, hi)
	case lo <= g.base:
		return nil, raft.ErrCompacted
	case hi > g.lastIndex()+1:
		return nil, fmt.Errorf("%w: entries [%d,%d) past the last index %d", raft.ErrUnavailable, lo, hi, g.lastIndex())
	case lo == hi:
		return nil, nil
	}
	// How many entries fit in maxSize (at least one), from the index
	// alone: a loc's size counts the 8 bytes of the group ID.
	n, size := uint64(1), uint64(g.loc(lo).size-8)
	for ; lo+n < hi; n++ {
		size += uint64(g.loc(lo+n).size - 8)
		if size > maxSize {
			break
		}
	}
	hi = lo + n
	if len(g.cache) > 0 && lo >= g.cacheFirst {
		return g.cached(lo, hi), nil
	}
	diskHi := hi
	if len(g.cache) > 0 {
		diskHi = min(hi, g.cacheFirst)
	}
	ents, err := readEntries(make([]pb.Entry, 0, n), g.id, lo, diskHi, g.loc, g.ml.segment)
	if err != nil {
		return nil, err
	}
	if diskHi < hi {
		ents = append(ents, g.cached(diskHi, hi)...)
	}
	return ents, nil
}

// Save saves this group's part of a Ready: MultiLog.Save with this group
// alone.
func (g *GroupStorage) Save(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) error {
	return g.ml.Save([]GroupUpdate{{GroupID: g.id, HardState: hs, Entries: ents, Snapshot: snap}})
}

// CreateSnapshot stores a snapshot of the group's state machine at
// applied index i, as Storage.CreateSnapshot does, in the group's own
// snapshot file.
func (g *GroupStorage) CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error) {
	ml := g.ml
	ml.wmu.Lock()
	defer ml.wmu.Unlock()
	if err := g.writable(); err != nil {
		return pb.Snapshot{}, err
	}
	switch {
	case i <= g.snap.Metadata.Index:
		return pb.Snapshot{}, raft.ErrSnapOutOfDate
	case i > g.lastIndex():
		return pb.Snapshot{}, fmt.Errorf("%w: snapshot index %d past the last index %d", raft.ErrUnavailable, i, g.lastIndex())
	case i < g.base:
		return pb.Snapshot{}, raft.ErrCompacted
	}
	snap := pb.Snapshot{Data: data, Metadata: pb.SnapshotMetadata{Index: i, Term: g.baseTerm, ConfState: g.snap.Metadata.ConfState}}
	if i > g.base {
		snap.Metadata.Term = g.loc(i).term
	}
	if cs != nil {
		snap.Metadata.ConfState = *cs
	}
	if err := writeSnapshotFileNamed(ml.fs, ml.dir, groupSnapshotName(g.id, i), snap); err != nil {
		return pb.Snapshot{}, ml.fail(err)
	}
	ml.mu.Lock()
	old := g.snap.Metadata.Index
	g.snap = snap
	ml.mu.Unlock()
	if old > 0 {
		removeFile(ml.fs, filepath.Join(ml.dir, groupSnapshotName(g.id, old)))
	}
	return snap, nil
}

// Compact discards the group's entries before compactIndex, as
// Storage.Compact does. Segment files are deleted once no group needs a
// record in them: every group has compacted, and snapshotted, past every
// entry of theirs in them.
func (g *GroupStorage) Compact(compactIndex uint64) error {
	ml := g.ml
	ml.wmu.Lock()
	defer ml.wmu.Unlock()
	if err := g.writable(); err != nil {
		return err
	}
	if compactIndex <= g.base {
		return raft.ErrCompacted
	}
	if last := g.lastIndex(); compactIndex > last {
		return fmt.Errorf("%w: compact %d past the last index %d", raft.ErrUnavailable, compactIndex, last)
	}
	// The entry a replay needs first: entries located before an earlier
	// compaction keep the pin they had.
	pin := g.pin
	if need := min(compactIndex, g.snap.Metadata.Index) + 1; need > g.base {
		pin = 0
		if need <= g.lastIndex() {
			pin = g.loc(need).seq
		}
	}
	ml.mu.Lock()
	g.baseTerm = g.loc(compactIndex).term
	g.locs.dropFront(int(compactIndex - g.base))
	g.base = compactIndex
	g.cacheDrop(compactIndex)
	ml.mu.Unlock()
	ml.setPin(g, pin)
	return ml.dropSegments()
}
