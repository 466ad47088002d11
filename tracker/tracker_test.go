package tracker

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft/quorum"
	pb "github.com/raftcore/raft/raftpb"
)

// set builds an ID set.
func set(ids ...uint64) map[uint64]struct{} {
	s := map[uint64]struct{}{}
	for _, id := range ids {
		s[id] = struct{}{}
	}
	return s
}

// trackerForTest builds a tracker for cs with a Progress for every member,
// each at match 0, and checks the Config invariants when the test ends.
func trackerForTest(t testing.TB, cs pb.ConfState) *ProgressTracker {
	t.Helper()
	pt := MakeProgressTracker(4, 0)
	p := &pt
	p.Voters = quorum.JointConfig{set(cs.Voters...), nil}
	if len(cs.VotersOutgoing) > 0 {
		p.Voters[1] = set(cs.VotersOutgoing...)
	}
	if len(cs.Learners) > 0 {
		p.Learners = set(cs.Learners...)
	}
	if len(cs.LearnersNext) > 0 {
		p.LearnersNext = set(cs.LearnersNext...)
	}
	p.AutoLeave = cs.AutoLeave
	add := func(id uint64, learner bool) {
		p.Progress[id] = &Progress{Next: 1, Inflights: NewInflights(p.MaxInflight, 0), IsLearner: learner}
	}
	for id := range p.Voters.IDs() {
		add(id, false)
	}
	for id := range p.Learners {
		add(id, true)
	}
	t.Cleanup(func() { checkConfig(t, p) })
	return p
}

func checkConfig(t testing.TB, p *ProgressTracker) {
	t.Helper()
	for id := range p.Learners {
		require.NotContains(t, p.Voters[0], id, "learner %d is an incoming voter", id)
		require.NotContains(t, p.Voters[1], id, "learner %d is an outgoing voter", id)
	}
	for id := range p.LearnersNext {
		require.Contains(t, p.Voters[1], id, "learner-next %d is not an outgoing voter", id)
	}
	if p.AutoLeave {
		require.NotEmpty(t, p.Voters[1], "autoleave outside a joint config")
	}
	for id := range p.Voters.IDs() {
		require.Contains(t, p.Progress, id)
	}
}

// setMatch makes each listed peer's Match (and Next) reflect an ack.
func setMatch(p *ProgressTracker, matches map[uint64]uint64) {
	for id, m := range matches {
		p.Progress[id].MaybeUpdate(m)
	}
}

func TestConfigString(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty", Config{}, "voters=()"},
		{"simple", Config{Voters: quorum.JointConfig{set(3, 1, 2)}}, "voters=(1 2 3)"},
		{"learners", Config{Voters: quorum.JointConfig{set(1)}, Learners: set(5, 4)}, "voters=(1) learners=(4 5)"},
		{"joint", Config{
			Voters:       quorum.JointConfig{set(1, 2, 3), set(1, 2, 4)},
			Learners:     set(5),
			LearnersNext: set(4),
			AutoLeave:    true,
		}, "voters=(1 2 3)&&(1 2 4) learners=(5) learners_next=(4) autoleave"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.cfg.String())
		})
	}
}

func TestConfigClone(t *testing.T) {
	orig := Config{
		Voters:       quorum.JointConfig{set(1, 2, 3), set(1, 2, 4)},
		Learners:     set(5),
		LearnersNext: set(4),
		AutoLeave:    true,
	}
	c := orig.Clone()
	require.Equal(t, orig, c)

	c.Voters[0][9] = struct{}{}
	c.Voters[1][9] = struct{}{}
	c.Learners[9] = struct{}{}
	c.LearnersNext[9] = struct{}{}
	require.Equal(t, "voters=(1 2 3)&&(1 2 4) learners=(5) learners_next=(4) autoleave", orig.String())

	require.Equal(t, Config{}, (&Config{}).Clone(), "nil maps stay nil")
}

// TestConfigCloneMethodValue: Clone has a pointer receiver, so a method
// value taken from a Config clones the Config as it is when called, not a
// copy made when the method value was taken.
func TestConfigCloneMethodValue(t *testing.T) {
	c := Config{Voters: quorum.JointConfig{set(1), nil}}
	clone := c.Clone
	c.AutoLeave = true
	c.Learners = set(2)
	require.Equal(t, c, clone())

	var pt ProgressTracker
	ptClone := pt.Clone
	pt.Voters = quorum.JointConfig{set(3), nil}
	require.Equal(t, pt.Config, ptClone(), "ProgressTracker promotes Config.Clone")
}

func TestCommitted(t *testing.T) {
	tests := []struct {
		name    string
		cs      pb.ConfState
		matches map[uint64]uint64
		want    uint64
	}{
		{"no voters", pb.ConfState{}, nil, math.MaxUint64},
		{"singleton", pb.ConfState{Voters: []uint64{1}}, map[uint64]uint64{1: 8}, 8},
		{"three voters", pb.ConfState{Voters: []uint64{1, 2, 3}}, map[uint64]uint64{1: 8, 2: 5, 3: 2}, 5},
		{"learners do not count", pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4, 5}},
			map[uint64]uint64{1: 8, 4: 9, 5: 9}, 0},
		{"learners ahead change nothing", pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4, 5}},
			map[uint64]uint64{1: 8, 2: 3, 3: 1, 4: 9, 5: 9}, 3},
		{"joint outgoing holds back", pb.ConfState{Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3}},
			map[uint64]uint64{1: 9, 2: 5, 3: 1, 4: 9}, 5},
		{"joint incoming holds back", pb.ConfState{Voters: []uint64{1, 4, 5}, VotersOutgoing: []uint64{1, 2, 3}},
			map[uint64]uint64{1: 9, 2: 8, 3: 8, 4: 2, 5: 1}, 2},
		{"joint with demoted voter", pb.ConfState{
			Voters: []uint64{1, 2}, VotersOutgoing: []uint64{1, 2, 3}, LearnersNext: []uint64{3},
		}, map[uint64]uint64{1: 7, 2: 4, 3: 9}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := trackerForTest(t, tt.cs)
			setMatch(p, tt.matches)
			require.Equal(t, tt.want, p.Committed(), "%s\n%s", p.Config, p.Progress)
		})
	}
}

func TestQuorumActive(t *testing.T) {
	tests := []struct {
		name   string
		cs     pb.ConfState
		active []uint64
		want   bool
	}{
		{"singleton active", pb.ConfState{Voters: []uint64{1}}, []uint64{1}, true},
		{"singleton inactive", pb.ConfState{Voters: []uint64{1}}, nil, false},
		{"two of three", pb.ConfState{Voters: []uint64{1, 2, 3}}, []uint64{1, 3}, true},
		{"one of three", pb.ConfState{Voters: []uint64{1, 2, 3}}, []uint64{1}, false},
		{"learners do not count", pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4, 5}},
			[]uint64{1, 4, 5}, false},
		{"joint both halves", pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1, 4, 5}},
			[]uint64{1, 2, 4}, true},
		{"joint only incoming", pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1, 4, 5}},
			[]uint64{1, 2, 3}, false},
		{"joint only outgoing", pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1, 4, 5}},
			[]uint64{1, 4, 5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := trackerForTest(t, tt.cs)
			for _, id := range tt.active {
				p.Progress[id].RecentActive = true
			}
			require.Equal(t, tt.want, p.QuorumActive())
		})
	}
}

func TestTallyVotes(t *testing.T) {
	joint := pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1, 4, 5}, Learners: []uint64{6}}
	type vote struct {
		id      uint64
		granted bool
	}
	tests := []struct {
		name         string
		cs           pb.ConfState
		votes        []vote
		wantGranted  int
		wantRejected int
		want         quorum.VoteResult
	}{
		{"no votes", joint, nil, 0, 0, quorum.VotePending},
		{"self vote only", joint, []vote{{1, true}}, 1, 0, quorum.VotePending},
		{"incoming won outgoing pending", joint, []vote{{1, true}, {2, true}}, 2, 0, quorum.VotePending},
		{"both won", joint, []vote{{1, true}, {2, true}, {4, true}}, 3, 0, quorum.VoteWon},
		{"outgoing lost", joint, []vote{{1, true}, {2, true}, {4, false}, {5, false}}, 2, 2, quorum.VoteLost},
		{"learner vote ignored", joint, []vote{{1, true}, {2, true}, {6, true}}, 2, 0, quorum.VotePending},
		{"unknown node ignored", joint, []vote{{1, true}, {9, false}}, 1, 0, quorum.VotePending},
		{"first vote counts", joint, []vote{{1, true}, {2, false}, {2, true}, {3, true}}, 2, 1, quorum.VotePending},
		{"first rejection sticks", joint, []vote{{2, false}, {2, true}, {3, false}}, 0, 2, quorum.VoteLost},
		{"not joint won", pb.ConfState{Voters: []uint64{1, 2, 3}}, []vote{{1, true}, {3, true}}, 2, 0, quorum.VoteWon},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := trackerForTest(t, tt.cs)
			for _, v := range tt.votes {
				p.RecordVote(v.id, v.granted)
			}
			granted, rejected, result := p.TallyVotes()
			require.Equal(t, tt.wantGranted, granted, "granted")
			require.Equal(t, tt.wantRejected, rejected, "rejected")
			require.Equal(t, tt.want, result)
		})
	}
}

func TestResetVotes(t *testing.T) {
	p := trackerForTest(t, pb.ConfState{Voters: []uint64{1, 2, 3}})
	p.RecordVote(1, false)
	p.ResetVotes()
	p.RecordVote(1, true) // a new election: the earlier rejection is gone
	p.RecordVote(2, true)
	_, _, result := p.TallyVotes()
	require.Equal(t, quorum.VoteWon, result)

	p.ResetVotes()
	require.Nil(t, p.Votes, "between elections a group holds no vote map")

	var zero ProgressTracker
	zero.ResetVotes()
	zero.RecordVote(1, true)
	require.Equal(t, map[uint64]bool{1: true}, zero.Votes)
	require.Nil(t, MakeProgressTracker(8, 0).Votes)
}

func TestVisit(t *testing.T) {
	tests := []struct {
		name string
		cs   pb.ConfState
		want []uint64
	}{
		{"empty", pb.ConfState{}, nil},
		{"voters and learners", pb.ConfState{Voters: []uint64{7, 3, 5}, Learners: []uint64{4, 1}}, []uint64{1, 3, 4, 5, 7}},
		{"seven peers", pb.ConfState{Voters: []uint64{70, 10, 30, 60, 20, 50, 40}}, []uint64{10, 20, 30, 40, 50, 60, 70}},
		{"more than seven peers", pb.ConfState{Voters: []uint64{9, 8, 7, 6, 5, 4, 3, 2, 1}, Learners: []uint64{10}},
			[]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := trackerForTest(t, tt.cs)
			var got []uint64
			p.Visit(func(id uint64, pr *Progress) {
				require.Same(t, p.Progress[id], pr)
				got = append(got, id)
			})
			require.Equal(t, tt.want, got)
		})
	}
}

func TestConfStateRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cs   pb.ConfState
	}{
		{"empty gives nil slices", pb.ConfState{}},
		{"simple", pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}},
		{"joint", pb.ConfState{
			Voters:         []uint64{1, 2, 3},
			VotersOutgoing: []uint64{1, 2, 4},
			Learners:       []uint64{5},
			LearnersNext:   []uint64{4},
			AutoLeave:      true,
		}},
		{"joint leaving everyone", pb.ConfState{Voters: []uint64{7, 8}, VotersOutgoing: []uint64{1, 2, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := trackerForTest(t, tt.cs)
			require.Equal(t, tt.cs, p.ConfState())
		})
	}
}

func TestNodesAndSingleton(t *testing.T) {
	tests := []struct {
		name          string
		cs            pb.ConfState
		wantVoters    []uint64
		wantLearners  []uint64
		wantSingleton bool
	}{
		{"empty", pb.ConfState{}, nil, nil, false},
		{"singleton", pb.ConfState{Voters: []uint64{1}, Learners: []uint64{2}}, []uint64{1}, []uint64{2}, true},
		{"three", pb.ConfState{Voters: []uint64{3, 1, 2}}, []uint64{1, 2, 3}, nil, false},
		{"joint from one voter", pb.ConfState{Voters: []uint64{1}, VotersOutgoing: []uint64{2}},
			[]uint64{1, 2}, nil, false},
		{"joint with demotion", pb.ConfState{
			Voters: []uint64{1, 2}, VotersOutgoing: []uint64{1, 2, 3}, Learners: []uint64{5, 4}, LearnersNext: []uint64{3},
		}, []uint64{1, 2, 3}, []uint64{4, 5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := trackerForTest(t, tt.cs)
			require.Equal(t, tt.wantVoters, p.VoterNodes())
			require.Equal(t, tt.wantLearners, p.LearnerNodes())
			require.Equal(t, tt.wantSingleton, p.IsSingleton())
		})
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	p := trackerForTest(t, pb.ConfState{
		Voters: []uint64{1, 2, 3, 4, 5}, VotersOutgoing: []uint64{3, 4, 5, 6, 7},
	})
	setMatch(p, map[uint64]uint64{1: 10, 2: 9, 3: 8, 4: 7, 5: 6, 6: 5, 7: 4})
	var sink uint64
	visit := func(id uint64, pr *Progress) { sink += pr.Match }
	require.Zero(t, testing.AllocsPerRun(100, func() { sink += p.Committed() }), "Committed")
	require.Zero(t, testing.AllocsPerRun(100, func() { p.Visit(visit) }), "Visit")
	_ = sink
}

func BenchmarkProgressTrackerCommitted(b *testing.B) {
	for _, bc := range []struct {
		name string
		cs   pb.ConfState
	}{
		{"voters=3", pb.ConfState{Voters: []uint64{1, 2, 3}}},
		{"voters=5+learners=2", pb.ConfState{Voters: []uint64{1, 2, 3, 4, 5}, Learners: []uint64{6, 7}}},
		{"joint=3&&3", pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{2, 3, 4}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := trackerForTest(b, bc.cs)
			for id, pr := range p.Progress {
				pr.MaybeUpdate(100 + id)
			}
			b.ReportAllocs()
			var sink uint64
			for b.Loop() {
				sink += p.Committed()
			}
			_ = sink
		})
	}
}

func BenchmarkProgressTrackerVisit(b *testing.B) {
	p := trackerForTest(b, pb.ConfState{Voters: []uint64{5, 3, 1, 4, 2}, Learners: []uint64{7, 6}})
	b.ReportAllocs()
	var sink uint64
	for b.Loop() {
		p.Visit(func(id uint64, pr *Progress) { sink += id })
	}
	_ = sink
}

// TestOrderedPeersFollowProgress edits a tracker's Progress map and voters
// behind its back (peers added, removed, a peer's *Progress replaced, the
// whole map replaced, a copy of the tracker edited) and checks after every
// step that Visit sees exactly the map's peers in ID order and that
// Committed agrees with the quorum package over the map.
func TestOrderedPeersFollowProgress(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	pt := MakeProgressTracker(4, 0)
	p := &pt
	newPr := func() *Progress {
		pr := &Progress{Next: 1}
		pr.MaybeUpdate(uint64(rnd.IntN(50)))
		return pr
	}
	for step := 0; step < 5000; step++ {
		id := uint64(1 + rnd.IntN(10))
		var op string
		switch rnd.IntN(7) {
		case 0:
			op = "add"
			p.Progress[id] = newPr()
		case 1:
			op = "remove"
			delete(p.Progress, id)
		case 2:
			op = "remove and add another"
			for old := range p.Progress {
				delete(p.Progress, old)
				break
			}
			p.Progress[id] = newPr()
		case 3:
			op = "replace the map"
			m := ProgressMap{}
			for old := range p.Progress {
				m[old] = newPr()
			}
			p.Progress = m
		case 4:
			op = "edit a copy"
			cp := *p
			cp.Progress = ProgressMap{}
			for old, pr := range p.Progress {
				cp.Progress[old] = pr
			}
			cp.Progress[id] = newPr()
			cp.Visit(func(uint64, *Progress) {})
		case 5:
			op = "toggle voter"
			half := rnd.IntN(2)
			if p.Voters[half] == nil {
				p.Voters[half] = quorum.MajorityConfig{}
			}
			if _, ok := p.Voters[half][id]; ok {
				delete(p.Voters[half], id)
			} else {
				p.Voters[half][id] = struct{}{}
			}
		case 6:
			op = "ack"
			if pr := p.Progress[id]; pr != nil {
				pr.MaybeUpdate(pr.Match + uint64(rnd.IntN(5)))
			}
		}
		var want []uint64
		for id := range p.Progress {
			want = append(want, id)
		}
		slices.Sort(want)
		var got []uint64
		p.Visit(func(id uint64, pr *Progress) {
			require.Same(t, p.Progress[id], pr, "step %d (%s): peer %d", step, op, id)
			got = append(got, id)
		})
		require.Equal(t, want, got, "step %d (%s)", step, op)
		require.Equal(t, uint64(p.Voters.CommittedIndex(matchAckIndexer(p.Progress))), p.Committed(),
			"step %d (%s): %s\n%s", step, op, p.Config, p.Progress)
	}
}
