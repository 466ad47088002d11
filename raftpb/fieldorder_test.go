package raftpb_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// TestStructFieldOrder builds every wire struct with an unkeyed composite
// literal, the way code written against etcd raft's raftpb may, with the
// fields in etcd's declaration order. It stops compiling, or fails, if a
// field moves; the encoding does not depend on the order (see raft.proto).
func TestStructFieldOrder(t *testing.T) {
	ents := []pb.Entry{{8, 121, pb.EntryConfChange, []byte("e")}}
	cs := pb.ConfState{[]uint64{1, 2}, []uint64{4}, []uint64{1, 3}, []uint64{3}, true}
	snap := pb.Snapshot{[]byte("img"), pb.SnapshotMetadata{cs, 100, 7}}
	resps := []pb.Message{{Type: pb.MsgAppResp}}

	tests := []struct {
		name string
		got  any
		want any
	}{
		{"Entry", ents[0], pb.Entry{Term: 8, Index: 121, Type: pb.EntryConfChange, Data: []byte("e")}},
		{"ConfState", cs, pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{4},
			VotersOutgoing: []uint64{1, 3}, LearnersNext: []uint64{3}, AutoLeave: true}},
		{"SnapshotMetadata", snap.Metadata, pb.SnapshotMetadata{ConfState: cs, Index: 100, Term: 7}},
		{"Snapshot", snap, pb.Snapshot{Data: []byte("img"), Metadata: snap.Metadata}},
		{"HardState", pb.HardState{8, 2, 118}, pb.HardState{Term: 8, Vote: 2, Commit: 118}},
		{"Message",
			pb.Message{pb.MsgStorageAppend, 1, 2, 8, 7, 120, ents, 118, 3, &snap, true, 97, []byte("ctx"), resps},
			pb.Message{Type: pb.MsgStorageAppend, To: 1, From: 2, Term: 8, LogTerm: 7, Index: 120,
				Entries: ents, Commit: 118, Vote: 3, Snapshot: &snap, Reject: true, RejectHint: 97,
				Context: []byte("ctx"), Responses: resps}},
		{"ConfChange",
			pb.ConfChange{pb.ConfChangeRemoveNode, 3, []byte("ctx"), 9},
			pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: 3, Context: []byte("ctx"), ID: 9}},
		{"ConfChangeSingle",
			pb.ConfChangeSingle{pb.ConfChangeAddLearnerNode, 4},
			pb.ConfChangeSingle{Type: pb.ConfChangeAddLearnerNode, NodeID: 4}},
		{"ConfChangeV2",
			pb.ConfChangeV2{pb.ConfChangeTransitionJointExplicit, []pb.ConfChangeSingle{{pb.ConfChangeAddNode, 5}}, []byte("ctx")},
			pb.ConfChangeV2{Transition: pb.ConfChangeTransitionJointExplicit,
				Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode, NodeID: 5}}, Context: []byte("ctx")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.got)
		})
	}
}

// TestJSONFieldOrder: encoding/json writes fields in declaration order, so
// the JSON of a Message or ConfChange lists its keys in etcd raft's order.
func TestJSONFieldOrder(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"Message", pb.Message{Type: pb.MsgApp, Commit: 5, Vote: 3, Context: []byte("c")},
			`{"type":3,"to":0,"from":0,"term":0,"logTerm":0,"index":0,"entries":null,"commit":5,"vote":3,` +
				`"reject":false,"rejectHint":0,"context":"Yw==","responses":null}`},
		{"ConfChange", pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 2, ID: 7},
			`{"type":0,"node_id":2,"id":7}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
		})
	}
}
