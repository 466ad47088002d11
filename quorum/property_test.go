package quorum

import (
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

// The property tests check the optimised arithmetic against references that
// follow the definitions literally and are too slow for production.

const (
	propertySeed  = 20240611
	propertyCases = 5000
	propertyIDs   = 10 // voter IDs are drawn from 1..propertyIDs
	propertyMaxIx = 20 // acked indexes are drawn from 0..propertyMaxIx
)

func TestCommittedIndexMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(propertySeed))
	for i := 0; i < propertyCases; i++ {
		c := randomJoint(rng)
		acked := randomAcks(rng)
		want := refCommitted(c, acked)
		require.Equal(t, want, c.CommittedIndex(acked),
			"case %d: config %s acks %v\n%s", i, c, acked, c.Describe(acked))
		if len(c[1]) == 0 {
			require.Equal(t, want, c[0].CommittedIndex(acked), "case %d: majority %s", i, c[0])
		}
	}
}

func TestVoteResultMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(propertySeed))
	for i := 0; i < propertyCases; i++ {
		c := randomJoint(rng)
		votes := randomVotes(rng)
		want := refVoteResult(c, votes)
		require.Equal(t, want, c.VoteResult(votes), "case %d: config %s votes %v", i, c, votes)
		if len(c[1]) == 0 {
			require.Equal(t, want, c[0].VoteResult(votes), "case %d: majority %s", i, c[0])
		}
	}
}

// randomMajority draws 0..9 distinct voters.
func randomMajority(rng *rand.Rand) MajorityConfig {
	c := MajorityConfig{}
	for _, p := range rng.Perm(propertyIDs)[:rng.Intn(propertyIDs)] {
		c[uint64(p)+1] = struct{}{}
	}
	return c
}

// randomJoint returns a joint configuration half of the time.
func randomJoint(rng *rand.Rand) JointConfig {
	c := JointConfig{randomMajority(rng)}
	if rng.Intn(2) == 0 {
		c[1] = randomMajority(rng)
	}
	return c
}

// randomAcks leaves about a fifth of the IDs (voters or not) unknown.
func randomAcks(rng *rand.Rand) MapAckIndexer {
	acked := MapAckIndexer{}
	for id := uint64(1); id <= propertyIDs+2; id++ {
		if rng.Intn(5) > 0 {
			acked[id] = Index(rng.Intn(propertyMaxIx + 1))
		}
	}
	return acked
}

// randomVotes leaves about a third of the IDs without a vote.
func randomVotes(rng *rand.Rand) map[uint64]bool {
	votes := map[uint64]bool{}
	for id := uint64(1); id <= propertyIDs+2; id++ {
		switch rng.Intn(3) {
		case 0:
			votes[id] = true
		case 1:
			votes[id] = false
		}
	}
	return votes
}

// refCommitted tries every candidate index and keeps the largest one that a
// strict majority of each non-empty half has acked.
func refCommitted(c JointConfig, acked MapAckIndexer) Index {
	if len(c[0]) == 0 && len(c[1]) == 0 {
		return math.MaxUint64
	}
	best := Index(0)
	for cand := Index(0); cand <= propertyMaxIx; cand++ {
		if refHalfCommits(c[0], acked, cand) && refHalfCommits(c[1], acked, cand) {
			best = cand
		}
	}
	return best
}

func refHalfCommits(h MajorityConfig, acked MapAckIndexer, cand Index) bool {
	if len(h) == 0 {
		return true
	}
	n := 0
	for id := range h {
		if acked[id] >= cand { // unknown voters read as 0
			n++
		}
	}
	return 2*n > len(h)
}

// refVoteResult enumerates every way the voters that have not voted could
// still vote: won if all of them win, lost if none does, pending otherwise.
func refVoteResult(c JointConfig, votes map[uint64]bool) VoteResult {
	var missing []uint64
	for id := range c.IDs() {
		if _, ok := votes[id]; !ok {
			missing = append(missing, id)
		}
	}
	anyWon, anyLost := false, false
	for mask := 0; mask < 1<<len(missing); mask++ {
		full := map[uint64]bool{}
		for id, v := range votes {
			full[id] = v
		}
		for i, id := range missing {
			full[id] = mask&(1<<i) != 0
		}
		if refHalfWins(c[0], full) && refHalfWins(c[1], full) {
			anyWon = true
		} else {
			anyLost = true
		}
	}
	switch {
	case !anyLost:
		return VoteWon
	case !anyWon:
		return VoteLost
	default:
		return VotePending
	}
}

func refHalfWins(h MajorityConfig, votes map[uint64]bool) bool {
	if len(h) == 0 {
		return true
	}
	n := 0
	for id := range h {
		if votes[id] {
			n++
		}
	}
	return 2*n > len(h)
}
