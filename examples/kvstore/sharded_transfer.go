package main

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/raftcore/raft"
)

// Leader transfer with --shards above 1: POST /cluster/leader moves the
// leadership of the shards the member that takes it leads, and answers
// with a report per shard as a membership change does
// (sharded_membership.go).

// handleTransfer moves the leadership of every shard this member leads to
// the member the body names, or, without one, spreads it over the shard's
// other voters (draining this member: say, before stopping it). Shards led
// elsewhere are not touched: ask their leaders (GET /cluster lists them).
func (m *shardedMember) handleTransfer(w http.ResponseWriter, r *http.Request) {
	req, ok := readTransfer(w, r, m.removed.Load())
	if !ok {
		return
	}
	if req.ID != 0 && !m.isVoterSomewhere(req.ID) {
		writeError(w, http.StatusNotFound, "unknown_member", fmt.Sprintf("member %d is a voter of no shard", req.ID))
		return
	}
	var outs []shardOutcome
	moves := map[uint64]uint64{} // shard -> transferee
	if !m.call(r.Context(), func() { outs = m.startTransfers(req.ID, moves) }) {
		writeFailure(w, m.stoppedErr())
		return
	}
	deadline := time.Now().Add(m.cfg.RequestTimeout)
	for len(moves) > 0 && time.Now().Before(deadline) {
		st := m.status.Load()
		for sh, to := range moves {
			if st.Groups[sh-1].Lead == to {
				outs = append(outs, shardOutcome{Shard: sh, Result: resultApplied, Leader: to})
				delete(moves, sh)
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(m.cfg.TickInterval):
		}
	}
	for sh, to := range moves {
		outs = append(outs, failedOutcome(sh, fmt.Errorf("%w: leadership of shard %d did not move to member %d", errTimeout, sh, to)))
	}
	slices.SortFunc(outs, func(a, b shardOutcome) int { return int(a.Shard) - int(b.Shard) })
	writeShardReport(w, r, http.StatusOK, "moving leadership", outs)
}

func (m *shardedMember) isVoterSomewhere(id uint64) bool {
	for _, s := range m.shards {
		if slices.Contains(s.sm.confState().Voters, id) {
			return true
		}
	}
	return false
}

// startTransfers asks every shard led here to transfer its leadership to
// member to (0: the shard's other voters in turn), on the loop goroutine.
// It records the transfers started in moves and returns the shards that
// need none or cannot make it.
func (m *shardedMember) startTransfers(to uint64, moves map[uint64]uint64) []shardOutcome {
	var outs []shardOutcome
	turn := 0
	for _, s := range m.shards {
		if s.state != raft.StateLeader || s.removed {
			continue
		}
		cs := s.sm.confState()
		target := to
		if target == 0 {
			others := slices.DeleteFunc(slices.Clone(cs.Voters), func(id uint64) bool { return id == m.cfg.ID })
			if len(others) > 0 {
				target = others[turn%len(others)]
				turn++
			}
		}
		switch {
		case target == m.cfg.ID:
			outs = append(outs, shardOutcome{Shard: s.id, Result: resultAlready, Leader: target})
		case target == 0:
			outs = append(outs, failedOutcome(s.id, &shardRefusal{http.StatusConflict, "not_a_voter",
				fmt.Sprintf("shard %d has no other voter to take its leadership", s.id)}))
		case !slices.Contains(cs.Voters, target):
			outs = append(outs, failedOutcome(s.id, &shardRefusal{http.StatusConflict, "not_a_voter",
				fmt.Sprintf("member %d is not a voter of shard %d (voters %v)", target, s.id, cs.Voters)}))
		default:
			if err := m.host.TransferLeader(s.id, target); err != nil {
				outs = append(outs, failedOutcome(s.id, err))
				continue
			}
			moves[s.id] = target
		}
	}
	return outs
}
