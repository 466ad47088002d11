package main

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// TestNoteRemoval: a configuration without this member is a removal only
// after one that held it (replaying the bootstrap entries, or the log up
// to a joining member's addition, is not), joint ones included.
func TestNoteRemoval(t *testing.T) {
	tests := []struct {
		name    string
		configs []pb.ConfState
		removed bool
	}{
		{"bootstrap replay", []pb.ConfState{{Voters: []uint64{1}}, {Voters: []uint64{1, 2}}, {Voters: []uint64{1, 2, 3}}}, false},
		{"joining learner", []pb.ConfState{{Voters: []uint64{1, 2}}, {Voters: []uint64{1, 2}, Learners: []uint64{3}}}, false},
		{"removed", []pb.ConfState{{Voters: []uint64{1, 2, 3}}, {Voters: []uint64{1, 2}}}, true},
		{"learner removed", []pb.ConfState{{Voters: []uint64{1}, Learners: []uint64{3}}, {Voters: []uint64{1}}}, true},
		{"joint, leaving", []pb.ConfState{{Voters: []uint64{1, 2, 3}}, {Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3}}}, false},
		{"joint, left", []pb.ConfState{{Voters: []uint64{1, 2, 3}}, {Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3}}, {Voters: []uint64{1, 2, 4}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &member{cfg: memberConfig{ID: 3}, log: slog.New(slog.DiscardHandler), metrics: newMetrics(),
				waiters: map[string]*waiter{}, reads: map[string]*waiter{}}
			w := m.newWaiter()
			m.waiters["in-flight"] = w
			for _, cs := range tt.configs {
				m.noteRemoval(cs)
			}
			require.Equal(t, tt.removed, m.removed.Load())
			if tt.removed {
				require.ErrorIs(t, <-w.done, errRemoved, "a request in flight is answered")
			} else {
				require.Len(t, m.waiters, 1)
			}
		})
	}
}
