package raft

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// quoted is an EntryFormatter that shows the payload as a Go string.
func quoted(b []byte) string { return fmt.Sprintf("%q", b) }

// ccData encodes a conf change for an entry's Data.
func ccData(t *testing.T, cc pb.ConfChangeI) (pb.EntryType, []byte) {
	t.Helper()
	typ, data, err := pb.MarshalConfChange(cc)
	require.NoError(t, err)
	return typ, data
}

// ccEntry is a conf change entry at term/index.
func ccEntry(t *testing.T, term, index uint64, cc pb.ConfChangeI) pb.Entry {
	t.Helper()
	typ, data := ccData(t, cc)
	return pb.Entry{Term: term, Index: index, Type: typ, Data: data}
}

func TestDescribeStates(t *testing.T) {
	for _, tt := range []struct {
		name string
		got  string
		want string
	}{
		{"zero hard state", DescribeHardState(pb.HardState{}), "Term:0 Commit:0"},
		{"hard state with vote", DescribeHardState(pb.HardState{Term: 5, Vote: 3, Commit: 9}), "Term:5 Vote:3 Commit:9"},
		{"hard state without vote", DescribeHardState(pb.HardState{Term: 5, Commit: 9}), "Term:5 Commit:9"},

		{"zero soft state", DescribeSoftState(SoftState{}), "Lead:0 State:StateFollower"},
		{"leader", DescribeSoftState(SoftState{Lead: 2, RaftState: StateLeader}), "Lead:2 State:StateLeader"},
		{"pre-candidate", DescribeSoftState(SoftState{RaftState: StatePreCandidate}), "Lead:0 State:StatePreCandidate"},
		{"candidate", DescribeSoftState(SoftState{RaftState: StateCandidate}), "Lead:0 State:StateCandidate"},
		{"unknown role", DescribeSoftState(SoftState{Lead: 1, RaftState: StateType(7)}), "Lead:1 State:StateType(7)"},

		{"empty conf state", DescribeConfState(pb.ConfState{}), "Voters:[] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false"},
		{"voters only", DescribeConfState(pb.ConfState{Voters: []uint64{1, 2, 3}}), "Voters:[1 2 3] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false"},
		{"voters and learners", DescribeConfState(pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}),
			"Voters:[1 2 3] VotersOutgoing:[] Learners:[4] LearnersNext:[] AutoLeave:false"},
		{"joint conf state", DescribeConfState(pb.ConfState{
			Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3}, LearnersNext: []uint64{3}, AutoLeave: true,
		}), "Voters:[1 2 4] VotersOutgoing:[1 2 3] Learners:[] LearnersNext:[3] AutoLeave:true"},
		{"every conf state field", DescribeConfState(pb.ConfState{Voters: []uint64{1, 2}, VotersOutgoing: []uint64{1, 3},
			Learners: []uint64{4}, LearnersNext: []uint64{3}, AutoLeave: true}),
			"Voters:[1 2] VotersOutgoing:[1 3] Learners:[4] LearnersNext:[3] AutoLeave:true"},

		{"empty snapshot", DescribeSnapshot(pb.Snapshot{}), "Index:0 Term:0 ConfState:Voters:[] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false"},
		{"snapshot", DescribeSnapshot(pb.Snapshot{
			Data: []byte("state machine"),
			Metadata: pb.SnapshotMetadata{Index: 100, Term: 7,
				ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{5}}},
		}), "Index:100 Term:7 ConfState:Voters:[1 2 3] VotersOutgoing:[] Learners:[5] LearnersNext:[] AutoLeave:false"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.got)
		})
	}
}

func TestDescribeEntryPayloads(t *testing.T) {
	var seen [][]byte
	recording := func(b []byte) string {
		seen = append(seen, b)
		return fmt.Sprintf("<%d>", len(b))
	}
	for _, tt := range []struct {
		name string
		e    pb.Entry
		f    EntryFormatter
		want string
	}{
		{"nil formatter quotes the data", pb.Entry{Term: 2, Index: 7, Data: []byte("put x=1\n")}, nil,
			`2/7 EntryNormal "put x=1\n"`},
		{"custom formatter shows the data", pb.Entry{Term: 2, Index: 7, Data: []byte("put x=1")}, func(b []byte) string { return string(b) },
			`2/7 EntryNormal put x=1`},
		{"nil formatter on an empty entry", pb.Entry{Term: 3, Index: 9}, nil,
			`3/9 EntryNormal ""`},
		{"custom formatter on an empty entry", pb.Entry{Term: 3, Index: 9}, quoted,
			`3/9 EntryNormal ""`},
		{"v1 add voter, formatter and context ignored",
			ccEntry(t, 1, 3, pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 4, Context: []byte("10.0.0.4:2380")}), quoted,
			"1/3 EntryConfChange v4"},
		{"v1 add learner", ccEntry(t, 1, 3, pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: 5}), nil,
			"1/3 EntryConfChange l5"},
		{"v1 remove", ccEntry(t, 1, 3, pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: 2}), nil,
			"1/3 EntryConfChange r2"},
		{"v1 update", ccEntry(t, 1, 3, pb.ConfChange{Type: pb.ConfChangeUpdateNode, NodeID: 3}), nil,
			"1/3 EntryConfChange u3"},
		{"v2 simple change", ccEntry(t, 2, 4, pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{
			{Type: pb.ConfChangeAddNode, NodeID: 4}, {Type: pb.ConfChangeRemoveNode, NodeID: 1},
		}}), nil, "2/4 EntryConfChangeV2 v4 r1"},
		{"v2 implicit joint change", ccEntry(t, 2, 4, pb.ConfChangeV2{
			Transition: pb.ConfChangeTransitionJointImplicit,
			Changes:    []pb.ConfChangeSingle{{Type: pb.ConfChangeAddLearnerNode, NodeID: 5}},
		}), nil, "2/4 EntryConfChangeV2 l5"},
		{"v2 explicit joint change", ccEntry(t, 2, 4, pb.ConfChangeV2{
			Transition: pb.ConfChangeTransitionJointExplicit,
			Changes:    []pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode, NodeID: 4}, {Type: pb.ConfChangeRemoveNode, NodeID: 3}},
		}), quoted, "2/4 EntryConfChangeV2 v4 r3"},
		{"v2 leave joint shows no changes", ccEntry(t, 2, 6, pb.ConfChangeV2{}), nil, "2/6 EntryConfChangeV2"},
		{"v2 leave joint with context", ccEntry(t, 2, 6, pb.ConfChangeV2{Context: []byte("ctx")}), nil,
			"2/6 EntryConfChangeV2"},
		{"v2 without data leaves joint", pb.Entry{Term: 2, Index: 6, Type: pb.EntryConfChangeV2}, nil,
			"2/6 EntryConfChangeV2"},
		{"unknown entry type shows no payload", pb.Entry{Term: 2, Index: 7, Type: pb.EntryType(9), Data: []byte("x")}, quoted,
			"2/7 9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, DescribeEntry(tt.e, tt.f))
		})
	}

	// The formatter sees the entry's own Data, and only for normal
	// entries.
	seen = nil
	require.Equal(t, "1/1 EntryNormal <3>", DescribeEntry(pb.Entry{Term: 1, Index: 1, Data: []byte("abc")}, recording))
	require.Equal(t, "1/2 EntryConfChange v2",
		DescribeEntry(ccEntry(t, 1, 2, pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 2}), recording))
	require.Equal(t, [][]byte{[]byte("abc")}, seen)
}

// An entry whose conf change payload does not decode is described with the
// decoding error, by every Describe function, without panicking.
func TestDescribeUndecodableConfChangePayloads(t *testing.T) {
	for _, tt := range []struct {
		name string
		e    pb.Entry
		want string
	}{
		{"v1", pb.Entry{Term: 1, Index: 5, Type: pb.EntryConfChange, Data: []byte{0xff, 0xff, 0xff}},
			"1/5 EntryConfChange unexpected EOF"},
		{"v2", pb.Entry{Term: 1, Index: 6, Type: pb.EntryConfChangeV2, Data: []byte{0x0a}},
			"1/6 EntryConfChangeV2 proto: wrong wireType = 2 for field Transition"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			require.NotPanics(t, func() { got = DescribeEntry(tt.e, quoted) })
			require.Equal(t, tt.want, got)

			var ents, msg, rd string
			require.NotPanics(t, func() {
				ents = DescribeEntries([]pb.Entry{tt.e}, nil)
				msg = DescribeMessage(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Entries: []pb.Entry{tt.e}}, nil)
				rd = DescribeReady(Ready{CommittedEntries: []pb.Entry{tt.e}}, nil)
			})
			require.Equal(t, got+"\n", ents)
			require.Equal(t, "1->2 MsgApp Term:0 Log:0/0 Entries:["+got+"]", msg)
			require.Equal(t, "Ready MustSync=false:\nCommittedEntries:\n"+got+"\n", rd)
		})
	}
}

func TestDescribeEntriesOnePerLine(t *testing.T) {
	require.Equal(t, "", DescribeEntries(nil, nil))
	require.Equal(t, "", DescribeEntries([]pb.Entry{}, quoted))
	ents := []pb.Entry{
		{Term: 1, Index: 1, Data: []byte("a")},
		ccEntry(t, 1, 2, pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 2}),
		{Term: 2, Index: 3},
	}
	require.Equal(t, "1/1 EntryNormal \"a\"\n1/2 EntryConfChange v2\n2/3 EntryNormal \"\"\n", DescribeEntries(ents, quoted))
	require.Equal(t, DescribeEntries(ents, quoted), DescribeEntries(ents, nil))
}

// storageApplyOfTwo is a local apply message with two entries whose
// response carries the same two entries.
func storageApplyOfTwo() pb.Message {
	ents := []pb.Entry{{Term: 1, Index: 1}, {Term: 1, Index: 2}}
	return pb.Message{From: 1, To: LocalApplyThread, Type: pb.MsgStorageApply, Entries: ents,
		Responses: []pb.Message{{From: LocalApplyThread, To: 1, Type: pb.MsgStorageApplyResp, Entries: ents}}}
}

func TestDescribeMessages(t *testing.T) {
	snap := &pb.Snapshot{Data: []byte("sm"), Metadata: pb.SnapshotMetadata{Index: 10, Term: 2,
		ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}
	for _, tt := range []struct {
		name string
		m    pb.Message
		f    EntryFormatter
		want string
	}{
		{"append with entries", pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 4, LogTerm: 3, Index: 10, Commit: 9,
			Entries: []pb.Entry{
				{Term: 4, Index: 11, Data: []byte("x")},
				ccEntry(t, 4, 12, pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 4}),
			}}, nil,
			"1->2 MsgApp Term:4 Log:3/10 Commit:9 Entries:[\n  4/11 EntryNormal \"x\"\n  4/12 EntryConfChange v4\n]"},
		{"append with formatter", pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 4, LogTerm: 4, Index: 11,
			Entries: []pb.Entry{{Term: 4, Index: 12, Data: []byte("put y")}}}, quoted,
			`1->2 MsgApp Term:4 Log:4/11 Entries:[4/12 EntryNormal "put y"]`},
		{"append with a v2 conf change", pb.Message{From: 1, To: 3, Type: pb.MsgApp, Term: 4, LogTerm: 4, Index: 12,
			Entries: []pb.Entry{ccEntry(t, 4, 13, pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{
				{Type: pb.ConfChangeAddLearnerNode, NodeID: 6}}})}}, nil,
			"1->3 MsgApp Term:4 Log:4/12 Entries:[4/13 EntryConfChangeV2 l6]"},
		{"accepted append", pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 4, Index: 12}, nil,
			"2->1 MsgAppResp Term:4 Log:0/12"},
		{"rejected append", pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 4, LogTerm: 3, Index: 10,
			Reject: true, RejectHint: 7}, nil,
			"2->1 MsgAppResp Term:4 Log:3/10 Rejected (Hint: 7)"},
		{"context is not shown", pb.Message{From: 3, To: 1, Type: pb.MsgVote, Term: 4, LogTerm: 3, Index: 9,
			Context: []byte("CampaignTransfer")}, nil,
			"3->1 MsgVote Term:4 Log:3/9"},
		{"vote request", pb.Message{From: 3, To: 1, Type: pb.MsgPreVote, Term: 6, LogTerm: 5, Index: 20}, nil,
			"3->1 MsgPreVote Term:6 Log:5/20"},
		{"heartbeat with read context not shown", pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 2, Commit: 5,
			Context: []byte("read-1")}, nil,
			"1->2 MsgHeartbeat Term:2 Log:0/0 Commit:5"},
		{"snapshot", pb.Message{From: 1, To: 3, Type: pb.MsgSnap, Term: 2, Snapshot: snap}, nil,
			"1->3 MsgSnap Term:2 Log:0/0\n  Snapshot: Index:10 Term:2 ConfState:Voters:[1 2 3] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false"},
		{"empty snapshot is left out", pb.Message{From: 1, To: 3, Type: pb.MsgSnap, Term: 2, Snapshot: &pb.Snapshot{}}, nil,
			"1->3 MsgSnap Term:2 Log:0/0"},
		{"local proposal", pb.Message{Type: pb.MsgProp, Entries: []pb.Entry{{Data: []byte("v")}}}, quoted,
			`None->None MsgProp Term:0 Log:0/0 Entries:[0/0 EntryNormal "v"]`},
		{"hex node IDs", pb.Message{From: 26, To: 255, Type: pb.MsgHeartbeatResp, Term: 1}, nil,
			"1a->ff MsgHeartbeatResp Term:1 Log:0/0"},
		{"storage append with responses", pb.Message{From: 1, To: LocalAppendThread, Type: pb.MsgStorageAppend,
			Term: 2, Vote: 1, Commit: 3, Entries: []pb.Entry{{Term: 2, Index: 4, Data: []byte("z")}},
			Responses: []pb.Message{
				{From: LocalAppendThread, To: 1, Type: pb.MsgStorageAppendResp, LogTerm: 2, Index: 4},
				{From: 1, To: 2, Type: pb.MsgAppResp, Term: 2, Index: 4},
			}}, nil,
			"1->AppendThread MsgStorageAppend Term:2 Log:0/0 Commit:3 Vote:1 Entries:[2/4 EntryNormal \"z\"] " +
				"Responses:[\n  AppendThread->1 MsgStorageAppendResp Term:0 Log:2/4\n  1->2 MsgAppResp Term:2 Log:0/4\n]"},
		{"storage apply", pb.Message{From: 1, To: LocalApplyThread, Type: pb.MsgStorageApply,
			Entries:   []pb.Entry{{Term: 2, Index: 3}},
			Responses: []pb.Message{{From: LocalApplyThread, To: 1, Type: pb.MsgStorageApplyResp, Entries: []pb.Entry{{Term: 2, Index: 3}}}},
		}, nil,
			"1->ApplyThread MsgStorageApply Term:0 Log:0/0 Entries:[2/3 EntryNormal \"\"] " +
				"Responses:[\n  ApplyThread->1 MsgStorageApplyResp Term:0 Log:0/0 Entries:[2/3 EntryNormal \"\"]\n]"},
		{"response with two entries", storageApplyOfTwo(), nil,
			"1->ApplyThread MsgStorageApply Term:0 Log:0/0 Entries:[\n  1/1 EntryNormal \"\"\n  1/2 EntryNormal \"\"\n] " +
				"Responses:[\n  ApplyThread->1 MsgStorageApplyResp Term:0 Log:0/0 Entries:[\n    1/1 EntryNormal \"\"\n    1/2 EntryNormal \"\"\n  ]\n]"},
		{"response nested in a response", pb.Message{From: 1, To: LocalAppendThread, Type: pb.MsgStorageAppend, Term: 2,
			Responses: []pb.Message{{From: LocalAppendThread, To: 1, Type: pb.MsgStorageAppendResp,
				Responses: []pb.Message{{From: 1, To: LocalApplyThread, Type: pb.MsgStorageApply,
					Entries: []pb.Entry{{Term: 1, Index: 1}, {Term: 1, Index: 2}}}}}},
		}, nil,
			"1->AppendThread MsgStorageAppend Term:2 Log:0/0 Responses:[\n" +
				"  AppendThread->1 MsgStorageAppendResp Term:0 Log:0/0 Responses:[\n" +
				"    1->ApplyThread MsgStorageApply Term:0 Log:0/0 Entries:[\n" +
				"      1/1 EntryNormal \"\"\n" +
				"      1/2 EntryNormal \"\"\n" +
				"    ]\n" +
				"  ]\n" +
				"]"},
		{"response carrying a snapshot", pb.Message{From: 1, To: LocalAppendThread, Type: pb.MsgStorageAppend,
			Responses: []pb.Message{{From: LocalAppendThread, To: 1, Type: pb.MsgStorageAppendResp, Snapshot: snap}},
		}, nil,
			"1->AppendThread MsgStorageAppend Term:0 Log:0/0 Responses:[\n" +
				"  AppendThread->1 MsgStorageAppendResp Term:0 Log:0/0\n" +
				"    Snapshot: Index:10 Term:2 ConfState:Voters:[1 2 3] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false\n" +
				"]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, DescribeMessage(tt.m, tt.f))
		})
	}
}

func TestDescribeReadyContents(t *testing.T) {
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 4, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}
	for _, tt := range []struct {
		name string
		rd   Ready
		f    EntryFormatter
		want string
	}{
		{"empty", Ready{}, nil, "<empty Ready>"},
		{"empty but must sync", Ready{MustSync: true}, quoted, "<empty Ready>"},
		{"commit only", Ready{HardState: pb.HardState{Term: 2, Vote: 1, Commit: 4}}, nil,
			"Ready MustSync=false:\nHardState Term:2 Vote:1 Commit:4\n"},
		{"soft state only", Ready{SoftState: &SoftState{Lead: 3, RaftState: StateFollower}}, nil,
			"Ready MustSync=false:\nLead:3 State:StateFollower\n"},
		{"messages only", Ready{Messages: []pb.Message{
			{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 2, Commit: 4},
			{From: 1, To: 3, Type: pb.MsgHeartbeat, Term: 2, Commit: 3},
		}}, nil,
			"Ready MustSync=false:\nMessages:\n1->2 MsgHeartbeat Term:2 Log:0/0 Commit:4\n1->3 MsgHeartbeat Term:2 Log:0/0 Commit:3\n"},
		{"message with a nested response", Ready{Messages: []pb.Message{storageApplyOfTwo()}}, nil,
			"Ready MustSync=false:\nMessages:\n" +
				"1->ApplyThread MsgStorageApply Term:0 Log:0/0 Entries:[\n  1/1 EntryNormal \"\"\n  1/2 EntryNormal \"\"\n] " +
				"Responses:[\n  ApplyThread->1 MsgStorageApplyResp Term:0 Log:0/0 Entries:[\n    1/1 EntryNormal \"\"\n    1/2 EntryNormal \"\"\n  ]\n]\n"},
		{"everything", Ready{
			SoftState:        &SoftState{Lead: 1, RaftState: StateLeader},
			HardState:        pb.HardState{Term: 2, Vote: 1, Commit: 5},
			Entries:          []pb.Entry{{Term: 2, Index: 6, Data: []byte("put")}},
			Snapshot:         snap,
			CommittedEntries: []pb.Entry{ccEntry(t, 2, 5, pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode, NodeID: 4}}})},
			Messages: []pb.Message{
				{From: 1, To: 2, Type: pb.MsgApp, Term: 2, LogTerm: 2, Index: 5, Commit: 5,
					Entries: []pb.Entry{{Term: 2, Index: 6, Data: []byte("put")}}},
				{From: 1, To: 3, Type: pb.MsgSnap, Term: 2, Snapshot: &snap},
			},
			MustSync: true,
		}, quoted,
			"Ready MustSync=true:\n" +
				"Lead:1 State:StateLeader\n" +
				"HardState Term:2 Vote:1 Commit:5\n" +
				"Entries:\n" +
				"2/6 EntryNormal \"put\"\n" +
				"Snapshot Index:4 Term:1 ConfState:Voters:[1 2 3] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false\n" +
				"CommittedEntries:\n" +
				"2/5 EntryConfChangeV2 v4\n" +
				"Messages:\n" +
				"1->2 MsgApp Term:2 Log:2/5 Commit:5 Entries:[2/6 EntryNormal \"put\"]\n" +
				"1->3 MsgSnap Term:2 Log:0/0\n  Snapshot: Index:4 Term:1 ConfState:Voters:[1 2 3] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, DescribeReady(tt.rd, tt.f))
		})
	}
}

// Read states are rendered with %v: the request context shows as a list of
// byte values, not as text.
func TestDescribeReadyReadStates(t *testing.T) {
	rd := Ready{ReadStates: []ReadState{{Index: 5, RequestCtx: []byte("req")}}}
	require.Equal(t, "Ready MustSync=false:\nReadStates [{5 [114 101 113]}]\n", DescribeReady(rd, nil))
}

// The Readys of a real node render in full: a single voter that campaigns
// first persists its vote as a candidate, becomes leader once its own vote
// is delivered at Advance, appends its empty entry and then commits it.
func TestDescribeReadyOfSingleNodeElection(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1})
	require.NoError(t, n.rn.Campaign())
	var got []string
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		got = append(got, DescribeReady(rd, nil))
		require.NoError(t, n.storage.Append(rd.Entries))
		if !IsEmptyHardState(rd.HardState) {
			require.NoError(t, n.storage.SetHardState(rd.HardState))
		}
		n.rn.Advance(rd)
	}
	require.Equal(t, []string{
		"Ready MustSync=true:\nLead:0 State:StateCandidate\nHardState Term:1 Vote:1 Commit:0\n",
		"Ready MustSync=true:\nLead:1 State:StateLeader\nEntries:\n1/1 EntryNormal \"\"\n",
		"Ready MustSync=false:\nHardState Term:1 Vote:1 Commit:1\nCommittedEntries:\n1/1 EntryNormal \"\"\n",
	}, got)
}
