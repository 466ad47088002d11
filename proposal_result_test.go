package raft

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// On the leader a proposal reports the index and term it was appended at,
// and the entry committed there is it; a follower reports that it
// forwarded the proposal, to which leader.
func TestProposeWithResult(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	leader := c.nodes[1]

	res, err := leader.rn.ProposeWithResult([]byte("on the leader"))
	require.NoError(t, err)
	require.False(t, res.Forwarded)
	require.Equal(t, uint64(1), res.Leader)
	require.Equal(t, leader.r().Term, res.Term)
	require.Equal(t, leader.r().raftLog.lastIndex(), res.Index)

	cres, err := leader.rn.ProposeConfChangeWithResult(pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: 4})
	require.NoError(t, err)
	require.Equal(t, res.Index+1, cres.Index)

	fres, err := c.nodes[2].rn.ProposeWithResult([]byte("through a follower"))
	require.NoError(t, err)
	require.Equal(t, ProposalResult{Forwarded: true, Leader: 1, ForwardID: 1}, fres)

	c.stabilize()
	applied := func(index uint64) pb.Entry {
		for _, e := range leader.applied {
			if e.Index == index {
				return e
			}
		}
		t.Fatalf("index %d not applied", index)
		return pb.Entry{}
	}
	got := applied(res.Index)
	require.Equal(t, res.Term, got.Term)
	require.Equal(t, []byte("on the leader"), got.Data)
	require.Equal(t, pb.EntryConfChange, applied(cres.Index).Type)

	// Refusals are Propose's.
	_, err = c.nodes[2].rn.ProposeConfChangeWithResult(pb.ConfChangeV2{})
	require.NoError(t, err, "forwarded: the follower cannot judge it")
	_, err = leader.rn.ProposeConfChangeWithResult(pb.ConfChangeV2{})
	requireDropped(t, err, ErrProposalConfChangeRefused)
}

// A proposal reported at (index, term) and overwritten after a leader
// change shows up as another term at that index: the signal that it is
// lost.
func TestProposeWithResultOverwritten(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	c.isolate(1)
	res, err := c.nodes[1].rn.ProposeWithResult([]byte("lost"))
	require.NoError(t, err)
	c.stabilize()
	c.campaign(2)
	require.NoError(t, c.nodes[2].rn.Propose([]byte("won")))
	c.stabilize()
	c.heal()
	c.tickAll(3)
	c.stabilize()
	for _, e := range c.nodes[1].applied {
		if e.Index == res.Index {
			require.NotEqual(t, res.Term, e.Term, "the entry at the reported index is another term's")
			return
		}
	}
	t.Fatalf("index %d never applied on node 1", res.Index)
}
