package quorum

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIndexString(t *testing.T) {
	require.Equal(t, "0", Index(0).String())
	require.Equal(t, "42", Index(42).String())
	require.Equal(t, "∞", Index(math.MaxUint64).String())
}

func TestVoteResultString(t *testing.T) {
	require.Equal(t, "VotePending", VotePending.String())
	require.Equal(t, "VoteLost", VoteLost.String())
	require.Equal(t, "VoteWon", VoteWon.String())
	require.Equal(t, "VoteResult(0)", VoteResult(0).String())
}

// TestVoteResultValues pins the numbers behind the results, which match
// etcd raft's (the zero value is not a result).
func TestVoteResultValues(t *testing.T) {
	require.Equal(t, []VoteResult{1, 2, 3}, []VoteResult{VotePending, VoteLost, VoteWon})
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		name string
		desc func() string
		want string
	}{
		{
			name: "empty",
			desc: func() string { return MajorityConfig{}.Describe(MapAckIndexer{}) },
			want: "voters (): empty, commits ∞\n",
		},
		{
			name: "majority with a missing voter",
			desc: func() string {
				return majority(1, 2, 3, 10).Describe(MapAckIndexer{1: 7, 2: 5, 10: 100})
			},
			want: "" +
				"voters (1 2 3 10): quorum 3, committed 5\n" +
				"id  acked\n" +
				"1   7      ≥ committed\n" +
				"2   5      ≥ committed\n" +
				"3   -      not found, counts as 0\n" +
				"10  100    ≥ committed\n",
		},
		{
			name: "joint names the half that holds back",
			desc: func() string {
				c := JointConfig{majority(1, 2, 4), majority(1, 2, 3)}
				return c.Describe(MapAckIndexer{1: 9, 2: 5, 3: 1, 4: 9})
			},
			want: "" +
				"incoming (1 2 4): quorum 2, committed 9\n" +
				"id  acked\n" +
				"1   9      ≥ committed\n" +
				"2   5\n" +
				"4   9      ≥ committed\n" +
				"outgoing (1 2 3): quorum 2, committed 5\n" +
				"id  acked\n" +
				"1   9      ≥ committed\n" +
				"2   5      ≥ committed\n" +
				"3   1\n" +
				"joint committed 5 (outgoing holds it back)\n",
		},
		{
			name: "joint that is not joint",
			desc: func() string { return JointConfig{majority(1)}.Describe(MapAckIndexer{1: 3}) },
			want: "voters (1): quorum 1, committed 3\nid  acked\n1   3      ≥ committed\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.desc())
		})
	}
}
