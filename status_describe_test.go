package raft

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// Status on a follower has no progress; on a leader it has every peer's,
// as copies the caller cannot use to change the node.
func TestStatus(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	require.NoError(t, c.nodes[1].rn.Propose([]byte("x")))
	c.stabilize()

	fs := c.nodes[2].rn.Status()
	require.Equal(t, uint64(2), fs.ID)
	require.Equal(t, uint64(1), fs.Lead)
	require.Equal(t, StateFollower, fs.RaftState)
	require.Nil(t, fs.Progress)

	ls := c.nodes[1].rn.Status()
	last := c.nodes[1].r().raftLog.lastIndex()
	require.Equal(t, BasicStatus{
		ID:        1,
		HardState: pb.HardState{Term: 1, Vote: 1, Commit: last},
		SoftState: SoftState{Lead: 1, RaftState: StateLeader},
		Applied:   last,
	}, ls.BasicStatus)
	require.Equal(t, ls.BasicStatus, c.nodes[1].rn.BasicStatus())
	require.Len(t, ls.Progress, 3)
	for id, pr := range ls.Progress {
		require.Equal(t, last, pr.Match, "peer %d", id)
		require.Equal(t, last+1, pr.Next, "peer %d", id)
		require.Equal(t, "StateReplicate", pr.State.String())
	}
	// Changing the copy changes nothing in the node.
	pr := ls.Progress[2]
	pr.Match = 0
	pr.Inflights.Reset()
	require.Equal(t, last, c.nodes[1].r().trk.Progress[2].Match)
	require.Equal(t, []uint64{1, 2, 3}, ls.Config.Voters[0].Slice())
}

// Status encodes to JSON with hex IDs, the role by name and the progress
// of each peer; String is that JSON.
func TestStatusJSON(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	st := c.nodes[1].rn.Status()
	b, err := json.Marshal(st)
	require.NoError(t, err)
	require.Equal(t, string(b), st.String())

	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, "1", got["id"])
	require.Equal(t, "1", got["lead"])
	require.Equal(t, "StateLeader", got["raftState"])
	require.Equal(t, float64(1), got["term"])
	require.Equal(t, float64(st.Commit), got["commit"])
	require.Contains(t, got["config"], "voters=(1 2 3)")
	progress, ok := got["progress"].(map[string]any)
	require.True(t, ok)
	require.Len(t, progress, 3)
	p2 := progress["2"].(map[string]any)
	require.Equal(t, float64(st.Progress[2].Match), p2["match"])
	require.Equal(t, "StateReplicate", p2["state"])

	// IDs above 9 are hex, as in the logs.
	st.ID = 0x1a
	b, err = json.Marshal(st)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(b), `"id":"1a"`), "%s", b)

	// A follower's status encodes with an empty progress map.
	b, err = json.Marshal(c.nodes[2].rn.Status())
	require.NoError(t, err)
	require.Contains(t, string(b), `"progress":{}`)
}

func TestDescribe(t *testing.T) {
	quote := func(b []byte) string { return "\"" + string(b) + "\"" }
	ccV1, err := (&pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 4}).Marshal()
	require.NoError(t, err)
	ccV2, err := (&pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{
		{Type: pb.ConfChangeAddLearnerNode, NodeID: 5}, {Type: pb.ConfChangeRemoveNode, NodeID: 2},
	}, Transition: pb.ConfChangeTransitionJointExplicit}).Marshal()
	require.NoError(t, err)
	leave, err := (&pb.ConfChangeV2{}).Marshal()
	require.NoError(t, err)

	for _, tt := range []struct {
		name string
		got  string
		want string
	}{
		{"hard state", DescribeHardState(pb.HardState{Term: 3, Vote: 1, Commit: 12}), "Term:3 Vote:1 Commit:12"},
		{"hard state without vote", DescribeHardState(pb.HardState{Term: 3, Commit: 12}), "Term:3 Commit:12"},
		{"soft state", DescribeSoftState(SoftState{Lead: 2, RaftState: StateFollower}), "Lead:2 State:StateFollower"},
		{"conf state", DescribeConfState(pb.ConfState{Voters: []uint64{1, 2, 3}}), "Voters:[1 2 3]"},
		{"joint conf state", DescribeConfState(pb.ConfState{Voters: []uint64{1, 2}, VotersOutgoing: []uint64{1, 3},
			Learners: []uint64{4}, LearnersNext: []uint64{3}, AutoLeave: true}),
			"Voters:[1 2] VotersOutgoing:[1 3] Learners:[4] LearnersNext:[3] AutoLeave:true"},
		{"snapshot", DescribeSnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 9, Term: 2,
			ConfState: pb.ConfState{Voters: []uint64{1}}}}), "Index:9 Term:2 ConfState:Voters:[1]"},
		{"entry, no formatter", DescribeEntry(pb.Entry{Term: 2, Index: 7, Data: []byte("put x=1")}, nil), "2/7 EntryNormal (7 bytes)"},
		{"entry, formatter", DescribeEntry(pb.Entry{Term: 2, Index: 7, Data: []byte("put x=1")}, quote), `2/7 EntryNormal "put x=1"`},
		{"empty entry", DescribeEntry(pb.Entry{Term: 2, Index: 8}, nil), "2/8 EntryNormal (empty)"},
		{"conf change", DescribeEntry(pb.Entry{Term: 1, Index: 1, Type: pb.EntryConfChange, Data: ccV1}, quote), "1/1 EntryConfChange v4"},
		{"conf change v2", DescribeEntry(pb.Entry{Term: 1, Index: 2, Type: pb.EntryConfChangeV2, Data: ccV2}, nil),
			"1/2 EntryConfChangeV2 l5 r2 ConfChangeTransitionJointExplicit"},
		{"leave joint", DescribeEntry(pb.Entry{Term: 1, Index: 3, Type: pb.EntryConfChangeV2, Data: leave}, nil), "1/3 EntryConfChangeV2 leave-joint"},
		{"entries", DescribeEntries([]pb.Entry{{Term: 1, Index: 1}, {Term: 1, Index: 2, Data: []byte("a")}}, nil),
			"1/1 EntryNormal (empty)\n1/2 EntryNormal (1 bytes)\n"},
		{"append", DescribeMessage(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 3, LogTerm: 2, Index: 5, Commit: 4,
			Entries: []pb.Entry{{Term: 3, Index: 6, Data: []byte("abcd")}}}, nil),
			"1->2 MsgApp Term:3 Log:2/5 Commit:4 Entries:[3/6 EntryNormal (4 bytes)]"},
		{"rejection", DescribeMessage(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 3, LogTerm: 2, Index: 5, Reject: true, RejectHint: 3}, nil),
			"2->1 MsgAppResp Term:3 Log:2/5 Rejected (Hint: 3)"},
		{"vote with context", DescribeMessage(pb.Message{From: 3, To: 1, Type: pb.MsgVote, Term: 4, LogTerm: 3, Index: 9, Context: []byte("CampaignTransfer")}, nil),
			`3->1 MsgVote Term:4 Log:3/9 Context:"CampaignTransfer"`},
		{"snapshot message", DescribeMessage(pb.Message{From: 1, To: 2, Type: pb.MsgSnap, Term: 3,
			Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 9, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}}}, nil),
			"1->2 MsgSnap Term:3 Log:0/0 Snapshot: Index:9 Term:2 ConfState:Voters:[1 2]"},
		{"local message", DescribeMessage(pb.Message{From: 1, To: None, Type: pb.MsgHup}, nil), "1->_ MsgHup Term:0 Log:0/0"},
		{"empty ready", DescribeReady(Ready{MustSync: true}, nil), ""},
		{"ready", DescribeReady(Ready{
			SoftState:        &SoftState{Lead: 1, RaftState: StateLeader},
			HardState:        pb.HardState{Term: 2, Vote: 1, Commit: 3},
			Entries:          []pb.Entry{{Term: 2, Index: 4, Data: []byte("x")}},
			CommittedEntries: []pb.Entry{{Term: 2, Index: 3}},
			Messages:         []pb.Message{{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 2, Commit: 3}},
			MustSync:         true,
		}, quote), "SoftState Lead:1 State:StateLeader\nHardState Term:2 Vote:1 Commit:3\nEntries:\n2/4 EntryNormal \"x\"\n" +
			"CommittedEntries:\n2/3 EntryNormal \"\"\nMessages:\n1->2 MsgHeartbeat Term:2 Log:0/0 Commit:3\nMustSync\n"},
	} {
		require.Equal(t, tt.want, tt.got, tt.name)
	}
}

// A conf change entry whose payload does not decode is described, not
// panicked on: Describe functions render whatever a log holds.
func TestDescribeUndecodableConfChange(t *testing.T) {
	got := DescribeEntry(pb.Entry{Term: 1, Index: 1, Type: pb.EntryConfChange, Data: []byte{0xff, 0xff}}, nil)
	require.True(t, strings.HasPrefix(got, "1/1 EntryConfChange <undecodable conf change: "), got)
}
