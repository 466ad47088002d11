package raft

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// statusCluster is a 3-node cluster led by node 1 that committed one
// proposal on top of the leader's empty entry, with node 3 cut off before a
// second proposal so that the leader's view of it lags.
func statusCluster(t *testing.T) *testCluster {
	t.Helper()
	c := newTestCluster(t, 3)
	c.campaign(1)
	require.NoError(t, c.nodes[1].rn.Propose([]byte("a")))
	c.stabilize()
	c.isolate(3)
	require.NoError(t, c.nodes[1].rn.Propose([]byte("b")))
	c.stabilize()
	return c
}

// A follower's status has its basic state and the configuration, but no
// progress: only the leader tracks its peers.
func TestStatusOfFollowerHasNoProgress(t *testing.T) {
	c := statusCluster(t)
	st := c.nodes[2].rn.Status()
	require.Equal(t, BasicStatus{
		ID:        2,
		HardState: pb.HardState{Term: 1, Vote: 1, Commit: 3},
		SoftState: SoftState{Lead: 1, RaftState: StateFollower},
		Applied:   3,
	}, st.BasicStatus)
	require.Nil(t, st.Progress)
	require.Equal(t, []uint64{1, 2, 3}, st.Config.Voters[0].Slice())
	require.Empty(t, st.Config.Voters[1], "not joint")

	// The cut-off follower saw only the first proposal committed.
	st3 := c.nodes[3].rn.BasicStatus()
	require.Equal(t, uint64(3), st3.ID)
	require.Equal(t, uint64(1), st3.Lead)
	require.Equal(t, uint64(2), st3.Commit)
	require.Equal(t, uint64(2), st3.Applied)

	// A node that has not heard of any leader yet.
	n := newTestNode(t, 5, []uint64{5, 6, 7})
	fresh := n.rn.Status()
	require.Equal(t, BasicStatus{ID: 5, SoftState: SoftState{Lead: None, RaftState: StateFollower}}, fresh.BasicStatus)
	require.Nil(t, fresh.Progress)
}

// The leader's status holds the progress of every voter, itself included,
// with what it knows of each peer's log.
func TestStatusOfLeaderHasProgressOfEveryVoter(t *testing.T) {
	c := statusCluster(t)
	st := c.nodes[1].rn.Status()
	require.Equal(t, BasicStatus{
		ID:        1,
		HardState: pb.HardState{Term: 1, Vote: 1, Commit: 3},
		SoftState: SoftState{Lead: 1, RaftState: StateLeader},
		Applied:   3,
	}, st.BasicStatus)
	require.Len(t, st.Progress, 3)
	for _, id := range []uint64{1, 2} {
		pr := st.Progress[id]
		require.Equal(t, uint64(3), pr.Match, "peer %d", id)
		require.Equal(t, uint64(4), pr.Next, "peer %d", id)
		require.Equal(t, tracker.StateReplicate, pr.State, "peer %d", id)
		require.False(t, pr.IsLearner)
	}
	// Node 3 acknowledged the first proposal only; the second is in
	// flight to it.
	pr3 := st.Progress[3]
	require.Equal(t, uint64(2), pr3.Match)
	require.Equal(t, uint64(4), pr3.Next)
	require.Equal(t, tracker.StateReplicate, pr3.State)
	require.Equal(t, 1, pr3.Inflights.Count())

	// The progress and configuration are copies.
	pr3.Inflights.Reset()
	pr3.Match = 0
	st.Progress[3] = pr3
	delete(st.Config.Voters[0], 2)
	require.Equal(t, uint64(2), c.nodes[1].r().trk.Progress[3].Match)
	require.Equal(t, 1, c.nodes[1].r().trk.Progress[3].Inflights.Count())
	require.Equal(t, []uint64{1, 2, 3}, c.nodes[1].r().trk.Voters[0].Slice())
}

// BasicStatus is the cheap part of Status: the same fields, without
// allocating.
func TestBasicStatusMatchesStatusWithoutAllocating(t *testing.T) {
	c := statusCluster(t)
	for _, id := range c.ids {
		rn := c.nodes[id].rn
		require.Equal(t, rn.Status().BasicStatus, rn.BasicStatus(), "node %d", id)
	}
	rn := c.nodes[1].rn
	allocs := testing.AllocsPerRun(50, func() { _ = rn.BasicStatus() })
	require.Zero(t, allocs)
}

// A leader handing over leadership shows the transferee until the
// transfer ends.
func TestStatusShowsLeadTransferee(t *testing.T) {
	c := statusCluster(t)
	// Node 3 is cut off and behind: the transfer waits for it.
	c.nodes[1].rn.TransferLeader(3)
	c.stabilize()
	st := c.nodes[1].rn.Status()
	require.Equal(t, uint64(3), st.LeadTransferee)
	require.Equal(t, uint64(3), c.nodes[1].rn.BasicStatus().LeadTransferee)
	require.Zero(t, c.nodes[2].rn.BasicStatus().LeadTransferee)

	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(st.String()), &got))
	require.Equal(t, "3", got["leadtransferee"])
}

// Status encodes to JSON; the result parses back into a generic map with
// the node's IDs in hex, the role by name and each peer's progress keyed by
// its hex ID. String is that same JSON.
func TestStatusJSONOfLeader(t *testing.T) {
	c := statusCluster(t)
	st := c.nodes[1].rn.Status()
	b, err := json.Marshal(st)
	require.NoError(t, err)
	require.Equal(t, string(b), st.String(), "String renders the status as JSON")

	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, map[string]any{
		"id":             "1",
		"term":           float64(1),
		"vote":           "1",
		"commit":         float64(3),
		"lead":           "1",
		"raftState":      "StateLeader",
		"applied":        float64(3),
		"config":         "voters=(1 2 3)",
		"leadtransferee": "0",
		"progress": map[string]any{
			"1": map[string]any{"match": float64(3), "next": float64(4), "state": "StateReplicate", "recentActive": true},
			"2": map[string]any{"match": float64(3), "next": float64(4), "state": "StateReplicate", "recentActive": true},
			"3": map[string]any{"match": float64(2), "next": float64(4), "state": "StateReplicate", "recentActive": true,
				"inflight": float64(1)},
		},
	}, got)
}

// A follower's JSON has an empty progress map (not null) and its role.
func TestStatusJSONOfFollower(t *testing.T) {
	c := statusCluster(t)
	st := c.nodes[2].rn.Status()
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(st.String()), &got))
	require.Equal(t, "2", got["id"])
	require.Equal(t, "1", got["lead"])
	require.Equal(t, "StateFollower", got["raftState"])
	require.Equal(t, map[string]any{}, got["progress"])

	// Without a leader, lead and vote render as "0" (None).
	st = newTestNode(t, 5, []uint64{5, 6, 7}).rn.Status()
	got = nil
	require.NoError(t, json.Unmarshal([]byte(st.String()), &got))
	require.Equal(t, "0", got["lead"])
	require.Equal(t, "0", got["vote"])
	require.Equal(t, "StateFollower", got["raftState"])
}

// Learners appear in the leader's progress, marked as such, and a probe
// that is waiting for its answer shows as paused.
func TestStatusJSONOfLearner(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	require.NoError(t, c.nodes[1].rn.ProposeConfChange(pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: 4}))
	// Node 4 does not exist: its messages are dropped. A proposal after
	// the change probes it, and the probe is never answered.
	c.stabilize()
	require.NoError(t, c.nodes[1].rn.Propose([]byte("x")))
	c.stabilize()

	st := c.nodes[1].rn.Status()
	require.Len(t, st.Progress, 4)
	pr4 := st.Progress[4]
	require.True(t, pr4.IsLearner)
	require.Equal(t, tracker.StateProbe, pr4.State)
	require.True(t, pr4.IsPaused())

	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(st.String()), &got))
	require.Equal(t, "voters=(1 2 3) learners=(4)", got["config"])
	progress := got["progress"].(map[string]any)
	require.Len(t, progress, 4)
	require.Equal(t, map[string]any{
		"match": float64(0), "next": float64(pr4.Next), "state": "StateProbe",
		"learner": true, "paused": true, "recentActive": true,
	}, progress["4"])
	require.NotContains(t, progress["2"], "learner")
}

// Node IDs are rendered in hex in the JSON, both as values and as progress
// keys, as the logs show them.
func TestStatusJSONRendersIDsInHex(t *testing.T) {
	n := newTestNode(t, 26, []uint64{26})
	require.NoError(t, n.rn.Campaign())
	n.ready()
	st := n.rn.Status()
	require.Equal(t, StateLeader, st.RaftState)

	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(st.String()), &got))
	require.Equal(t, "1a", got["id"])
	require.Equal(t, "1a", got["lead"])
	require.Equal(t, "1a", got["vote"])
	require.Contains(t, got["progress"], "1a")
	require.NotContains(t, got["progress"], "26")
	// The configuration is rendered by tracker.Config.String, which uses
	// decimal IDs; the same node is "1a" above.
	require.Equal(t, "voters=(26)", got["config"])
}

// Every role has a readable name in the JSON.
func TestStatusJSONRoleNames(t *testing.T) {
	for _, tt := range []struct {
		state StateType
		want  string
	}{
		{StateFollower, "StateFollower"},
		{StateCandidate, "StateCandidate"},
		{StateLeader, "StateLeader"},
		{StatePreCandidate, "StatePreCandidate"},
		{StateType(9), "StateType(9)"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			st := Status{BasicStatus: BasicStatus{ID: 1, SoftState: SoftState{RaftState: tt.state}}}
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(st.String()), &got))
			require.Equal(t, tt.want, got["raftState"])
		})
	}
}

// WithProgress visits every member's progress in ID order, marking
// learners, with the values Status reports (without the Inflights), and
// without allocating.
func TestWithProgress(t *testing.T) {
	c := statusCluster(t)
	leader := c.nodes[1]
	leader.rn.ApplyConfChange(pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: 4})
	leader.ready()
	st := leader.rn.Status()

	type visit struct {
		id  uint64
		typ ProgressType
	}
	var visits []visit
	leader.rn.WithProgress(func(id uint64, typ ProgressType, pr tracker.Progress) {
		visits = append(visits, visit{id, typ})
		require.Nil(t, pr.Inflights, "peer %d", id)
		want := st.Progress[id]
		want.Inflights = nil
		require.Equal(t, want, pr, "peer %d", id)
		// The visitor has a copy.
		pr.Match = 99
	})
	require.Equal(t, []visit{{1, ProgressTypePeer}, {2, ProgressTypePeer}, {3, ProgressTypePeer}, {4, ProgressTypeLearner}}, visits)
	require.Equal(t, uint64(2), leader.r().trk.Progress[3].Match)
	require.Equal(t, ProgressType(0), ProgressTypePeer)
	require.Equal(t, ProgressType(1), ProgressTypeLearner)

	var n int
	visitor := func(uint64, ProgressType, tracker.Progress) { n++ }
	allocs := testing.AllocsPerRun(50, func() { leader.rn.WithProgress(visitor) })
	require.Zero(t, allocs)
	require.Equal(t, 4*51, n)

	// A follower tracks no progress but visits every member all the same,
	// as a new leader would start it (its own Match at its last index),
	// without allocating either.
	follower := c.nodes[2]
	follower.rn.ApplyConfChange(pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: 4})
	follower.ready()
	next := follower.r().raftLog.lastIndex() + 1
	visits = nil
	follower.rn.WithProgress(func(id uint64, typ ProgressType, pr tracker.Progress) {
		visits = append(visits, visit{id, typ})
		want := tracker.Progress{Next: next, IsLearner: typ == ProgressTypeLearner}
		if id == 2 {
			want.Match = next - 1 // its own
		}
		require.Equal(t, want, pr, "peer %d", id)
	})
	require.Equal(t, []visit{{1, ProgressTypePeer}, {2, ProgressTypePeer}, {3, ProgressTypePeer}, {4, ProgressTypeLearner}}, visits)
	n = 0
	allocs = testing.AllocsPerRun(50, func() { follower.rn.WithProgress(visitor) })
	require.Zero(t, allocs)
	require.Equal(t, 4*51, n)
}
