package quorum

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJointCommittedIndex(t *testing.T) {
	tests := []struct {
		name   string
		voters JointConfig
		acked  MapAckIndexer
		want   Index
	}{
		{"both halves empty", JointConfig{}, MapAckIndexer{1: 3}, math.MaxUint64},
		{"not joint behaves like incoming", JointConfig{majority(1, 2, 3)}, MapAckIndexer{1: 5, 2: 4, 3: 3}, 4},
		{"empty incoming defers to outgoing", JointConfig{majority(), majority(1, 2, 3)},
			MapAckIndexer{1: 5, 2: 4, 3: 3}, 4},
		{"identical halves", JointConfig{majority(1, 2, 3), majority(1, 2, 3)},
			MapAckIndexer{1: 5, 2: 4, 3: 3}, 4},
		// Incoming (1 2 4) would commit 9, outgoing (1 2 3) only 5.
		{"outgoing holds back", JointConfig{majority(1, 2, 4), majority(1, 2, 3)},
			MapAckIndexer{1: 9, 2: 5, 3: 1, 4: 9}, 5},
		// Incoming (1 4 5) would commit 2, outgoing (1 2 3) 8.
		{"incoming holds back", JointConfig{majority(1, 4, 5), majority(1, 2, 3)},
			MapAckIndexer{1: 9, 2: 8, 3: 8, 4: 2, 5: 1}, 2},
		{"disjoint halves", JointConfig{majority(4, 5, 6), majority(1, 2, 3)},
			MapAckIndexer{1: 10, 2: 10, 3: 10, 4: 7, 5: 7, 6: 0}, 7},
		{"missing voter in outgoing only", JointConfig{majority(1, 2), majority(1, 2, 3)},
			MapAckIndexer{1: 6, 2: 6}, 6},
		{"single voter to three", JointConfig{majority(1, 2, 3), majority(1)},
			MapAckIndexer{1: 20, 2: 15}, 15},
		{"three to single voter", JointConfig{majority(1), majority(1, 2, 3)},
			MapAckIndexer{1: 20, 2: 15}, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.voters.CommittedIndex(tt.acked)
			require.Equal(t, tt.want, got, "\n%s", tt.voters.Describe(tt.acked))
		})
	}
}

func TestJointVoteResult(t *testing.T) {
	in, out := majority(1, 2, 3), majority(1, 4, 5)
	tests := []struct {
		name   string
		voters JointConfig
		votes  map[uint64]bool
		want   VoteResult
	}{
		{"both empty wins", JointConfig{}, nil, VoteWon},
		{"not joint won", JointConfig{in}, map[uint64]bool{1: true, 2: true}, VoteWon},
		{"empty incoming, outgoing won", JointConfig{majority(), out}, map[uint64]bool{4: true, 5: true}, VoteWon},
		{"empty incoming, outgoing pending", JointConfig{majority(), out}, map[uint64]bool{4: true}, VotePending},
		{"empty incoming, outgoing lost", JointConfig{majority(), out}, map[uint64]bool{4: false, 5: false}, VoteLost},
		{"nothing yet", JointConfig{in, out}, nil, VotePending},
		{"shared voter alone is pending", JointConfig{in, out}, map[uint64]bool{1: true}, VotePending},
		{"both won", JointConfig{in, out}, map[uint64]bool{1: true, 2: true, 4: true}, VoteWon},
		{"incoming won, outgoing pending", JointConfig{in, out}, map[uint64]bool{2: true, 3: true}, VotePending},
		{"incoming pending, outgoing won", JointConfig{in, out}, map[uint64]bool{4: true, 5: true}, VotePending},
		{"incoming won, outgoing lost", JointConfig{in, out},
			map[uint64]bool{2: true, 3: true, 4: false, 5: false}, VoteLost},
		{"incoming lost, outgoing won", JointConfig{in, out},
			map[uint64]bool{2: false, 3: false, 4: true, 5: true}, VoteLost},
		{"shared rejection loses both", JointConfig{in, out},
			map[uint64]bool{1: false, 2: false, 4: false}, VoteLost},
		{"incoming lost, outgoing pending", JointConfig{in, out}, map[uint64]bool{2: false, 3: false}, VoteLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.voters.VoteResult(tt.votes))
		})
	}
}

func TestJointStringAndIDs(t *testing.T) {
	tests := []struct {
		name    string
		voters  JointConfig
		wantStr string
		wantIDs map[uint64]struct{}
	}{
		{"empty", JointConfig{}, "()", map[uint64]struct{}{}},
		{"not joint", JointConfig{majority(3, 1, 2)}, "(1 2 3)", majority(1, 2, 3)},
		{"joint", JointConfig{majority(1, 2, 3), majority(1, 2, 4)}, "(1 2 3)&&(1 2 4)", majority(1, 2, 3, 4)},
		{"empty incoming", JointConfig{majority(), majority(1)}, "()&&(1)", majority(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.wantStr, tt.voters.String())
			require.Equal(t, tt.wantIDs, tt.voters.IDs())
		})
	}
}
