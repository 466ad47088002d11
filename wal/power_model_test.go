package wal_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
)

// The power-loss tests drive a Storage with a seeded workload and keep a
// model of what it stores; after a crash they compare what a reopened
// Storage holds with the states the model allows.

// pview is what a reopened Storage shows: the newest snapshot, the log
// after it and the hard state.
type pview struct {
	snap pb.Snapshot
	ents []pb.Entry // from snap.Metadata.Index+1
	hs   pb.HardState
}

func (v *pview) last() uint64 { return v.snap.Metadata.Index + uint64(len(v.ents)) }

func (v *pview) term(i uint64) uint64 {
	if i == v.snap.Metadata.Index {
		return v.snap.Metadata.Term
	}
	return v.ents[i-v.snap.Metadata.Index-1].Term
}

// withEntries returns v with ents appended, replacing the entries from
// ents[0].Index on.
func (v pview) withEntries(ents []pb.Entry) pview {
	keep := ents[0].Index - v.snap.Metadata.Index - 1
	v.ents = append(v.ents[:keep:keep], ents...)
	return v
}

// pmodel is the workload's state: what the Storage holds and what has
// been acknowledged.
type pmodel struct {
	pview
	base  uint64 // compaction point
	floor uint64 // commit index of the last acknowledged synced Save
}

type stepKind int

const (
	stepSave stepKind = iota
	stepCreateSnapshot
	stepCompact
)

// pstep is one call into the Storage.
type pstep struct {
	kind  stepKind
	hs    pb.HardState
	ents  []pb.Entry
	snap  pb.Snapshot
	index uint64 // of CreateSnapshot and Compact
	cs    *pb.ConfState
	data  []byte
}

func (st *pstep) String() string {
	switch st.kind {
	case stepCreateSnapshot:
		return fmt.Sprintf("CreateSnapshot(%d, %d bytes)", st.index, len(st.data))
	case stepCompact:
		return fmt.Sprintf("Compact(%d)", st.index)
	}
	s := fmt.Sprintf("Save(hs %+v", st.hs)
	if n := len(st.ents); n > 0 {
		s += fmt.Sprintf(", entries %d...%d", st.ents[0].Index, st.ents[n-1].Index)
	}
	if st.snap.Metadata.Index > 0 {
		s += fmt.Sprintf(", snapshot %d", st.snap.Metadata.Index)
	}
	return s + ")"
}

func (st *pstep) run(s *wal.Storage) error {
	switch st.kind {
	case stepCreateSnapshot:
		_, err := s.CreateSnapshot(st.index, st.cs, st.data)
		return err
	case stepCompact:
		return s.Compact(st.index)
	}
	return s.Save(st.hs, st.ents, st.snap)
}

// payload returns n deterministic bytes, a mix of small ones, ones that
// cross sectors and ones larger than a 4 KiB segment.
func payload(rng *rand.Rand) []byte {
	var n int
	switch r := rng.IntN(100); {
	case r < 60:
		n = rng.IntN(40)
	case r < 85:
		n = 100 + rng.IntN(600)
	case r < 96:
		n = 1000 + rng.IntN(1500)
	default:
		n = 4200 + rng.IntN(2000)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// genStep returns the next call, valid for the state m.
func genStep(rng *rand.Rand, m *pmodel) pstep {
	last, commit, snapIndex := m.last(), m.hs.Commit, m.snap.Metadata.Index
	switch r := rng.IntN(100); {
	case r < 15 && commit < last:
		hs := m.hs
		hs.Commit += 1 + rng.Uint64N(last-commit)
		return pstep{kind: stepSave, hs: hs}
	case r < 20:
		hs := m.hs
		hs.Term++
		hs.Vote = 1 + rng.Uint64N(3)
		return pstep{kind: stepSave, hs: hs}
	case r < 26:
		index := last + 1 + rng.Uint64N(4)
		hs := pb.HardState{Term: m.hs.Term + rng.Uint64N(2), Vote: m.hs.Vote, Commit: index}
		snap := pb.Snapshot{Data: payload(rng), Metadata: pb.SnapshotMetadata{
			Index: index, Term: hs.Term, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}},
		}}
		return pstep{kind: stepSave, hs: hs, snap: snap}
	case r < 36 && commit > max(snapIndex, m.base):
		lo := max(snapIndex+1, m.base)
		st := pstep{kind: stepCreateSnapshot, index: lo + rng.Uint64N(commit-lo+1), data: payload(rng)}
		if rng.IntN(3) == 0 {
			st.cs = &pb.ConfState{Voters: []uint64{1, 2, 3, 4 + rng.Uint64N(3)}}
		}
		return st
	case r < 44 && commit > m.base:
		return pstep{kind: stepCompact, index: m.base + 1 + rng.Uint64N(commit-m.base)}
	}
	// Entries: mostly appended, sometimes replacing an uncommitted suffix
	// in a new term.
	hs := m.hs
	from := last + 1
	if floor := max(commit, snapIndex, m.base); last > floor && rng.IntN(5) == 0 {
		from = floor + 1 + rng.Uint64N(last-floor)
		hs.Term++
	}
	if hs.Term == 0 || rng.IntN(10) == 0 {
		hs.Term++
	}
	if hs.Term != m.hs.Term {
		hs.Vote = 1 + rng.Uint64N(3)
	}
	n := 1 + rng.IntN(4)
	if rng.IntN(8) == 0 {
		n = 1 + rng.IntN(40)
	}
	ents := make([]pb.Entry, n)
	for i := range ents {
		ents[i] = pb.Entry{Term: hs.Term, Index: from + uint64(i), Data: payload(rng)}
	}
	newLast := from + uint64(n) - 1
	hs.Commit = commit + rng.Uint64N(newLast-commit+1)
	return pstep{kind: stepSave, hs: hs, ents: ents}
}

// after returns the state once st is done.
func (m pmodel) after(st *pstep) pmodel {
	switch st.kind {
	case stepCreateSnapshot:
		snap := pb.Snapshot{Data: st.data, Metadata: pb.SnapshotMetadata{
			Index: st.index, Term: m.term(st.index), ConfState: m.snap.Metadata.ConfState,
		}}
		if st.cs != nil {
			snap.Metadata.ConfState = *st.cs
		}
		m.ents = m.ents[st.index-m.snap.Metadata.Index:]
		m.snap = snap
	case stepCompact:
		m.base = st.index
	case stepSave:
		sync := len(st.ents) > 0 || st.snap.Metadata.Index > 0 || st.hs.Term != m.hs.Term || st.hs.Vote != m.hs.Vote
		if st.snap.Metadata.Index > 0 {
			m.snap, m.ents, m.base = st.snap, nil, st.snap.Metadata.Index
		}
		if len(st.ents) > 0 {
			m.pview = m.withEntries(st.ents)
		}
		m.hs = st.hs
		if sync {
			m.floor = m.hs.Commit
		}
	}
	return m
}

// allowed returns the states a crash during st (nil: between calls) may
// leave, besides lost commit-only changes of the hard state: before it,
// after it, and for a Save, a prefix of its records.
func (m *pmodel) allowed(st *pstep) []pview {
	views := []pview{m.pview}
	if st == nil {
		return views
	}
	views = append(views, m.after(st).pview)
	if st.kind != stepSave {
		return views
	}
	if st.snap.Metadata.Index > 0 {
		// The snapshot's file or record, without the hard state after it.
		views = append(views, pview{snap: st.snap, hs: m.hs})
	}
	for k := 1; k <= len(st.ents); k++ {
		v := m.withEntries(st.ents[:k])
		v.hs = m.hs
		views = append(views, v)
	}
	return views
}

// viewable is what readView reads: a Storage or a GroupStorage.
type viewable interface {
	Snapshot() (pb.Snapshot, error)
	HardState() pb.HardState
	FirstIndex() (uint64, error)
	LastIndex() (uint64, error)
	Entries(lo, hi, maxSize uint64) ([]pb.Entry, error)
}

// readView reads what a Storage shows.
func readView(s viewable) (pview, error) {
	var v pview
	var err error
	if v.snap, err = s.Snapshot(); err != nil {
		return v, err
	}
	v.hs = s.HardState()
	first, err := s.FirstIndex()
	if err != nil {
		return v, err
	}
	last, err := s.LastIndex()
	if err != nil {
		return v, err
	}
	if first != v.snap.Metadata.Index+1 {
		return v, fmt.Errorf("reopened log starts at %d, the snapshot is at %d", first, v.snap.Metadata.Index)
	}
	if last >= first {
		if v.ents, err = s.Entries(first, last+1, 1<<62); err != nil {
			return v, err
		}
	}
	return v, nil
}

func marshaled(m interface{ Marshal() ([]byte, error) }) []byte {
	b, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// matches reports whether got is want, except for a commit index anywhere
// from floor (durable) to want's.
func matches(got, want pview, floor uint64) bool {
	if !bytes.Equal(marshaled(&got.snap), marshaled(&want.snap)) || len(got.ents) != len(want.ents) {
		return false
	}
	for i := range got.ents {
		if !bytes.Equal(marshaled(&got.ents[i]), marshaled(&want.ents[i])) {
			return false
		}
	}
	g, w := got.hs, want.hs
	return g.Term == w.Term && g.Vote == w.Vote && g.Commit <= w.Commit && g.Commit >= min(floor, w.Commit)
}

func describeView(v pview) string {
	s := fmt.Sprintf("snapshot %d/%d, hs %+v, entries", v.snap.Metadata.Index, v.snap.Metadata.Term, v.hs)
	if len(v.ents) == 0 {
		return s + " none"
	}
	return s + fmt.Sprintf(" %d...%d (last term %d)", v.ents[0].Index, v.ents[len(v.ents)-1].Index, v.ents[len(v.ents)-1].Term)
}
