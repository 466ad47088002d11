package tracker

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/raftcore/raft/invariants"
	"github.com/raftcore/raft/quorum"
	pb "github.com/raftcore/raft/raftpb"
)

// Config is a membership configuration as the leader tracks it.
type Config struct {
	// Voters is the incoming and, during a joint change, the outgoing voter
	// set. Outside a change Voters[1] is empty.
	Voters quorum.JointConfig
	// AutoLeave asks the leader to leave the joint configuration on its own
	// once the joint one is committed. Invariant: only set while joint
	// (len(Voters[1]) > 0).
	AutoLeave bool
	// Learners receive the log but do not vote. Invariant: disjoint from both
	// halves of Voters; a voter being demoted waits in LearnersNext instead.
	Learners map[uint64]struct{}
	// LearnersNext are outgoing voters that become learners when the joint
	// configuration is left. They cannot be in Learners yet because that would
	// break the disjointness invariant while they still vote in the outgoing
	// half. Invariant: LearnersNext ⊆ Voters[1], and disjoint from Voters[0].
	LearnersNext map[uint64]struct{}
}

// String renders the configuration, e.g.
// "voters=(1 2 3)&&(1 2 4) learners=(5) learners_next=(4) autoleave",
// leaving out the parts that are empty.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("voters=")
	b.WriteString(c.Voters.String())
	if len(c.Learners) > 0 {
		b.WriteString(" learners=")
		b.WriteString(quorum.MajorityConfig(c.Learners).String())
	}
	if len(c.LearnersNext) > 0 {
		b.WriteString(" learners_next=")
		b.WriteString(quorum.MajorityConfig(c.LearnersNext).String())
	}
	if c.AutoLeave {
		b.WriteString(" autoleave")
	}
	return b.String()
}

// Clone returns a deep copy that shares no maps with c. Nil maps stay nil.
func (c *Config) Clone() Config {
	return Config{
		Voters:       quorum.JointConfig{cloneSet(c.Voters[0]), cloneSet(c.Voters[1])},
		AutoLeave:    c.AutoLeave,
		Learners:     cloneSet(c.Learners),
		LearnersNext: cloneSet(c.LearnersNext),
	}
}

func cloneSet[S ~map[uint64]struct{}](s S) S {
	if s == nil {
		return nil
	}
	c := make(S, len(s))
	for id := range s {
		c[id] = struct{}{}
	}
	return c
}

// sortedIDs returns the keys of s in ascending order, or nil if s is empty.
func sortedIDs[S ~map[uint64]struct{}](s S) []uint64 {
	return quorum.MajorityConfig(s).Slice()
}

// ProgressTracker is the leader's (and a candidate's) bookkeeping: the
// active configuration, the Progress of every peer in it and the votes of the
// current election. It is not safe for concurrent use.
type ProgressTracker struct {
	Config

	// Progress has one entry per voter (either half) and learner, including
	// LearnersNext; the confchange package keeps it in step with Config.
	Progress ProgressMap

	// Votes holds the first vote received from each peer this election;
	// nil until the first one.
	Votes map[uint64]bool

	// MaxInflight and MaxInflightBytes size the Inflights of new Progress
	// entries (see NewInflights).
	MaxInflight      int
	MaxInflightBytes uint64

	// order caches Progress's peers sorted by ID (see ordered); it is
	// checked against Progress on every use, never trusted blindly.
	// A pointer, not the slice itself: a tracker without progress (a
	// follower's) carries 8 bytes for it instead of 24.
	order *[]peerRef
}

// MakeProgressTracker returns a tracker with an empty configuration, no
// peers and no votes. maxInflight and maxBytes size the Inflights of the
// Progress entries the caller creates.
func MakeProgressTracker(maxInflight int, maxBytes uint64) ProgressTracker {
	return ProgressTracker{
		Config:           Config{Voters: quorum.JointConfig{quorum.MajorityConfig{}, nil}},
		Progress:         ProgressMap{},
		MaxInflight:      maxInflight,
		MaxInflightBytes: maxBytes,
	}
}

// ConfState returns the configuration in wire form, each ID list sorted and
// nil when empty. The caller owns the slices.
func (p *ProgressTracker) ConfState() pb.ConfState {
	return pb.ConfState{
		Voters:         p.Voters[0].Slice(),
		VotersOutgoing: p.Voters[1].Slice(),
		Learners:       sortedIDs(p.Learners),
		LearnersNext:   sortedIDs(p.LearnersNext),
		AutoLeave:      p.AutoLeave,
	}
}

// IsSingleton reports whether the configuration has exactly one voter and is
// not joint, so that the leader can commit on its own acknowledgement.
func (p *ProgressTracker) IsSingleton() bool {
	return len(p.Voters[0]) == 1 && len(p.Voters[1]) == 0
}

// matchAckIndexer presents the Match of each peer's Progress as its acked
// index. Learners are never asked: only voters are looked up.
type matchAckIndexer map[uint64]*Progress

// AckedIndex implements quorum.AckedIndexer.
func (m matchAckIndexer) AckedIndex(id uint64) (quorum.Index, bool) {
	pr, ok := m[id]
	if !ok {
		return 0, false
	}
	return quorum.Index(pr.Match), true
}

// Committed returns the largest index that the voters' Match values commit
// (both halves when joint). Learners do not count. With no voters at all it
// returns math.MaxUint64, which the caller must not treat as a real index.
// It does not allocate for up to seven voters per half.
func (p *ProgressTracker) Committed() uint64 {
	peers := p.ordered()
	c := majorityCommitted(p.Voters[0], peers)
	if out := majorityCommitted(p.Voters[1], peers); out < c {
		c = out
	}
	if invariants.Enabled {
		if want := uint64(p.Voters.CommittedIndex(matchAckIndexer(p.Progress))); c != want {
			panic(fmt.Sprintf("raft: invariant: committed index %d from the ordered peers, %d from the quorum configuration %s", c, want, p.Voters))
		}
	}
	return c
}

// majorityCommitted is quorum.MajorityConfig.CommittedIndex over the Match
// values of peers (every peer of the tracker, each once), without iterating
// the configuration's map: a voter without Progress counts as having acked
// 0.
func majorityCommitted(c quorum.MajorityConfig, peers []peerRef) uint64 {
	n := len(c)
	if n == 0 {
		return math.MaxUint64
	}
	var stack [visitStack]uint64
	var acked []uint64
	if n <= len(stack) {
		acked = stack[:n]
	} else {
		acked = make([]uint64, n)
	}
	// Voters without Progress keep the zero at the front of acked.
	i := n
	for _, e := range peers {
		if _, ok := c[e.id]; ok && i > 0 {
			i--
			acked[i] = e.pr.Match
		}
	}
	sortIDs(acked)
	// Ascending order: the n/2+1 largest values are acked[n-(n/2+1):].
	return acked[n-(n/2+1)]
}

// visitStack is how many peers Visit orders without allocating.
const visitStack = 7

// peerRef is one peer of ProgressTracker.order.
type peerRef struct {
	id uint64
	pr *Progress
}

// ordered returns the peers of p.Progress in ascending ID order, from
// p.order while that still matches p.Progress. It checks the match in full
// (same size, and every cached ID present with the same *Progress), so a
// Progress map replaced or edited by anyone is noticed; ranging over the
// map and sorting on every call cost more than the lookups. A rebuilt
// order is a new slice, since copies of the tracker share the old one.
func (p *ProgressTracker) ordered() []peerRef {
	var cached []peerRef
	if p.order != nil {
		cached = *p.order
	}
	if len(cached) == len(p.Progress) && p.orderMatches(cached) {
		return cached
	}
	order := make([]peerRef, 0, len(p.Progress))
	for id, pr := range p.Progress {
		order = append(order, peerRef{id: id, pr: pr})
	}
	slices.SortFunc(order, func(a, b peerRef) int { return cmp.Compare(a.id, b.id) })
	p.order = &order
	return order
}

// orderMatches reports whether every peer of order is in p.Progress with
// the same *Progress.
func (p *ProgressTracker) orderMatches(order []peerRef) bool {
	for _, e := range order {
		if pr, ok := p.Progress[e.id]; !ok || pr != e.pr {
			return false
		}
	}
	return true
}

// Visit calls f for every peer in ascending ID order. f may modify the
// Progress it is given but must not add or remove peers. Visit does not
// allocate unless the peers changed since the last Visit or Committed.
func (p *ProgressTracker) Visit(f func(id uint64, pr *Progress)) {
	for _, e := range p.ordered() {
		f(e.id, e.pr)
	}
}

// sortIDs sorts ids ascending: insertion sort for the few peers of a real
// cluster, slices.Sort beyond the stack array.
func sortIDs(ids []uint64) {
	if len(ids) > visitStack {
		slices.Sort(ids)
		return
	}
	for i := 1; i < len(ids); i++ {
		id := ids[i]
		j := i
		for ; j > 0 && ids[j-1] > id; j-- {
			ids[j] = ids[j-1]
		}
		ids[j] = id
	}
}
