package quorum

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// benchConfigs are the shapes a real cluster has: the small odd sizes and a
// joint change between two five-voter configurations.
func benchConfigs() []struct {
	name   string
	voters JointConfig
} {
	return []struct {
		name   string
		voters JointConfig
	}{
		{"voters=1", JointConfig{majority(1)}},
		{"voters=3", JointConfig{majority(1, 2, 3)}},
		{"voters=5", JointConfig{majority(1, 2, 3, 4, 5)}},
		{"voters=7", JointConfig{majority(1, 2, 3, 4, 5, 6, 7)}},
		{"joint=5&&5", JointConfig{majority(1, 2, 3, 4, 5), majority(3, 4, 5, 6, 7)}},
	}
}

func benchAcks() MapAckIndexer {
	acked := MapAckIndexer{}
	for id := uint64(1); id <= 9; id++ {
		acked[id] = Index(1000 - id*7)
	}
	return acked
}

func BenchmarkMajorityCommittedIndex(b *testing.B) {
	acked := benchAcks()
	for _, bc := range benchConfigs() {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var sink Index
			for b.Loop() {
				sink += bc.voters.CommittedIndex(acked)
			}
			_ = sink
		})
	}
}

func BenchmarkMajorityVoteResult(b *testing.B) {
	for _, bc := range benchConfigs() {
		votes := map[uint64]bool{}
		for id := range bc.voters.IDs() {
			votes[id] = id%3 != 0
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var sink VoteResult
			for b.Loop() {
				sink += bc.voters.VoteResult(votes)
			}
			_ = sink
		})
	}
}

// TestCommittedIndexDoesNotAllocate guards the hot-path promise outside the
// benchmarks, so that a regression fails `go test`.
func TestCommittedIndexDoesNotAllocate(t *testing.T) {
	acked := benchAcks()
	for _, bc := range benchConfigs() {
		t.Run(bc.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() { _ = bc.voters.CommittedIndex(acked) })
			require.Zero(t, allocs, fmt.Sprintf("%s allocates", bc.voters))
		})
	}
}
