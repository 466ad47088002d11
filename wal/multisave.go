package wal

import (
	"fmt"
	"path/filepath"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// saved is one group's checked part of a Save.
type saved struct {
	g       *GroupStorage
	u       *GroupUpdate
	ents    []pb.Entry // without those the group has compacted
	hasHS   bool
	hasSnap bool
	first   int // index in MultiLog.offs of the first entry's offset
}

// Save persists the work of many groups' Readys (a host Ready) in one
// write: for each update in turn, its snapshot (if not empty), its entries
// (an entry at index i replaces every stored entry of the group at i or
// after) and its hard state (if not empty), each record tagged with the
// group. It syncs once, after the write, when any group's part must be
// durable (a snapshot, entries, or a change of term or vote:
// raft.MustSync); commit-only changes are written but not synced. Each
// snapshot is first written to its own file (synced, with its directory).
//
// Every update is checked before anything is written, with the errors of
// Storage.Save (wrapped with the group ID), and an error wrapping
// ErrGroupRemoved for a removed group; a group may appear once per Save.
// Nothing is written then. A failed write or sync makes the log fail stop
// as Storage does (ErrFailed). Save keeps references to the entries'
// Data: the caller must not modify them afterwards.
func (ml *MultiLog) Save(updates []GroupUpdate) error {
	ml.wmu.Lock()
	defer ml.wmu.Unlock()
	if err := ml.writable(); err != nil {
		return err
	}
	plan, mustSync, err := ml.check(updates)
	if err != nil || len(plan) == 0 {
		return err
	}
	for _, p := range plan {
		if p.hasSnap {
			snap := p.u.Snapshot
			if err := writeSnapshotFileNamed(ml.fs, ml.dir, groupSnapshotName(p.g.id, snap.Metadata.Index), snap); err != nil {
				return ml.fail(err)
			}
		}
	}
	buf := ml.encode(plan)
	tail, off, err := ml.write(buf, mustSync)
	if err != nil {
		return err
	}

	ml.mu.Lock()
	// The files of the snapshots this Save replaces.
	var oldSnaps []string
	for _, p := range plan {
		if p.hasSnap && p.g.snap.Metadata.Index > 0 {
			oldSnaps = append(oldSnaps, groupSnapshotName(p.g.id, p.g.snap.Metadata.Index))
		}
		ml.apply(p, tail.seq, off)
	}
	ml.mu.Unlock()
	for _, p := range plan {
		switch {
		case p.hasSnap && len(p.ents) == 0:
			ml.setPin(p.g, 0)
		case p.hasSnap || (len(p.ents) > 0 && p.g.pin == 0):
			ml.setPin(p.g, tail.seq)
		}
	}
	for _, name := range oldSnaps {
		removeFile(ml.fs, filepath.Join(ml.dir, name))
	}
	return nil
}

// check validates updates and returns what each must write, and whether
// the write must be synced.
func (ml *MultiLog) check(updates []GroupUpdate) (plan []saved, mustSync bool, err error) {
	ml.saveGen++
	plan = ml.plan[:0]
	defer func() { ml.plan = plan[:0] }()
	for i := range updates {
		u := &updates[i]
		ml.mu.Lock()
		g, err := ml.groupLocked(u.GroupID)
		ml.mu.Unlock()
		if err != nil {
			return nil, false, err
		}
		if g.saveGen == ml.saveGen {
			return nil, false, fmt.Errorf("wal: group %d appears twice in one Save", u.GroupID)
		}
		g.saveGen = ml.saveGen
		p := saved{g: g, u: u, hasSnap: !raft.IsEmptySnap(u.Snapshot)}
		base, last := g.base, g.lastIndex()
		if p.hasSnap {
			if u.Snapshot.Metadata.Index <= g.snap.Metadata.Index {
				return nil, false, fmt.Errorf("wal: group %d: %w", u.GroupID, raft.ErrSnapOutOfDate)
			}
			base, last = u.Snapshot.Metadata.Index, u.Snapshot.Metadata.Index
		}
		if p.ents, err = checkAppend(u.Entries, base, last); err != nil {
			return nil, false, fmt.Errorf("wal: group %d: %w", u.GroupID, err)
		}
		p.hasHS = !raft.IsEmptyHardState(u.HardState) && u.HardState != g.hs
		if !p.hasSnap && len(p.ents) == 0 && !p.hasHS {
			continue
		}
		next := g.hs
		if p.hasHS {
			next = u.HardState
		}
		mustSync = mustSync || p.hasSnap || raft.MustSync(next, g.hs, len(p.ents))
		plan = append(plan, p)
	}
	return plan, mustSync, nil
}

// encode builds the records of a Save in ml.buf, and the offset of each
// entry's record within them in ml.offs.
func (ml *MultiLog) encode(plan []saved) []byte {
	buf := ml.buf[:0]
	offs := ml.offs[:0]
	for i := range plan {
		p := &plan[i]
		if p.hasSnap {
			m := p.u.Snapshot.Metadata
			buf = appendGroupSnapshot(buf, p.g.id, m.Index, m.Term)
		}
		p.first = len(offs)
		for j := range p.ents {
			offs = append(offs, uint32(len(buf)))
			buf = appendGroupEntry(buf, p.g.id, &p.ents[j])
		}
		if p.hasHS {
			buf = appendGroupHardState(buf, p.g.id, p.u.HardState)
		}
	}
	ml.buf, ml.offs = buf, offs
	return buf
}

// apply records in the group what p wrote at off in segment seq. Holds
// ml.mu and ml.wmu.
func (ml *MultiLog) apply(p saved, seq uint64, off int64) {
	g := p.g
	if p.hasSnap {
		g.snap = p.u.Snapshot
		g.base, g.baseTerm = g.snap.Metadata.Index, g.snap.Metadata.Term
		g.locs.reset()
		g.cache = nil
	}
	if len(p.ents) > 0 {
		g.locs.truncate(int(p.ents[0].Index - g.base - 1))
		for j := range p.ents {
			e := &p.ents[j]
			g.locs.append(loc{
				term: e.Term,
				seq:  seq,
				off:  uint32(off) + ml.offs[p.first+j],
				size: uint32(8 + e.Size()),
			})
		}
		ml.cacheAppend(g, p.ents)
	}
	if p.hasHS {
		g.hs = p.u.HardState
	}
}
