package rafttest

import (
	"maps"
	"slices"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// confCheckPoint is where a node's configuration was last checked: an
// applied index of one of its incarnations.
type confCheckPoint struct {
	applied  uint64
	restarts int
	checked  bool
}

// confSeen is the configuration the first node checked after applying
// the entries up to a conf change (and none after it) had.
type confSeen struct {
	node uint64
	cs   pb.ConfState
}

// noteConfChange records that the committed entry at index, handed out
// for the first time, is a conf change.
func (r *chaosRun) noteConfChange(e pb.Entry) {
	if e.Type != pb.EntryConfChange && e.Type != pb.EntryConfChangeV2 {
		return
	}
	if i, found := slices.BinarySearch(r.confIndexes, e.Index); !found {
		r.confIndexes = slices.Insert(r.confIndexes, i, e.Index)
	}
}

// confKey returns the index of the last committed conf change at or below
// index (0 if none): nodes that have applied up to index hold the
// configuration it made.
func (r *chaosRun) confKey(index uint64) uint64 {
	i, found := slices.BinarySearch(r.confIndexes, index)
	if found {
		return index
	}
	if i == 0 {
		return 0
	}
	return r.confIndexes[i-1]
}

// checkConf checks, once n is at rest (no Ready waiting, no storage work
// pending) at an applied index it was not checked at, that its
// configuration is the one every node at rest had after applying the
// same conf changes: a node that applied a conf change twice, or on top
// of a snapshot that already held it, has one no other node has.
func (r *chaosRun) checkConf(n *chaosNode) {
	if n.holding || n.rn.HasReady() || n.hasLater() {
		return
	}
	at := confCheckPoint{applied: n.rn.BasicStatus().Applied, restarts: n.restarts, checked: true}
	if at == n.confChecked {
		return
	}
	n.confChecked = at
	r.compareConf(n.id, "has", at.applied, confStateOf(n.rn.Status()))
}

// compareConf compares the configuration cs that node id has (or holds
// in a snapshot) at index with the one recorded there, or records it.
func (r *chaosRun) compareConf(id uint64, what string, index uint64, cs pb.ConfState) {
	key := r.confKey(index)
	prev, ok := r.confAt[key]
	if !ok {
		r.confAt[key] = confSeen{node: id, cs: cs}
		return
	}
	if err := prev.cs.Equivalent(cs); err != nil {
		r.violate("node %d %s configuration %s at applied index %d, but node %d had %s after the same conf changes (the last at %d)",
			id, what, cs.Describe(), index, prev.node, prev.cs.Describe(), key)
	}
}

// confStateOf returns the configuration a status shows.
func confStateOf(st raft.Status) pb.ConfState {
	return pb.ConfState{
		Voters: st.Config.Voters[0].Slice(), VotersOutgoing: st.Config.Voters[1].Slice(),
		Learners: slices.Sorted(maps.Keys(st.Config.Learners)), LearnersNext: slices.Sorted(maps.Keys(st.Config.LearnersNext)),
		AutoLeave: st.Config.AutoLeave,
	}
}
