package raftpb

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// enumCase is one enum value with the name its String method must return.
// The names are written out here rather than read from the generated maps,
// so a renamed value in raft.proto shows up as a test failure.
type enumCase struct {
	value fmt.Stringer
	want  string
}

func TestMessageTypeString(t *testing.T) {
	tests := []enumCase{
		{MsgHup, "MsgHup"},
		{MsgBeat, "MsgBeat"},
		{MsgProp, "MsgProp"},
		{MsgApp, "MsgApp"},
		{MsgAppResp, "MsgAppResp"},
		{MsgVote, "MsgVote"},
		{MsgVoteResp, "MsgVoteResp"},
		{MsgSnap, "MsgSnap"},
		{MsgHeartbeat, "MsgHeartbeat"},
		{MsgHeartbeatResp, "MsgHeartbeatResp"},
		{MsgUnreachable, "MsgUnreachable"},
		{MsgSnapStatus, "MsgSnapStatus"},
		{MsgCheckQuorum, "MsgCheckQuorum"},
		{MsgTransferLeader, "MsgTransferLeader"},
		{MsgTimeoutNow, "MsgTimeoutNow"},
		{MsgReadIndex, "MsgReadIndex"},
		{MsgReadIndexResp, "MsgReadIndexResp"},
		{MsgPreVote, "MsgPreVote"},
		{MsgPreVoteResp, "MsgPreVoteResp"},
		{MsgStorageAppend, "MsgStorageAppend"},
		{MsgStorageAppendResp, "MsgStorageAppendResp"},
		{MsgStorageApply, "MsgStorageApply"},
		{MsgStorageApplyResp, "MsgStorageApplyResp"},
		{MsgForgetLeader, "MsgForgetLeader"},
	}
	require.Len(t, tests, 24)
	checkEnumNames(t, tests, MessageType_name, MessageType_value)

	// The wire numbers are part of the compatibility contract.
	for i, tt := range tests {
		require.Equal(t, MessageType(i), tt.value, "%s must be number %d", tt.want, i)
	}
}

func TestEntryTypeString(t *testing.T) {
	tests := []enumCase{
		{EntryNormal, "EntryNormal"},
		{EntryConfChange, "EntryConfChange"},
		{EntryConfChangeV2, "EntryConfChangeV2"},
	}
	checkEnumNames(t, tests, EntryType_name, EntryType_value)
}

func TestConfChangeTypeString(t *testing.T) {
	tests := []enumCase{
		{ConfChangeAddNode, "ConfChangeAddNode"},
		{ConfChangeRemoveNode, "ConfChangeRemoveNode"},
		{ConfChangeUpdateNode, "ConfChangeUpdateNode"},
		{ConfChangeAddLearnerNode, "ConfChangeAddLearnerNode"},
	}
	checkEnumNames(t, tests, ConfChangeType_name, ConfChangeType_value)
}

func TestConfChangeTransitionString(t *testing.T) {
	tests := []enumCase{
		{ConfChangeTransitionAuto, "ConfChangeTransitionAuto"},
		{ConfChangeTransitionJointImplicit, "ConfChangeTransitionJointImplicit"},
		{ConfChangeTransitionJointExplicit, "ConfChangeTransitionJointExplicit"},
	}
	checkEnumNames(t, tests, ConfChangeTransition_name, ConfChangeTransition_value)
}

// checkEnumNames checks every case's String and that the cases cover the
// generated name and value maps exactly, so a value added to raft.proto
// without a case here fails.
func checkEnumNames(t *testing.T, tests []enumCase, names map[int32]string, values map[string]int32) {
	t.Helper()
	require.Len(t, names, len(tests), "every generated value needs a case")
	require.Len(t, values, len(tests), "every generated value needs a case")
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, tt.value.String())
			require.Equal(t, tt.want, fmt.Sprint(tt.value), "fmt must use String")
			num, ok := values[tt.want]
			require.True(t, ok, "%s missing from the value map", tt.want)
			require.Equal(t, tt.want, names[num])
		})
	}
}

// TestUnknownEnumString pins what the generated String does with a number it
// has no name for: it prints the decimal number (gogo's proto.EnumName), so
// a value from a newer peer shows up readably in logs.
func TestUnknownEnumString(t *testing.T) {
	tests := []struct {
		name  string
		value fmt.Stringer
		want  string
	}{
		{"message type after the last", MessageType(24), "24"},
		{"message type far out", MessageType(1000), "1000"},
		{"negative message type", MessageType(-1), "-1"},
		{"entry type", EntryType(3), "3"},
		{"negative entry type", EntryType(-7), "-7"},
		{"conf change type", ConfChangeType(4), "4"},
		{"conf change transition", ConfChangeTransition(3), "3"},
		{"largest int32", MessageType(2147483647), "2147483647"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.value.String())
		})
	}
}
