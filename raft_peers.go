package raft

import (
	"fmt"
	"math"

	"github.com/raftcore/raft/invariants"
	"github.com/raftcore/raft/tracker"
)

// A leader looks a peer's Progress up for every message to or from it, and
// recomputes the quorum's index for most acknowledgements. The tracker
// keeps its peers in maps, which the tracker package exports (and checks
// in full on each ordered walk, since anyone may edit them); the node's
// own tracker changes only where the node replaces its configuration or
// its role, so a leader keeps its peers in a slice, built again after
// each change (installConfig and becomeLeader drop it).

// leaderPeer is one peer of the leader's configuration.
type leaderPeer struct {
	id uint64
	pr *tracker.Progress
	// incoming and outgoing tell whether the peer is a voter of the
	// incoming and outgoing majority of the (joint) configuration.
	incoming, outgoing bool
}

// maxSlicePeers is how many peers are looked up by scanning the slice;
// larger configurations look them up in the map.
const maxSlicePeers = 8

// leaderPeers returns the leader's peers in ascending ID order.
func (r *raft) leaderPeers() []leaderPeer {
	ls := r.leaderState
	if ls.peers == nil {
		peers := make([]leaderPeer, 0, len(r.trk.Progress))
		r.trk.Visit(func(id uint64, pr *tracker.Progress) {
			_, in := r.trk.Voters[0][id]
			_, out := r.trk.Voters[1][id]
			peers = append(peers, leaderPeer{id: id, pr: pr, incoming: in, outgoing: out})
		})
		ls.peers = peers
	}
	if invariants.Enabled {
		r.checkLeaderPeers(ls.peers)
	}
	return ls.peers
}

// peersChanged drops the leader's peer slice after its tracker changed
// (and ReleaseMemory, to be built again when next needed).
func (r *raft) peersChanged() {
	if r.leaderState != nil {
		r.leaderState.peers = nil
	}
}

// progress returns the Progress of peer id at the leader, nil if id is not
// in its configuration.
func (r *raft) progress(id uint64) *tracker.Progress {
	// A lookup does not build the slice: a leader quiesced by a multiraft
	// host, its buffers released, still steps its followers' answers.
	if r.leaderState == nil || r.leaderState.peers == nil || len(r.trk.Progress) > maxSlicePeers {
		return r.trk.Progress[id]
	}
	for _, p := range r.leaderPeers() {
		if p.id == id {
			return p.pr
		}
	}
	return nil
}

// visitPeers calls f for each of the leader's peers but itself, in
// ascending ID order.
func (r *raft) visitPeers(f func(id uint64, pr *tracker.Progress)) {
	for _, p := range r.leaderPeers() {
		if p.id != r.id {
			f(p.id, p.pr)
		}
	}
}

// quorumIndex is the largest index a quorum of the configuration has
// acknowledged (tracker.ProgressTracker.Committed).
func (r *raft) quorumIndex() uint64 {
	in, out := len(r.trk.Voters[0]), len(r.trk.Voters[1])
	if in > maxSlicePeers || out > maxSlicePeers {
		return r.trk.Committed()
	}
	peers := r.leaderPeers()
	c := min(majorityIndex(peers, in, false), majorityIndex(peers, out, true))
	if invariants.Enabled {
		if want := r.trk.Committed(); c != want {
			panic(fmt.Sprintf("raft: invariant: quorum index %d from the leader's peers, %d from its tracker", c, want))
		}
	}
	return c
}

// majorityIndex is the index acknowledged by a majority of the n voters of
// one half of the configuration (the outgoing one if outgoing) among
// peers, n at most maxSlicePeers; a voter without Progress counts as
// having acknowledged nothing, and an empty half any index.
func majorityIndex(peers []leaderPeer, n int, outgoing bool) uint64 {
	if n == 0 {
		return math.MaxUint64
	}
	var stack [maxSlicePeers]uint64
	acked := stack[:n]
	// Voters without Progress keep the zeros at the front.
	i := n
	for _, p := range peers {
		if (outgoing && p.outgoing || !outgoing && p.incoming) && i > 0 {
			i--
			acked[i] = p.pr.Match
		}
	}
	// Insertion sort, ascending: at most maxSlicePeers values.
	for j := 1; j < n; j++ {
		v, k := acked[j], j
		for ; k > 0 && acked[k-1] > v; k-- {
			acked[k] = acked[k-1]
		}
		acked[k] = v
	}
	return acked[n-(n/2+1)]
}

// checkLeaderPeers panics unless peers is the leader's tracker as it is
// now.
func (r *raft) checkLeaderPeers(peers []leaderPeer) {
	if len(peers) != len(r.trk.Progress) {
		panic(fmt.Sprintf("raft: invariant: leader's peer slice holds %d peers, its tracker %d", len(peers), len(r.trk.Progress)))
	}
	for _, p := range peers {
		_, in := r.trk.Voters[0][p.id]
		_, out := r.trk.Voters[1][p.id]
		if r.trk.Progress[p.id] != p.pr || in != p.incoming || out != p.outgoing {
			panic(fmt.Sprintf("raft: invariant: leader's peer slice is stale for %x", p.id))
		}
	}
}
