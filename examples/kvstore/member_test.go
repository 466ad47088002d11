package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft"
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
			m := &member{cfg: memberConfig{ID: 3}, log: slog.New(slog.DiscardHandler), metrics: newMetrics(), requests: newRequests()}
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

// A membership change the leader refuses (another still being applied) is
// a 409 with the library's reason; a change no leader could take is a 503.
func TestConfChangeFailureAnswers(t *testing.T) {
	for _, tt := range []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
	}{
		{"refused", fmt.Errorf("raft says: %w", raft.ErrProposalConfChangeRefused), http.StatusConflict, "conf_change_refused"},
		{"no leader", raft.ErrProposalNoLeader, http.StatusServiceUnavailable, "no_leader"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeFailure(rec, confChangeFailure(tt.err))
			require.Equal(t, tt.wantStatus, rec.Code)
			var e apiError
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
			require.Equal(t, tt.wantCode, e.Code)
			require.Contains(t, e.Error, tt.err.Error())
		})
	}
}
