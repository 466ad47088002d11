package tracker

import "github.com/raftcore/raft/quorum"

// QuorumActive reports whether the voters heard from during the current
// check-quorum interval (RecentActive) form a quorum of the configuration,
// both halves when joint. Learners do not count. A leader that finds no
// active quorum should step down.
func (p *ProgressTracker) QuorumActive() bool {
	active := make(map[uint64]bool, len(p.Progress))
	for id, pr := range p.Progress {
		if !pr.IsLearner {
			active[id] = pr.RecentActive
		}
	}
	return p.Voters.VoteResult(active) == quorum.VoteWon
}

// VoterNodes returns the IDs of all voters, both halves when joint, in
// ascending order. The caller owns the slice.
func (p *ProgressTracker) VoterNodes() []uint64 {
	return quorum.MajorityConfig(p.Voters.IDs()).Slice()
}

// LearnerNodes returns the IDs of the learners in ascending order, or nil if
// there are none. LearnersNext are not included: they still vote. The caller
// owns the slice.
func (p *ProgressTracker) LearnerNodes() []uint64 {
	return sortedIDs(p.Learners)
}

// ResetVotes forgets the votes of the previous election. It drops the map
// rather than clearing it, so that a group between elections holds none.
func (p *ProgressTracker) ResetVotes() {
	p.Votes = nil
}

// RecordVote records a vote from id. Only the first vote a node casts in an
// election counts; later ones, even if different, are ignored.
func (p *ProgressTracker) RecordVote(id uint64, granted bool) {
	if p.Votes == nil {
		p.Votes = map[uint64]bool{}
	}
	if _, ok := p.Votes[id]; !ok {
		p.Votes[id] = granted
	}
}

// TallyVotes counts the votes of current voters (either half) and returns
// how many granted, how many rejected, and the election's result. Votes from
// learners or removed nodes are ignored.
func (p *ProgressTracker) TallyVotes() (granted, rejected int, result quorum.VoteResult) {
	for id, v := range p.Votes {
		if !p.isVoter(id) {
			continue
		}
		if v {
			granted++
		} else {
			rejected++
		}
	}
	return granted, rejected, p.Voters.VoteResult(p.Votes)
}

func (p *ProgressTracker) isVoter(id uint64) bool {
	_, in := p.Voters[0][id]
	_, out := p.Voters[1][id]
	return in || out
}
