package confchange

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

func TestDescribe(t *testing.T) {
	tests := []struct {
		name string
		ccs  []pb.ConfChangeSingle
		want string
	}{
		{"none", nil, ""},
		{"add voter", []pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode, NodeID: 1}}, "v1"},
		{"add learner", []pb.ConfChangeSingle{{Type: pb.ConfChangeAddLearnerNode, NodeID: 2}}, "l2"},
		{"remove", []pb.ConfChangeSingle{{Type: pb.ConfChangeRemoveNode, NodeID: 3}}, "r3"},
		{"update", []pb.ConfChangeSingle{{Type: pb.ConfChangeUpdateNode, NodeID: 4}}, "u4"},
		{"several, in order", []pb.ConfChangeSingle{
			{Type: pb.ConfChangeAddNode, NodeID: 1},
			{Type: pb.ConfChangeRemoveNode, NodeID: 2},
			{Type: pb.ConfChangeAddLearnerNode, NodeID: 3},
		}, "v1 r2 l3"},
		{"largest node ID", []pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode, NodeID: ^uint64(0)}}, "v18446744073709551615"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Describe(tt.ccs...)
			require.Equal(t, tt.want, got)
			back, err := pb.ConfChangesFromString(got)
			require.NoError(t, err)
			require.Equal(t, tt.ccs, back, "Describe's output parses back to the changes")
		})
	}
}

func TestDescribeUnknownType(t *testing.T) {
	got := Describe(pb.ConfChangeSingle{Type: pb.ConfChangeType(9), NodeID: 5}, pb.ConfChangeSingle{Type: pb.ConfChangeAddNode, NodeID: 6})
	require.Equal(t, "unknown5 v6", got)
}
