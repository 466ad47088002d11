package raft

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// IsLocalMsg and IsResponseMsg classify every message type; the table must
// name each type raftpb defines.
func TestMessageTypeClasses(t *testing.T) {
	for _, tt := range []struct {
		typ      pb.MessageType
		local    bool
		response bool
	}{
		{pb.MsgHup, true, false},
		{pb.MsgBeat, true, false},
		{pb.MsgProp, false, false},
		{pb.MsgApp, false, false},
		{pb.MsgAppResp, false, true},
		{pb.MsgVote, false, false},
		{pb.MsgVoteResp, false, true},
		{pb.MsgSnap, false, false},
		{pb.MsgHeartbeat, false, false},
		{pb.MsgHeartbeatResp, false, true},
		{pb.MsgUnreachable, true, true},
		{pb.MsgSnapStatus, true, false},
		{pb.MsgCheckQuorum, true, false},
		{pb.MsgTransferLeader, false, false},
		{pb.MsgTimeoutNow, false, false},
		{pb.MsgReadIndex, false, false},
		{pb.MsgReadIndexResp, false, true},
		{pb.MsgPreVote, false, false},
		{pb.MsgPreVoteResp, false, true},
		{pb.MsgStorageAppend, true, false},
		{pb.MsgStorageAppendResp, true, true},
		{pb.MsgStorageApply, true, false},
		{pb.MsgStorageApplyResp, true, true},
		{pb.MsgForgetLeader, false, false}, // as in etcd raft: Step takes it
	} {
		t.Run(tt.typ.String(), func(t *testing.T) {
			require.Equal(t, tt.local, IsLocalMsg(tt.typ), "IsLocalMsg")
			require.Equal(t, tt.response, IsResponseMsg(tt.typ), "IsResponseMsg")
		})
	}
	t.Run("every type has a row", func(t *testing.T) {
		require.Len(t, pb.MessageType_name, 24)
	})
	t.Run("unknown types are neither", func(t *testing.T) {
		for _, typ := range []pb.MessageType{-1, maxMessageType + 1, math.MaxInt32} {
			require.False(t, IsLocalMsg(typ))
			require.False(t, IsResponseMsg(typ))
		}
	})
}

// IsLocalMsgTarget names the two local storage threads and nothing else.
func TestIsLocalMsgTarget(t *testing.T) {
	for _, tt := range []struct {
		name string
		id   uint64
		want bool
	}{
		{"append thread", LocalAppendThread, true},
		{"apply thread", LocalApplyThread, true},
		{"none", None, false},
		{"a node", 1, false},
		{"the ID below the apply thread", LocalApplyThread - 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, IsLocalMsgTarget(tt.id))
		})
	}
}

// RawNode.Step refuses a response from a node outside the configuration
// with ErrStepPeerNotFound, read-index responses included, and a local
// message type with ErrStepLocalMsg.
func TestRawNodeStepUsesMessageClasses(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3})
	for typ := range pb.MessageType_name {
		mt := pb.MessageType(typ)
		m := pb.Message{Type: mt, From: 9, To: 1, Term: 1}
		if mt == pb.MsgReadIndex || mt == pb.MsgReadIndexResp {
			m.Entries = []pb.Entry{{Data: []byte("ctx")}}
		}
		err := n.rn.Step(m)
		switch {
		case IsLocalMsg(mt):
			require.ErrorIs(t, err, ErrStepLocalMsg, "%s", mt)
		case IsResponseMsg(mt):
			require.ErrorIs(t, err, ErrStepPeerNotFound, "%s", mt)
		default:
			require.NotErrorIs(t, err, ErrStepPeerNotFound, "%s", mt)
		}
	}
}
