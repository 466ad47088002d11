package quorum

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMajorityCommittedIndex(t *testing.T) {
	tests := []struct {
		name   string
		voters MajorityConfig
		acked  MapAckIndexer
		want   Index
	}{
		{"nil config commits everything", nil, MapAckIndexer{1: 5}, math.MaxUint64},
		{"empty config commits everything", majority(), MapAckIndexer{}, math.MaxUint64},
		{"single voter commits its own ack", majority(1), MapAckIndexer{1: 12}, 12},
		{"single voter not found commits 0", majority(1), MapAckIndexer{2: 12}, 0},
		{"two voters need both", majority(1, 2), MapAckIndexer{1: 10, 2: 4}, 4},
		{"two voters one missing", majority(1, 2), MapAckIndexer{1: 10}, 0},
		{"three voters take the median", majority(1, 2, 3), MapAckIndexer{1: 9, 2: 3, 3: 6}, 6},
		{"three voters two equal high", majority(1, 2, 3), MapAckIndexer{1: 9, 2: 9, 3: 1}, 9},
		{"three voters one missing", majority(1, 2, 3), MapAckIndexer{1: 9, 3: 6}, 6},
		{"three voters two missing", majority(1, 2, 3), MapAckIndexer{1: 9}, 0},
		{"four voters need three", majority(1, 2, 3, 4), MapAckIndexer{1: 8, 2: 7, 3: 2, 4: 1}, 2},
		{"four voters three high", majority(1, 2, 3, 4), MapAckIndexer{1: 8, 2: 7, 3: 7, 4: 1}, 7},
		{"five voters need three", majority(1, 2, 3, 4, 5), MapAckIndexer{1: 1, 2: 2, 3: 3, 4: 4, 5: 5}, 3},
		{"five voters two missing", majority(1, 2, 3, 4, 5), MapAckIndexer{1: 10, 2: 10, 3: 10}, 10},
		{"five voters three missing", majority(1, 2, 3, 4, 5), MapAckIndexer{1: 10, 2: 10}, 0},
		{"six voters need four", majority(1, 2, 3, 4, 5, 6), MapAckIndexer{1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1}, 3},
		{"acks from non-voters ignored", majority(1, 2, 3), MapAckIndexer{1: 5, 7: 100, 8: 100}, 0},
		{"nine voters use the heap path", majority(1, 2, 3, 4, 5, 6, 7, 8, 9),
			MapAckIndexer{1: 9, 2: 8, 3: 7, 4: 6, 5: 5, 6: 4, 7: 3, 8: 2, 9: 1}, 5},
		{"max index is representable", majority(1), MapAckIndexer{1: math.MaxUint64 - 1}, math.MaxUint64 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.voters.CommittedIndex(tt.acked)
			require.Equal(t, tt.want, got, "\n%s", tt.voters.Describe(tt.acked))
		})
	}
}

func TestMajorityVoteResult(t *testing.T) {
	tests := []struct {
		name   string
		voters MajorityConfig
		votes  map[uint64]bool
		want   VoteResult
	}{
		{"empty config wins", majority(), nil, VoteWon},
		{"single voter pending", majority(1), nil, VotePending},
		{"single voter granted", majority(1), map[uint64]bool{1: true}, VoteWon},
		{"single voter rejected", majority(1), map[uint64]bool{1: false}, VoteLost},
		{"two voters one granted", majority(1, 2), map[uint64]bool{1: true}, VotePending},
		{"two voters one rejected", majority(1, 2), map[uint64]bool{1: false}, VoteLost},
		{"two voters both granted", majority(1, 2), map[uint64]bool{1: true, 2: true}, VoteWon},
		{"three voters two granted", majority(1, 2, 3), map[uint64]bool{1: true, 3: true}, VoteWon},
		{"three voters split", majority(1, 2, 3), map[uint64]bool{1: true, 2: false}, VotePending},
		{"three voters two rejected", majority(1, 2, 3), map[uint64]bool{1: false, 2: false}, VoteLost},
		{"four voters two granted", majority(1, 2, 3, 4), map[uint64]bool{1: true, 2: true}, VotePending},
		{"four voters two rejected", majority(1, 2, 3, 4), map[uint64]bool{1: false, 2: false}, VoteLost},
		{"four voters three granted", majority(1, 2, 3, 4), map[uint64]bool{1: true, 2: true, 4: true}, VoteWon},
		{"five voters two each", majority(1, 2, 3, 4, 5),
			map[uint64]bool{1: true, 2: true, 3: false, 4: false}, VotePending},
		{"five voters three rejected", majority(1, 2, 3, 4, 5),
			map[uint64]bool{1: true, 2: false, 3: false, 4: false}, VoteLost},
		{"votes of non-voters ignored", majority(1, 2, 3),
			map[uint64]bool{1: true, 7: true, 8: true}, VotePending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.voters.VoteResult(tt.votes))
		})
	}
}

func TestMajorityStringAndSlice(t *testing.T) {
	tests := []struct {
		name      string
		voters    MajorityConfig
		wantStr   string
		wantSlice []uint64
	}{
		{"nil", nil, "()", nil},
		{"empty", majority(), "()", nil},
		{"one", majority(7), "(7)", []uint64{7}},
		{"sorted", majority(30, 2, 11), "(2 11 30)", []uint64{2, 11, 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.wantStr, tt.voters.String())
			require.Equal(t, tt.wantSlice, tt.voters.Slice())
		})
	}
}
