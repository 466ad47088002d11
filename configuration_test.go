package raft

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft/quorum"
	"github.com/raftcore/raft/tracker"
)

// randomSet returns a random subset of IDs 1..8, nil when empty (as
// confchange leaves an empty set).
func randomSet(rng *rand.Rand) map[uint64]struct{} {
	var s map[uint64]struct{}
	for id := uint64(1); id <= 8; id++ {
		if rng.IntN(3) == 0 {
			if s == nil {
				s = map[uint64]struct{}{}
			}
			s[id] = struct{}{}
		}
	}
	return s
}

// The compact configuration says what the tracker's form says, for any
// sets (overlapping or not): the same wire form, voters, roles, and the
// same tracker.Config back.
func TestConfigurationMatchesTrackerConfig(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		cfg := tracker.Config{
			Voters:       quorum.JointConfig{randomSet(rng), randomSet(rng)},
			AutoLeave:    rng.IntN(2) == 0,
			Learners:     randomSet(rng),
			LearnersNext: randomSet(rng),
		}
		c := makeConfiguration(cfg)
		ref := tracker.ProgressTracker{Config: cfg}

		require.Equal(t, cfg, c.trackerConfig(cfg.AutoLeave), "case %d", i)
		require.Equal(t, ref.ConfState(), c.confState(cfg.AutoLeave), "case %d", i)
		require.Equal(t, ref.VoterNodes(), c.voterIDs(), "case %d", i)
		require.True(t, c.matches(cfg, cfg.AutoLeave), "case %d", i)
		require.False(t, c.matches(cfg, !cfg.AutoLeave), "case %d", i)
		require.Equal(t, len(c.members), cap(c.members), "case %d: spare room", i)
		for k := 1; k < len(c.members); k++ {
			require.Less(t, c.members[k-1].id, c.members[k].id, "case %d: order", i)
		}
		for id := uint64(0); id <= 9; id++ {
			_, in := cfg.Voters[0][id]
			_, out := cfg.Voters[1][id]
			_, learner := cfg.Learners[id]
			_, next := cfg.LearnersNext[id]
			require.Equal(t, in || out, c.isVoter(id), "case %d id %d", i, id)
			require.Equal(t, learner, c.isLearner(id), "case %d id %d", i, id)
			require.Equal(t, in || out || learner || next, c.roles(id) != 0, "case %d id %d", i, id)
		}
		// One set changed by one ID no longer matches.
		other := c.trackerConfig(cfg.AutoLeave)
		id := 1 + rng.Uint64N(8)
		set := &other.Learners
		switch rng.IntN(4) {
		case 0:
			set = (*map[uint64]struct{})(&other.Voters[0])
		case 1:
			set = (*map[uint64]struct{})(&other.Voters[1])
		case 2:
			set = &other.LearnersNext
		}
		if _, ok := (*set)[id]; ok {
			delete(*set, id)
		} else {
			if *set == nil {
				*set = map[uint64]struct{}{}
			}
			(*set)[id] = struct{}{}
		}
		require.False(t, c.matches(other, cfg.AutoLeave), "case %d: %s against %s", i, other, cfg)
	}
}

// The per-Ready invariant check compares the two forms without allocating.
func TestConfigurationMatchesDoesNotAllocate(t *testing.T) {
	cfg := tracker.Config{Voters: quorum.JointConfig{{1: {}, 2: {}, 3: {}}, {1: {}, 2: {}, 4: {}}}, LearnersNext: map[uint64]struct{}{4: {}}}
	c := makeConfiguration(cfg)
	require.Zero(t, testing.AllocsPerRun(20, func() { c.matches(cfg, false) }))
}
