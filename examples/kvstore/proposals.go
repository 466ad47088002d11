package main

import (
	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// How a write (or membership change) learns its fate. The library says
// where a proposal went (raft.ProposalResult), so a write waits for the
// entry at a known (index, term) wherever it can, and is answered as soon
// as this member applies that index:
//
//   - proposed on the leader: it waits at the (index, term) the leader
//     appended it at (atIndex);
//   - forwarded by a follower: it waits under its ForwardID (forwarded)
//     until the follower sees its entry arrive from a leader, then at that
//     (index, term); if that is not seen (the library gives up after a few
//     election timeouts: the proposal may have been dropped, or be still
//     on its way), it waits for its request id in the applied commands
//     (waiters), as when nothing is known.
//
// The entry applied at a waited-for index decides: the same term is the
// write (200); another term means the write's entry was replaced after a
// leader change, and it will never be applied (503 proposal_lost: retry).
// A write that waits at an index is not failed when the leader changes:
// its answer is certain once the index is applied, leader change or not.

// track records where a write just proposed went, for w to be answered.
func (m *member) track(w *waiter, reqID string, res raft.ProposalResult) {
	w.reqID, w.lead = reqID, m.lead
	switch {
	case !res.Forwarded:
		m.waitAt(w, res.Index, res.Term)
	case res.ForwardID != 0:
		m.forwarded[res.ForwardID] = w
	default:
		m.waiters[reqID] = w
	}
}

func (m *member) waitAt(w *waiter, index, term uint64) {
	w.term = term
	m.atIndex[index] = append(m.atIndex[index], w)
}

// takeForwardedOutcomes moves the forwarded writes whose place the library
// learned to atIndex, and those it gave up on to waiters (or answers them
// leader_changed if the leader they were forwarded to is gone, as before
// the library could tell).
func (m *member) takeForwardedOutcomes() {
	for _, o := range m.rn.ForwardedOutcomes() {
		w, ok := m.forwarded[o.ForwardID]
		if !ok {
			continue // answered already (timed out)
		}
		delete(m.forwarded, o.ForwardID)
		switch {
		case !o.Unknown && o.Index > m.sm.appliedIndex():
			m.waitAt(w, o.Index, o.Term)
		case w.lead != m.lead:
			w.finish(errLeaderChanged)
		default:
			m.waiters[w.reqID] = w
		}
	}
}

// answerAt answers the writes waiting at e's index, now applied: those of
// e's term get res and err (e is their entry), the others were replaced.
func (m *member) answerAt(e pb.Entry, res applyResult, err error) {
	ws, ok := m.atIndex[e.Index]
	if !ok {
		return
	}
	delete(m.atIndex, e.Index)
	for _, w := range ws {
		if w.term == e.Term {
			w.result = res
			w.finish(err)
		} else {
			m.metrics.proposalsLost.Inc()
			w.finish(errProposalLost)
		}
	}
}

// failCoveredBySnapshot answers the writes waiting at an index a snapshot
// just covered: which entry was there is not known here.
func (m *member) failCoveredBySnapshot(index uint64) {
	for i, ws := range m.atIndex {
		if i <= index {
			for _, w := range ws {
				w.finish(errSnapshotted)
			}
			delete(m.atIndex, i)
		}
	}
}
