// Package describecases lists the inputs on which raftcore's Describe
// functions must print exactly what etcd raft v3.6's print.
//
// The expected output lives in testdata/describe_etcd_v3.6.0.jsonl at the
// root of the module, written by bench/compare/cmd/describe-golden, which
// runs these same cases through etcd raft (the only place the two are
// compiled together). The root package's TestDescribeMatchesEtcd compares
// raftcore's output with it.
package describecases

import (
	"fmt"

	raft "github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// Kind says which Describe function a case exercises.
type Kind string

// The Describe functions.
const (
	KindEntry     Kind = "entry"
	KindEntries   Kind = "entries"
	KindMessage   Kind = "message"
	KindHardState Kind = "hardstate"
	KindSoftState Kind = "softstate"
	KindConfState Kind = "confstate"
	KindSnapshot  Kind = "snapshot"
	KindReady     Kind = "ready"
)

// Case is one input. Only the field that Kind names is used.
type Case struct {
	Name string
	Kind Kind
	// Formatter says whether Format is passed as the EntryFormatter
	// (otherwise nil is).
	Formatter bool

	Entry     pb.Entry
	Entries   []pb.Entry
	Message   pb.Message
	HardState pb.HardState
	SoftState raft.SoftState
	ConfState pb.ConfState
	Snapshot  pb.Snapshot
	Ready     raft.Ready
}

// Format is the EntryFormatter of the cases that use one.
func Format(data []byte) string { return fmt.Sprintf("fmt<%x>", data) }

func marshal(m interface{ Marshal() ([]byte, error) }) []byte {
	b, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// Cases returns every case, in a fixed order.
func Cases() []Case {
	normal := pb.Entry{Term: 1, Index: 2, Type: pb.EntryNormal, Data: []byte("hello")}
	empty := pb.Entry{Term: 1, Index: 3, Type: pb.EntryNormal}
	binary := pb.Entry{Term: 2, Index: 4, Type: pb.EntryNormal, Data: []byte{0, 1, 0xff, '"', '\n'}}
	ccAdd := pb.Entry{Term: 2, Index: 5, Type: pb.EntryConfChange, Data: marshal(&pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 3, Context: []byte("ctx")})}
	ccRemove := pb.Entry{Term: 2, Index: 6, Type: pb.EntryConfChange, Data: marshal(&pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: 2})}
	ccLearner := pb.Entry{Term: 2, Index: 7, Type: pb.EntryConfChange, Data: marshal(&pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: 4})}
	ccUpdate := pb.Entry{Term: 2, Index: 8, Type: pb.EntryConfChange, Data: marshal(&pb.ConfChange{Type: pb.ConfChangeUpdateNode, NodeID: 1})}
	ccEmpty := pb.Entry{Term: 2, Index: 9, Type: pb.EntryConfChange}
	v2Two := pb.Entry{Term: 3, Index: 10, Type: pb.EntryConfChangeV2, Data: marshal(&pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{
		{Type: pb.ConfChangeAddLearnerNode, NodeID: 4}, {Type: pb.ConfChangeRemoveNode, NodeID: 2}}})}
	v2Explicit := pb.Entry{Term: 3, Index: 11, Type: pb.EntryConfChangeV2, Data: marshal(&pb.ConfChangeV2{
		Transition: pb.ConfChangeTransitionJointExplicit,
		Changes:    []pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode, NodeID: 5}}})}
	v2Implicit := pb.Entry{Term: 3, Index: 12, Type: pb.EntryConfChangeV2, Data: marshal(&pb.ConfChangeV2{
		Transition: pb.ConfChangeTransitionJointImplicit,
		Changes:    []pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode, NodeID: 5}, {Type: pb.ConfChangeUpdateNode, NodeID: 1}},
		Context:    []byte("c")})}
	v2Leave := pb.Entry{Term: 3, Index: 13, Type: pb.EntryConfChangeV2, Data: marshal(&pb.ConfChangeV2{})}
	v2Bad := pb.Entry{Term: 3, Index: 14, Type: pb.EntryConfChangeV2, Data: []byte{1, 2}}
	v1Bad := pb.Entry{Term: 3, Index: 15, Type: pb.EntryConfChange, Data: []byte{0xff}}
	unknownType := pb.Entry{Term: 3, Index: 16, Type: pb.EntryType(7), Data: []byte("x")}
	zero := pb.Entry{}

	entries := []pb.Entry{normal, empty, binary, ccAdd, ccRemove, ccLearner, ccUpdate, ccEmpty,
		v2Two, v2Explicit, v2Implicit, v2Leave, v2Bad, v1Bad, unknownType, zero}

	var cs []Case
	for _, e := range entries {
		for _, f := range []bool{false, true} {
			cs = append(cs, Case{Name: fmt.Sprintf("entry %d/%d %s formatter=%v", e.Term, e.Index, e.Type, f), Kind: KindEntry, Entry: e, Formatter: f})
		}
	}
	cs = append(cs,
		Case{Name: "entries none", Kind: KindEntries},
		Case{Name: "entries two", Kind: KindEntries, Entries: []pb.Entry{normal, empty}},
		Case{Name: "entries mixed formatter", Kind: KindEntries, Entries: []pb.Entry{normal, ccAdd, v2Two}, Formatter: true},
	)

	joint := pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}, VotersOutgoing: []uint64{1, 4}, LearnersNext: []uint64{4}, AutoLeave: true}
	simple := pb.ConfState{Voters: []uint64{1, 2, 3}}
	for _, c := range []struct {
		name string
		cs   pb.ConfState
	}{
		{"empty", pb.ConfState{}},
		{"voters", simple},
		{"learners", pb.ConfState{Voters: []uint64{1}, Learners: []uint64{2, 3}}},
		{"joint", joint},
		{"joint no autoleave", pb.ConfState{Voters: []uint64{1}, VotersOutgoing: []uint64{2}}},
	} {
		cs = append(cs, Case{Name: "confstate " + c.name, Kind: KindConfState, ConfState: c.cs})
	}

	snapJoint := pb.Snapshot{Data: []byte("abc"), Metadata: pb.SnapshotMetadata{Index: 10, Term: 2, ConfState: joint}}
	snapSimple := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 20, Term: 4, ConfState: simple}}
	cs = append(cs,
		Case{Name: "snapshot empty", Kind: KindSnapshot},
		Case{Name: "snapshot joint", Kind: KindSnapshot, Snapshot: snapJoint},
		Case{Name: "snapshot simple", Kind: KindSnapshot, Snapshot: snapSimple},
	)

	for _, c := range []struct {
		name string
		hs   pb.HardState
	}{
		{"empty", pb.HardState{}},
		{"term only", pb.HardState{Term: 3}},
		{"vote", pb.HardState{Term: 3, Vote: 2, Commit: 5}},
		{"commit no vote", pb.HardState{Term: 3, Commit: 5}},
	} {
		cs = append(cs, Case{Name: "hardstate " + c.name, Kind: KindHardState, HardState: c.hs})
	}
	for _, ss := range []raft.SoftState{
		{}, {Lead: 2, RaftState: raft.StateFollower}, {Lead: 1, RaftState: raft.StateLeader},
		{RaftState: raft.StateCandidate}, {RaftState: raft.StatePreCandidate},
	} {
		cs = append(cs, Case{Name: fmt.Sprintf("softstate %d %s", ss.Lead, ss.RaftState), Kind: KindSoftState, SoftState: ss})
	}

	resp := pb.Message{Type: pb.MsgStorageAppendResp, From: raft.LocalAppendThread, To: 1, Index: 2, LogTerm: 1}
	msgs := []pb.Message{
		{Type: pb.MsgHup, From: 1, To: 1},
		{Type: pb.MsgProp, From: 2, To: 1, Entries: []pb.Entry{normal}},
		{Type: pb.MsgProp, To: 1, Entries: []pb.Entry{empty, ccAdd}},
		{Type: pb.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 2, Index: 5, Commit: 4, Entries: []pb.Entry{normal, empty}},
		{Type: pb.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 2, Index: 5, Commit: 4},
		{Type: pb.MsgAppResp, From: 2, To: 1, Term: 3, Index: 7},
		{Type: pb.MsgAppResp, From: 2, To: 1, Term: 3, Index: 7, Reject: true, RejectHint: 4, LogTerm: 2},
		{Type: pb.MsgAppResp, From: 2, To: 1, Term: 3, Index: 7, Reject: true},
		{Type: pb.MsgVote, From: 2, To: 1, Term: 3, Index: 7, LogTerm: 2},
		{Type: pb.MsgVoteResp, From: 1, To: 2, Term: 3, Reject: true},
		{Type: pb.MsgPreVote, From: 2, To: 3, Term: 4, Index: 7, LogTerm: 2, Context: []byte("CampaignTransfer")},
		{Type: pb.MsgPreVoteResp, From: 3, To: 2, Term: 4},
		{Type: pb.MsgSnap, From: 1, To: 2, Term: 3, Snapshot: &snapSimple},
		{Type: pb.MsgSnap, From: 1, To: 2, Term: 3, Snapshot: &snapJoint},
		{Type: pb.MsgSnap, From: 1, To: 2, Term: 3, Snapshot: &pb.Snapshot{}},
		{Type: pb.MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 9, Context: []byte("ctx")},
		{Type: pb.MsgHeartbeatResp, From: 2, To: 1, Term: 3, Context: []byte("ctx")},
		{Type: pb.MsgReadIndex, From: 2, To: 1, Term: 3, Entries: []pb.Entry{{Data: []byte("rctx")}}},
		{Type: pb.MsgReadIndexResp, From: 1, To: 2, Term: 3, Index: 12, Entries: []pb.Entry{{Data: []byte("rctx")}}},
		{Type: pb.MsgTransferLeader, From: 3, To: 1, Term: 3},
		{Type: pb.MsgTimeoutNow, From: 1, To: 3, Term: 3},
		{Type: pb.MsgUnreachable, From: 2, To: 1},
		{Type: pb.MsgSnapStatus, From: 2, To: 1, Reject: true},
		{Type: pb.MsgCheckQuorum, From: 1, To: 1},
		{Type: pb.MsgForgetLeader, To: 1},
		{Type: pb.MsgStorageAppend, From: 1, To: raft.LocalAppendThread, Term: 3, Vote: 1, Commit: 2, Entries: []pb.Entry{normal}, Responses: []pb.Message{resp}},
		{Type: pb.MsgStorageAppend, From: 1, To: raft.LocalAppendThread, Snapshot: &snapSimple, Responses: []pb.Message{resp, {Type: pb.MsgVote, From: 1, To: 2, Term: 4}}},
		{Type: pb.MsgStorageApply, From: 1, To: raft.LocalApplyThread, Entries: []pb.Entry{normal, ccAdd}, Responses: []pb.Message{{Type: pb.MsgStorageApplyResp, From: raft.LocalApplyThread, To: 1, Entries: []pb.Entry{normal}}}},
		{Type: pb.MsgApp, From: 0x1234abcd, To: 0xffffffffffffffff, Term: 1},
		{Type: pb.MessageType(99), From: 1, To: 2},
	}
	for i, m := range msgs {
		for _, f := range []bool{false, true} {
			cs = append(cs, Case{Name: fmt.Sprintf("message %d %s formatter=%v", i, m.Type, f), Kind: KindMessage, Message: m, Formatter: f})
		}
	}

	readies := []struct {
		name string
		rd   raft.Ready
	}{
		{"empty", raft.Ready{}},
		{"must sync only", raft.Ready{MustSync: true}},
		{"soft state", raft.Ready{SoftState: &raft.SoftState{Lead: 1, RaftState: raft.StateLeader}}},
		{"hard state", raft.Ready{HardState: pb.HardState{Term: 3, Vote: 2, Commit: 5}, MustSync: true}},
		{"read states", raft.Ready{ReadStates: []raft.ReadState{{Index: 4, RequestCtx: []byte("r")}, {Index: 5, RequestCtx: []byte("ctx2")}}}},
		{"entries", raft.Ready{Entries: []pb.Entry{normal, ccAdd}, MustSync: true}},
		{"committed", raft.Ready{CommittedEntries: []pb.Entry{normal, v2Two}}},
		{"snapshot", raft.Ready{Snapshot: snapJoint, MustSync: true}},
		{"messages", raft.Ready{Messages: []pb.Message{msgs[3], msgs[6]}}},
		{"everything", raft.Ready{
			SoftState:        &raft.SoftState{Lead: 1, RaftState: raft.StateLeader},
			HardState:        pb.HardState{Term: 3, Vote: 2, Commit: 5},
			ReadStates:       []raft.ReadState{{Index: 4, RequestCtx: []byte("r")}},
			Entries:          []pb.Entry{normal, empty},
			Snapshot:         snapJoint,
			CommittedEntries: []pb.Entry{normal},
			Messages:         []pb.Message{msgs[3], msgs[6]},
			MustSync:         true,
		}},
	}
	for _, r := range readies {
		for _, f := range []bool{false, true} {
			cs = append(cs, Case{Name: fmt.Sprintf("ready %s formatter=%v", r.name, f), Kind: KindReady, Ready: r.rd, Formatter: f})
		}
	}
	return cs
}
