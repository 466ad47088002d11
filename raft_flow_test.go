package raft

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// newReplicatingLeader returns node 1 leading {1,2} with peer 2 in the
// replicate state, every entry acknowledged, and an inflight window of
// maxInflight appends.
func newReplicatingLeader(t *testing.T, maxInflight int, maxMsgSize uint64) *testNode {
	t.Helper()
	n := newTestNode(t, 1, []uint64{1, 2}, func(c *Config) { c.MaxInflightMsgs = maxInflight; c.MaxSizePerMsg = maxMsgSize })
	require.NoError(t, n.rn.Campaign())
	n.ready()
	n.step(pb.Message{From: 2, To: 1, Term: n.r().Term, Type: pb.MsgVoteResp})
	require.Equal(t, StateLeader, n.r().state)
	n.ready()
	n.step(pb.Message{From: 2, To: 1, Term: n.r().Term, Type: pb.MsgAppResp, Index: n.r().raftLog.lastIndex()})
	n.ready()
	require.Equal(t, tracker.StateReplicate, n.r().trk.Progress[2].State)
	return n
}

// countApps counts the MsgApp messages to peer 2 in msgs.
func countApps(msgs []pb.Message) int {
	c := 0
	for _, m := range msgs {
		if m.Type == pb.MsgApp && m.To == 2 {
			c++
		}
	}
	return c
}

// TestFullWindowHeartbeatResponse: a heartbeat response while the window is
// full lets exactly one more append out (lost acknowledgements cannot stall
// the peer forever) and never overfills the window.
func TestFullWindowHeartbeatResponse(t *testing.T) {
	n := newReplicatingLeader(t, 2, 0)
	for i := 0; i < 5; i++ {
		require.NoError(t, n.rn.Propose([]byte("x")))
	}
	require.Equal(t, 2, countApps(n.ready()), "the window allows two appends")
	pr := n.r().trk.Progress[2]
	require.True(t, pr.IsPaused())

	for i := 0; i < 3; i++ {
		require.NotPanics(t, func() {
			require.NoError(t, n.rn.Step(pb.Message{From: 2, To: 1, Term: n.r().Term, Type: pb.MsgHeartbeatResp}))
		})
		require.Equal(t, 1, countApps(n.ready()), "one append per heartbeat response on a full window")
		require.LessOrEqual(t, pr.Inflights.Count(), 2)
	}
}

// TestStaleAckDoesNotOpenFullWindow: an acknowledgement that raises Match
// but lies below every in-flight append frees nothing; the window stays full
// and nothing more is sent (before, this reopened the window and the next
// send panicked).
func TestStaleAckDoesNotOpenFullWindow(t *testing.T) {
	n := newReplicatingLeader(t, 1, noLimit)
	match := n.r().trk.Progress[2].Match
	// One append carrying three entries fills the window of one.
	n.step(pb.Message{From: 1, To: 1, Type: pb.MsgProp, Entries: []pb.Entry{{Data: []byte("a")}, {Data: []byte("b")}, {Data: []byte("c")}}})
	require.Equal(t, 1, countApps(n.ready()))
	// A late acknowledgement of only the first of them.
	require.NotPanics(t, func() {
		require.NoError(t, n.rn.Step(pb.Message{From: 2, To: 1, Term: n.r().Term, Type: pb.MsgAppResp, Index: match + 1}))
		require.NoError(t, n.rn.Propose([]byte("d")))
	})
	require.Equal(t, match+1, n.r().trk.Progress[2].Match)
	require.Equal(t, 0, countApps(n.ready()), "the window is still full")
}

// TestAckPastLastIndexRefused: a peer acknowledging entries the leader
// never had is refused, and its progress is unchanged.
func TestAckPastLastIndexRefused(t *testing.T) {
	n := newReplicatingLeader(t, 4, 0)
	before := *n.r().trk.Progress[2]
	last := n.r().raftLog.lastIndex()
	err := n.rn.Step(pb.Message{From: 2, To: 1, Term: n.r().Term, Type: pb.MsgAppResp, Index: last + 100})
	require.ErrorIs(t, err, ErrInvalidMessage)
	after := *n.r().trk.Progress[2]
	require.Equal(t, before.Match, after.Match)
	require.Equal(t, before.Next, after.Next)
	require.Equal(t, last, n.r().raftLog.committed, "commit unchanged")
}

// TestRefusalAtOrBelowMatchIgnored: a peer refusing an index it has
// acknowledged in this term (impossible for a correct peer) gets no new
// probe: probing it again would be refused again, round trip after round
// trip, one more such loop started at each heartbeat response.
func TestRefusalAtOrBelowMatchIgnored(t *testing.T) {
	n := newReplicatingLeader(t, 4, noLimit)
	pr := n.r().trk.Progress[2]
	pr.BecomeProbe()
	match := pr.Match
	require.Equal(t, match+1, pr.Next)
	n.step(pb.Message{From: 2, To: 1, Term: n.r().Term, Type: pb.MsgAppResp, Index: match, Reject: true, RejectHint: match, LogTerm: n.r().Term})
	require.Equal(t, 0, countApps(n.ready()), "no probe for a refusal at the match index")
	require.Equal(t, match, pr.Match)
	require.Equal(t, match+1, pr.Next)
}

// TestAckThatCommitsFillsTheWindow: a follower catching up on a backlog
// whose acknowledgements each move the commit index (it is needed for the
// quorum: the third voter is down) gets a full window of appends per
// acknowledgement, not only the one the commit's broadcast sends.
func TestAckThatCommitsFillsTheWindow(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3}, func(c *Config) { c.MaxSizePerMsg = 150; c.MaxInflightMsgs = 4 })
	n.makeLeader()
	for i := 0; i < 40; i++ {
		require.NoError(t, n.rn.Propose(make([]byte, 100)))
	}
	n.ready()
	r := n.r()
	ack := uint64(1) // the leader's first entry, sent by makeLeader
	for round := 0; round < 4; round++ {
		committed := r.raftLog.committed
		n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: r.Term, Index: ack})
		require.Greater(t, r.raftLog.committed, committed, "round %d: the acknowledgement commits", round)
		apps := filterMsgs(n.ready(), pb.MsgApp, 2)
		require.Len(t, apps, 4, "round %d: a window of appends (%s)", round, r.trk.Progress[2])
		for _, m := range apps {
			require.Len(t, m.Entries, 1, "150 bytes hold one entry of 100")
		}
		// Everything sent so far is acknowledged at once.
		last := apps[len(apps)-1]
		ack = last.Index + uint64(len(last.Entries))
	}
}

// TestProbeAnsweredAtMatchReplicatesAgain: a caught-up follower put back
// in probe (ReportUnreachable) answers the probe with its match index,
// which moves nothing; it replicates again, so the next proposal reaches
// it at once rather than at the next heartbeat response.
func TestProbeAnsweredAtMatchReplicatesAgain(t *testing.T) {
	n := newReplicatingLeader(t, 256, 0)
	r := n.r()
	pr := r.trk.Progress[2]
	n.rn.ReportUnreachable(2)
	require.Equal(t, tracker.StateProbe, pr.State)
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgHeartbeatResp, Term: r.Term})
	probes := filterMsgs(n.ready(), pb.MsgApp, 2)
	require.Len(t, probes, 1)
	require.Equal(t, pr.Match, probes[0].Index, "the probe is empty, at the match index")
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: r.Term, Index: pr.Match})
	require.Equal(t, tracker.StateReplicate, pr.State)
	n.ready()
	require.NoError(t, n.rn.Propose([]byte("x")))
	require.Len(t, filterMsgs(n.ready(), pb.MsgApp, 2), 1, "the proposal is sent at once")
}
