package confchange

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

func ccs(t *testing.T, s string) []pb.ConfChangeSingle {
	t.Helper()
	out, err := pb.ConfChangesFromString(s)
	require.NoError(t, err)
	return out
}

// trackerFrom restores a tracker from a ConfState.
func trackerFrom(t *testing.T, cs pb.ConfState) tracker.ProgressTracker {
	t.Helper()
	trk := tracker.MakeProgressTracker(10, 0)
	cfg, prs, err := Restore(Changer{Tracker: trk, LastIndex: 10}, cs)
	require.NoError(t, err)
	trk.Config, trk.Progress = cfg, prs
	return trk
}

type op int

const (
	opSimple op = iota
	opEnter
	opEnterAuto
	opLeave
)

func TestChanges(t *testing.T) {
	tests := []struct {
		name    string
		start   pb.ConfState
		op      op
		changes string
		want    pb.ConfState
		wantErr error
	}{
		{name: "add voter", start: pb.ConfState{Voters: []uint64{1}}, changes: "v2", want: pb.ConfState{Voters: []uint64{1, 2}}},
		{name: "add learner", start: pb.ConfState{Voters: []uint64{1}}, changes: "l2", want: pb.ConfState{Voters: []uint64{1}, Learners: []uint64{2}}},
		{name: "promote learner", start: pb.ConfState{Voters: []uint64{1}, Learners: []uint64{2}}, changes: "v2", want: pb.ConfState{Voters: []uint64{1, 2}}},
		{name: "demote voter", start: pb.ConfState{Voters: []uint64{1, 2}}, changes: "l2", want: pb.ConfState{Voters: []uint64{1}, Learners: []uint64{2}}},
		{name: "remove voter", start: pb.ConfState{Voters: []uint64{1, 2}}, changes: "r2", want: pb.ConfState{Voters: []uint64{1}}},
		{name: "remove learner", start: pb.ConfState{Voters: []uint64{1}, Learners: []uint64{2}}, changes: "r2", want: pb.ConfState{Voters: []uint64{1}}},
		{name: "remove unknown is a no-op", start: pb.ConfState{Voters: []uint64{1}}, changes: "r9", want: pb.ConfState{Voters: []uint64{1}}},
		{name: "update changes nothing", start: pb.ConfState{Voters: []uint64{1}}, changes: "u1", want: pb.ConfState{Voters: []uint64{1}}},
		{name: "learners do not count as voter changes", start: pb.ConfState{Voters: []uint64{1}}, changes: "v2 l3 l4", want: pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3, 4}}},
		{name: "two voter changes need joint", start: pb.ConfState{Voters: []uint64{1, 2, 3}}, changes: "v4 r3", wantErr: ErrTooManyVoterChanges},
		{name: "simple while joint", start: pb.ConfState{Voters: []uint64{1, 4}, VotersOutgoing: []uint64{1, 3}}, changes: "v5", wantErr: ErrJoint},
		{name: "remove the last voter", start: pb.ConfState{Voters: []uint64{1}}, changes: "r1", wantErr: ErrNoVoters},
		{
			name: "enter joint replacing a voter", start: pb.ConfState{Voters: []uint64{1, 2, 3}}, op: opEnter, changes: "v4 r3",
			want: pb.ConfState{Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3}},
		},
		{
			name: "enter joint with auto leave", start: pb.ConfState{Voters: []uint64{1, 2, 3}}, op: opEnterAuto, changes: "v4 r3",
			want: pb.ConfState{Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3}, AutoLeave: true},
		},
		{
			name: "enter joint demoting a voter", start: pb.ConfState{Voters: []uint64{1, 2, 3}}, op: opEnter, changes: "l3",
			want: pb.ConfState{Voters: []uint64{1, 2}, VotersOutgoing: []uint64{1, 2, 3}, LearnersNext: []uint64{3}},
		},
		{name: "enter joint while joint", start: pb.ConfState{Voters: []uint64{1, 4}, VotersOutgoing: []uint64{1, 3}}, op: opEnter, changes: "v5", wantErr: ErrJoint},
		{name: "enter joint from an empty config", start: pb.ConfState{}, op: opEnter, changes: "v1", wantErr: ErrNoVoters},
		{name: "enter joint removing every incoming voter", start: pb.ConfState{Voters: []uint64{1, 2}}, op: opEnter, changes: "r1 r2", wantErr: ErrNoVoters},
		{
			name:  "leave joint",
			start: pb.ConfState{Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3, 5}, LearnersNext: []uint64{5}, AutoLeave: true},
			op:    opLeave,
			want:  pb.ConfState{Voters: []uint64{1, 2, 4}, Learners: []uint64{5}},
		},
		{name: "leave when not joint", start: pb.ConfState{Voters: []uint64{1}}, op: opLeave, wantErr: ErrNotJoint},
		{name: "unknown change type", start: pb.ConfState{Voters: []uint64{1}}, changes: "", wantErr: ErrUnknownChange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trk := trackerFrom(t, tt.start)
			before := trk.ConfState()
			c := Changer{Tracker: trk, LastIndex: 20}
			changes := ccs(t, tt.changes)
			if tt.wantErr == ErrUnknownChange {
				changes = []pb.ConfChangeSingle{{Type: pb.ConfChangeType(42), NodeID: 2}}
			}
			var cfg tracker.Config
			var prs tracker.ProgressMap
			var err error
			switch tt.op {
			case opSimple:
				cfg, prs, err = c.Simple(changes...)
			case opEnter:
				cfg, prs, err = c.EnterJoint(false, changes...)
			case opEnterAuto:
				cfg, prs, err = c.EnterJoint(true, changes...)
			case opLeave:
				cfg, prs, err = c.LeaveJoint()
			}
			require.Equal(t, before, trk.ConfState(), "the input tracker must not change")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			got := tracker.ProgressTracker{Config: cfg, Progress: prs}
			require.NoError(t, got.ConfState().Equivalent(tt.want), "got %s", cfg)
			require.NoError(t, check(cfg, prs))
		})
	}
}

// TestProgressOfNewAndKeptNodes: new nodes start after the last index,
// existing ones keep their progress, removed ones lose it, and the input's
// Progress values are not shared with the result.
func TestProgressOfNewAndKeptNodes(t *testing.T) {
	trk := trackerFrom(t, pb.ConfState{Voters: []uint64{1, 2}})
	trk.Progress[1].Match, trk.Progress[1].Next = 7, 8
	_, prs, err := Changer{Tracker: trk, LastIndex: 30}.Simple(ccs(t, "l3 r2")...)
	require.NoError(t, err)
	require.Equal(t, uint64(7), prs[1].Match)
	require.Equal(t, uint64(31), prs[3].Next)
	require.True(t, prs[3].IsLearner)
	require.NotContains(t, prs, uint64(2))
	prs[1].Match = 99
	require.Equal(t, uint64(7), trk.Progress[1].Match, "result must not alias the input's progress")
}

func TestRestore(t *testing.T) {
	tests := []struct {
		name    string
		cs      pb.ConfState
		wantErr bool
		wantIs  error
	}{
		{name: "empty", cs: pb.ConfState{}},
		{name: "voters", cs: pb.ConfState{Voters: []uint64{1, 2, 3}}},
		{name: "voters and learners", cs: pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}},
		{name: "joint", cs: pb.ConfState{Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3}, Learners: []uint64{6}, LearnersNext: []uint64{3}, AutoLeave: true}},
		{name: "joint with disjoint halves", cs: pb.ConfState{Voters: []uint64{4, 5}, VotersOutgoing: []uint64{1, 2, 3}}},
		{name: "voter and learner at once", cs: pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{2}}, wantErr: true},
		{name: "learner-next not outgoing", cs: pb.ConfState{Voters: []uint64{1}, VotersOutgoing: []uint64{1}, LearnersNext: []uint64{2}}, wantErr: true},
		// As etcd raft's Restore: members but no voter is an error.
		{name: "joint without incoming voters", cs: pb.ConfState{VotersOutgoing: []uint64{1}}, wantErr: true, wantIs: ErrNoVoters},
		{name: "joint without incoming voters, with a learner-next", cs: pb.ConfState{VotersOutgoing: []uint64{1, 2}, LearnersNext: []uint64{2}}, wantErr: true, wantIs: ErrNoVoters},
		{name: "learners without voters", cs: pb.ConfState{Learners: []uint64{1, 2}}, wantErr: true, wantIs: ErrNoVoters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, prs, err := Restore(Changer{Tracker: tracker.MakeProgressTracker(5, 0), LastIndex: 3}, tt.cs)
			if tt.wantErr {
				require.Error(t, err)
				if tt.wantIs != nil {
					require.ErrorIs(t, err, tt.wantIs)
				}
				return
			}
			require.NoError(t, err)
			got := tracker.ProgressTracker{Config: cfg, Progress: prs}
			require.NoError(t, got.ConfState().Equivalent(tt.cs))
		})
	}
}

// TestRandomChangeSequences applies random change batches and checks the
// configuration invariants after every accepted step, that leaving a joint
// configuration yields exactly its incoming voters, and that every reached
// configuration survives a ConfState round trip.
func TestRandomChangeSequences(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	kinds := []pb.ConfChangeType{pb.ConfChangeAddNode, pb.ConfChangeAddLearnerNode, pb.ConfChangeRemoveNode, pb.ConfChangeUpdateNode}
	accepted := 0
	for run := 0; run < 200; run++ {
		trk := trackerFrom(t, pb.ConfState{Voters: []uint64{1, 2, 3}})
		for step := 0; step < 30; step++ {
			var batch []pb.ConfChangeSingle
			for i := rng.IntN(4); i >= 0; i-- {
				batch = append(batch, pb.ConfChangeSingle{Type: kinds[rng.IntN(len(kinds))], NodeID: uint64(1 + rng.IntN(7))})
			}
			c := Changer{Tracker: trk, LastIndex: uint64(step)}
			var cfg tracker.Config
			var prs tracker.ProgressMap
			var err error
			wasJoint := joint(trk.Config)
			incoming := trk.Voters[0].Slice()
			switch rng.IntN(3) {
			case 0:
				cfg, prs, err = c.Simple(batch...)
			case 1:
				cfg, prs, err = c.EnterJoint(rng.IntN(2) == 0, batch...)
			default:
				cfg, prs, err = c.LeaveJoint()
			}
			if err != nil {
				continue
			}
			accepted++
			require.NoError(t, check(cfg, prs))
			if wasJoint {
				require.Equal(t, incoming, cfg.Voters[0].Slice(), "leaving keeps exactly the incoming voters")
				require.Empty(t, cfg.Voters[1])
			}
			trk.Config, trk.Progress = cfg, prs
			cs := trk.ConfState()
			rcfg, rprs, err := Restore(Changer{Tracker: trk, LastIndex: 1}, cs)
			require.NoError(t, err, "restoring %s", cfg)
			restored := tracker.ProgressTracker{Config: rcfg, Progress: rprs}
			require.NoError(t, restored.ConfState().Equivalent(cs))
			require.True(t, slices.Equal(cfg.Voters[0].Slice(), rcfg.Voters[0].Slice()))
		}
	}
	require.Greater(t, accepted, 1000, "the generator should reach many configurations")
}

// A configuration outside a joint change, without learners, keeps no empty
// sets: every group holds its configuration for its whole life.
func TestResultKeepsNoEmptySets(t *testing.T) {
	trk := trackerFrom(t, pb.ConfState{Voters: []uint64{1, 2, 3}})
	require.Nil(t, trk.Voters[1])
	require.Nil(t, trk.Learners)
	require.Nil(t, trk.LearnersNext)

	cfg, _, err := Changer{Tracker: trk, LastIndex: 10}.Simple(ccs(t, "l4")...)
	require.NoError(t, err)
	require.Len(t, cfg.Learners, 1)
	require.Nil(t, cfg.Voters[1])
	require.Nil(t, cfg.LearnersNext)
}
