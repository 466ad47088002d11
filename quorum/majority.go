package quorum

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// MajorityConfig is a set of voter IDs in which any strict majority decides.
// A nil or empty MajorityConfig is valid: it commits every index and wins
// every vote, so that it is neutral as one half of a JointConfig.
type MajorityConfig map[uint64]struct{}

// smallConfig is the largest configuration whose arithmetic runs on a stack
// array. Seven voters cover every production cluster we know of.
const smallConfig = 7

// String returns the sorted voter IDs in parentheses, e.g. "(1 2 3)", or
// "()" when empty.
func (c MajorityConfig) String() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, id := range c.Slice() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(id, 10))
	}
	b.WriteByte(')')
	return b.String()
}

// Slice returns the voter IDs in ascending order, or nil when the
// configuration is empty. The caller owns the returned slice.
func (c MajorityConfig) Slice() []uint64 {
	if len(c) == 0 {
		return nil
	}
	ids := make([]uint64, 0, len(c))
	for id := range c {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// quorumSize is the smallest number of voters that forms a strict majority.
func (c MajorityConfig) quorumSize() int {
	return len(c)/2 + 1
}

// CommittedIndex returns the largest index that a strict majority of the
// voters has acked. Voters that l does not know count as having acked 0. An
// empty configuration returns math.MaxUint64 (see MajorityConfig). It does
// not allocate for up to seven voters.
func (c MajorityConfig) CommittedIndex(l AckedIndexer) Index {
	n := len(c)
	if n == 0 {
		return math.MaxUint64
	}
	var stack [smallConfig]uint64
	var acked []uint64
	if n <= len(stack) {
		acked = stack[:n]
	} else {
		acked = make([]uint64, n)
	}
	i := 0
	for id := range c {
		idx, _ := l.AckedIndex(id) // a missing voter reports 0
		acked[i] = uint64(idx)
		i++
	}
	sortSmall(acked)
	// Ascending order: the quorumSize() largest values are acked[n-q:], so
	// acked[n-q] is the highest index that many voters have all reached.
	return Index(acked[n-c.quorumSize()])
}

// sortSmall sorts s ascending; insertion sort is fastest for the handful of
// voters a real cluster has, and slices.Sort takes over beyond that.
func sortSmall(s []uint64) {
	if len(s) > smallConfig {
		slices.Sort(s)
		return
	}
	for i := 1; i < len(s); i++ {
		v := s[i]
		j := i
		for ; j > 0 && s[j-1] > v; j-- {
			s[j] = s[j-1]
		}
		s[j] = v
	}
}

// VoteResult tallies votes (voter ID → granted) against the configuration.
// Entries for IDs outside the configuration are ignored; voters without an
// entry have not answered yet. An empty configuration returns VoteWon (see
// MajorityConfig).
func (c MajorityConfig) VoteResult(votes map[uint64]bool) VoteResult {
	if len(c) == 0 {
		return VoteWon
	}
	granted, missing := 0, 0
	for id := range c {
		v, ok := votes[id]
		switch {
		case !ok:
			missing++
		case v:
			granted++
		}
	}
	q := c.quorumSize()
	switch {
	case granted >= q:
		return VoteWon
	case granted+missing >= q:
		return VotePending
	default:
		return VoteLost
	}
}
