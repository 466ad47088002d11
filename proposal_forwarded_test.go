package raft

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// forwardOnNode2 proposes data on follower 2 and returns its ForwardID.
func forwardOnNode2(t *testing.T, c *testCluster, data string) uint64 {
	t.Helper()
	res, err := c.nodes[2].rn.ProposeWithResult([]byte(data))
	require.NoError(t, err)
	require.True(t, res.Forwarded)
	require.NotZero(t, res.ForwardID)
	return res.ForwardID
}

// appliedAt returns the entry node n applied at index.
func appliedAt(t *testing.T, n *testNode, index uint64) pb.Entry {
	t.Helper()
	for _, e := range n.applied {
		if e.Index == index {
			return e
		}
	}
	t.Fatalf("node %d never applied index %d", n.r().id, index)
	return pb.Entry{}
}

// dropWhile drops the messages match selects while *on is true.
func dropWhile(on *bool, match func(m *pb.Message) bool) func(*pb.Message) bool {
	return func(m *pb.Message) bool { return !*on || !match(m) }
}

// A follower learns where the leader appended the proposal it forwarded,
// once the entry arrives; that entry is the one applied there. Proposals
// made with Propose are not followed, as in etcd raft.
func TestForwardedAppended(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	require.NoError(t, c.nodes[2].rn.Propose([]byte("not followed")))
	require.Nil(t, c.nodes[2].r().forwarded(), "Propose watches nothing")

	id := forwardOnNode2(t, c, "followed")
	require.Empty(t, c.nodes[2].rn.ForwardedOutcomes(), "nothing known before the leader's append arrives")
	c.stabilize()
	out := c.nodes[2].rn.ForwardedOutcomes()
	leaderLast := c.nodes[1].r().raftLog.lastEntryID()
	require.Equal(t, []ForwardedOutcome{{ForwardID: id, Index: leaderLast.index, Term: leaderLast.term}}, out)
	got := appliedAt(t, c.nodes[2], out[0].Index)
	require.Equal(t, out[0].Term, got.Term)
	require.Equal(t, []byte("followed"), got.Data)
	require.Empty(t, c.nodes[2].rn.ForwardedOutcomes(), "each outcome is reported once")
}

// The leader appends the forwarded proposal and the follower sees it, but
// it does not commit; a new leader that never had it overwrites it. The
// follower reported (index, term), and the entry it applies at that index
// has another term: the proposal is lost, and was applied nowhere.
func TestForwardedAppendedThenOverwritten(t *testing.T) {
	c := newTestCluster(t, 5)
	c.campaign(1)
	partial := true
	// Node 1's appends reach node 2 only, and node 2's acknowledgements
	// are lost: the entry cannot commit.
	c.intercept = dropWhile(&partial, func(m *pb.Message) bool {
		return (m.From == 1 && m.To != 2 && m.Type == pb.MsgApp) || (m.From == 2 && m.To == 1 && m.Type == pb.MsgAppResp)
	})
	id := forwardOnNode2(t, c, "doomed")
	c.stabilize()
	out := c.nodes[2].rn.ForwardedOutcomes()
	require.Len(t, out, 1)
	require.Equal(t, ForwardedOutcome{ForwardID: id, Index: out[0].Index, Term: 1}, out[0])
	require.Less(t, c.nodes[2].r().raftLog.committed, out[0].Index, "not committed")

	partial = false
	c.isolate(1)
	c.campaign(3) // elected by 3, 4 and 5; node 2's longer log refuses its vote
	require.Equal(t, StateLeader, c.nodes[3].r().state)
	c.stabilize()
	got := appliedAt(t, c.nodes[2], out[0].Index)
	require.NotEqual(t, out[0].Term, got.Term, "another term's entry at the reported index: the proposal is lost")
	c.heal()
	c.stabilize()
	for _, n := range c.nodes {
		for _, e := range n.applied {
			require.NotEqual(t, []byte("doomed"), e.Data, "node %d applied the lost proposal", n.r().id)
		}
	}
	require.Empty(t, c.nodes[2].rn.ForwardedOutcomes())
}

// The leader appends the forwarded proposal and loses leadership before
// the follower sees it; the next leader had it and brings it to the
// follower: the follower still learns where it was appended (the old
// leader's term), and that it committed.
func TestForwardedAppendedAcrossLeaderChange(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	partial := true
	c.intercept = dropWhile(&partial, func(m *pb.Message) bool { return m.From == 1 && m.To == 2 && m.Type == pb.MsgApp })
	id := forwardOnNode2(t, c, "survivor")
	c.stabilize()
	require.Empty(t, c.nodes[2].rn.ForwardedOutcomes())

	partial = false
	c.isolate(1)
	c.campaign(3)
	require.Equal(t, StateLeader, c.nodes[3].r().state)
	c.stabilize()
	require.Equal(t, uint64(2), c.nodes[2].r().Term)
	out := c.nodes[2].rn.ForwardedOutcomes()
	require.Len(t, out, 1)
	require.Equal(t, ForwardedOutcome{ForwardID: id, Index: out[0].Index, Term: 1}, out[0])
	got := appliedAt(t, c.nodes[2], out[0].Index)
	require.Equal(t, out[0].Term, got.Term, "committed")
	require.Equal(t, []byte("survivor"), got.Data)
}

// A forwarded proposal whose entry does not show up within the window is
// reported unknown, not lost: here it was only delayed, and commits after
// the report.
func TestForwardedUnknown(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	var held []pb.Message
	c.intercept = func(m *pb.Message) bool {
		if m.Type == pb.MsgProp {
			held = append(held, *m)
			return false
		}
		return true
	}
	id := forwardOnNode2(t, c, "late")
	c.stabilize()
	require.Len(t, held, 1)
	window := forwardedWatchElections * c.nodes[2].r().electionTimeout
	c.tickAll(window - 1)
	require.Empty(t, c.nodes[2].rn.ForwardedOutcomes(), "still looked for")
	c.tickAll(1)
	require.Equal(t, []ForwardedOutcome{{ForwardID: id, Unknown: true}}, c.nodes[2].rn.ForwardedOutcomes())

	// The delayed proposal reaches the leader after all, and commits: an
	// unknown outcome may still be a success.
	require.Equal(t, StateLeader, c.nodes[1].r().state)
	require.NoError(t, c.nodes[1].rn.Step(held[0]))
	c.stabilize()
	last := c.nodes[2].applied[len(c.nodes[2].applied)-1]
	require.Equal(t, []byte("late"), last.Data)
	require.Empty(t, c.nodes[2].rn.ForwardedOutcomes(), "given up: not reported again")
}

// At most maxForwardedWatched proposals are looked for; past that the
// oldest is given up as unknown.
func TestForwardedWatchBounded(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	first := forwardOnNode2(t, c, "0")
	for i := 1; i <= maxForwardedWatched; i++ {
		forwardOnNode2(t, c, string(rune(i)))
	}
	require.Equal(t, maxForwardedWatched, c.nodes[2].r().forwarded().watched)
	require.Equal(t, []ForwardedOutcome{{ForwardID: first, Unknown: true}}, c.nodes[2].rn.ForwardedOutcomes())
}

// An entry with the same bytes appended in a term before the one the
// proposal was forwarded in is not it: no leader of an earlier term can
// have received it.
func TestForwardedEarlierTermNotMatched(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	cutOff := true
	c.intercept = dropWhile(&cutOff, func(m *pb.Message) bool {
		return (m.To == 2 && m.Type == pb.MsgApp) || m.Type == pb.MsgProp
	})
	require.NoError(t, c.nodes[1].rn.Propose([]byte("same")))
	c.stabilize() // committed by 1 and 3, at term 1; node 2 lacks it
	c.campaign(3)
	c.tickAll(1) // node 2 learns of leader 3 from a heartbeat
	require.Equal(t, uint64(3), c.nodes[2].r().lead)
	require.Equal(t, uint64(2), c.nodes[2].r().Term)
	forwardOnNode2(t, c, "same")
	c.stabilize() // the forwarded proposal is dropped on its way
	cutOff = false
	c.tickAll(1)
	require.Equal(t, c.nodes[3].r().raftLog.lastIndex(), c.nodes[2].r().raftLog.lastIndex())
	require.Equal(t, []byte("same"), appliedAt(t, c.nodes[2], 2).Data, "node 2 received the term-1 entry")
	require.Empty(t, c.nodes[2].rn.ForwardedOutcomes())
}

// A forwarded proposal with empty data is reported unknown at once: the
// empty entry a new leader appends would otherwise be taken for it, and
// the application told its proposal was appended when it never reached a
// leader.
func TestForwardedEmptyProposalUnknown(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgProp } // lost
	res, err := c.nodes[2].rn.ProposeWithResult(nil)
	require.NoError(t, err)
	c.stabilize()
	c.intercept = nil
	c.campaign(3)
	c.stabilize()
	outs := c.nodes[2].rn.ForwardedOutcomes()
	require.Len(t, outs, 1)
	require.Equal(t, res.ForwardID, outs[0].ForwardID)
	require.True(t, outs[0].Unknown, "reported %+v", outs[0])
}

// Outcomes never taken are bounded: the oldest are dropped.
func TestForwardedOutcomesBounded(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgProp }
	for i := 0; i < 3*maxForwardedWatched; i++ {
		_, err := c.nodes[2].rn.ProposeWithResult([]byte{byte(i), byte(i >> 8)})
		require.NoError(t, err)
	}
	f := c.nodes[2].r().forwarded()
	require.LessOrEqual(t, len(f.outcomes), maxForwardedWatched)
	// The first 2×4096 were given up (the watch holds 4096); the newest
	// 4096 of those outcomes are kept.
	outs := c.nodes[2].rn.ForwardedOutcomes()
	require.Len(t, outs, maxForwardedWatched)
	require.Equal(t, uint64(maxForwardedWatched+1), outs[0].ForwardID)
	require.Equal(t, uint64(2*maxForwardedWatched), outs[len(outs)-1].ForwardID)
}
