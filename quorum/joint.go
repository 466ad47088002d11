package quorum

// JointConfig is the configuration during a membership change: index 0 is
// the incoming majority, index 1 the outgoing one. Outside a change the
// outgoing half is empty (nil), and the JointConfig behaves exactly like its
// incoming MajorityConfig. A voter may appear in both halves; it still has a
// single acked index and a single vote.
type JointConfig [2]MajorityConfig

// String returns "(1 2 3)&&(1 2 4)" for a joint configuration, or just the
// incoming half, "(1 2 3)", when the outgoing half is empty.
func (c JointConfig) String() string {
	if len(c[1]) > 0 {
		return c[0].String() + "&&" + c[1].String()
	}
	return c[0].String()
}

// IDs returns the union of the voters of both halves as a new set that the
// caller owns.
func (c JointConfig) IDs() map[uint64]struct{} {
	ids := make(map[uint64]struct{}, len(c[0])+len(c[1]))
	for _, half := range c {
		for id := range half {
			ids[id] = struct{}{}
		}
	}
	return ids
}

// CommittedIndex returns the largest index committed by both halves, that is
// the smaller of their committed indexes. When both halves are empty it
// returns math.MaxUint64; callers with no voters must handle that. It does
// not allocate when each half has at most seven voters.
func (c JointConfig) CommittedIndex(l AckedIndexer) Index {
	return min(c[0].CommittedIndex(l), c[1].CommittedIndex(l))
}

// VoteResult tallies votes against both halves: the election is won only when
// both halves have won, lost as soon as either half has lost, and pending
// otherwise. An empty half counts as won.
func (c JointConfig) VoteResult(votes map[uint64]bool) VoteResult {
	r0 := c[0].VoteResult(votes)
	r1 := c[1].VoteResult(votes)
	switch {
	case r0 == VoteLost || r1 == VoteLost:
		return VoteLost
	case r0 == VoteWon && r1 == VoteWon:
		return VoteWon
	default:
		return VotePending
	}
}
