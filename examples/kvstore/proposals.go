package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// requests are the writes, conf changes and reads waiting for their
// answers, of one Raft group (the member's, or a shard's); owned by the
// loop goroutine. A write or conf change waits in one of atIndex,
// forwarded or waiters (see track).
type requests struct {
	atIndex   map[uint64][]*waiter // by the index its entry was appended at (waiter.term its term)
	forwarded map[uint64]*waiter   // forwarded to the leader, by ForwardID: where it went is not known yet
	waiters   map[string]*waiter   // by request id: where it went is not known
	reads     map[string]*waiter   // reads waiting for their read state
	indexed   []*waiter            // reads waiting for the applied index
}

func newRequests() requests {
	return requests{atIndex: map[uint64][]*waiter{}, forwarded: map[uint64]*waiter{}, waiters: map[string]*waiter{}, reads: map[string]*waiter{}}
}

// track records where a write just proposed went, for w to be answered;
// lead is the group's leader now.
func (q *requests) track(w *waiter, reqID string, res raft.ProposalResult, lead uint64) {
	w.reqID, w.lead = reqID, lead
	switch {
	case !res.Forwarded:
		q.waitAt(w, res.Index, res.Term)
	case res.ForwardID != 0:
		q.forwarded[res.ForwardID] = w
	default:
		q.waiters[reqID] = w
	}
}

func (q *requests) waitAt(w *waiter, index, term uint64) {
	w.term = term
	q.atIndex[index] = append(q.atIndex[index], w)
}

// takeForwardedOutcomes moves the forwarded writes whose place the library
// learned to atIndex, and those it gave up on to waiters (or answers them
// leader_changed if the leader they were forwarded to is gone, as before
// the library could tell); applied is the group's applied index, lead its
// leader now.
func (q *requests) takeForwardedOutcomes(outcomes []raft.ForwardedOutcome, applied, lead uint64) {
	for _, o := range outcomes {
		w, ok := q.forwarded[o.ForwardID]
		if !ok {
			continue // answered already (timed out)
		}
		delete(q.forwarded, o.ForwardID)
		switch {
		case !o.Unknown && o.Index > applied:
			q.waitAt(w, o.Index, o.Term)
		case w.lead != lead:
			w.finish(errLeaderChanged)
		default:
			q.waiters[w.reqID] = w
		}
	}
}

// answerAt answers the writes waiting at e's index, now applied: those of
// e's term get res and err (e is their entry), the others were replaced
// (counted in lost).
func (q *requests) answerAt(e pb.Entry, res applyResult, err error, lost prometheus.Counter) {
	ws, ok := q.atIndex[e.Index]
	if !ok {
		return
	}
	delete(q.atIndex, e.Index)
	for _, w := range ws {
		if w.term == e.Term {
			w.result = res
			w.finish(err)
		} else {
			lost.Inc()
			w.finish(errProposalLost)
		}
	}
}

// answerID answers the write or conf change waiting under request id, if
// any, with res and err.
func (q *requests) answerID(id string, res applyResult, err error) {
	if w, ok := q.waiters[id]; ok && id != "" {
		delete(q.waiters, id)
		w.result = res
		w.finish(err)
	}
}

// failCoveredBySnapshot answers the writes waiting at an index a snapshot
// just covered: which entry was there is not known here.
func (q *requests) failCoveredBySnapshot(index uint64) {
	for i, ws := range q.atIndex {
		if i <= index {
			for _, w := range ws {
				w.finish(errSnapshotted)
			}
			delete(q.atIndex, i)
		}
	}
}

// expire fails the requests whose deadline passed (their entries may still
// be applied later; nobody waits for them any more).
func (q *requests) expire(now time.Time) {
	for id, w := range q.waiters {
		if now.After(w.deadline) {
			delete(q.waiters, id)
			w.finish(errTimeout)
		}
	}
	for id, w := range q.forwarded {
		if now.After(w.deadline) {
			delete(q.forwarded, id)
			w.finish(errTimeout)
		}
	}
	for index, ws := range q.atIndex {
		kept := ws[:0]
		for _, w := range ws {
			if now.After(w.deadline) {
				w.finish(errTimeout)
			} else {
				kept = append(kept, w)
			}
		}
		if len(kept) == 0 {
			delete(q.atIndex, index)
		} else {
			q.atIndex[index] = kept
		}
	}
	for id, w := range q.reads {
		if now.After(w.deadline) {
			delete(q.reads, id)
			w.finish(errTimeout)
		}
	}
	kept := q.indexed[:0]
	for _, w := range q.indexed {
		if now.After(w.deadline) {
			w.finish(errTimeout)
		} else {
			kept = append(kept, w)
		}
	}
	clear(q.indexed[len(kept):])
	q.indexed = kept
}

// failAll fails every request.
func (q *requests) failAll(err error) {
	for _, w := range q.forwarded {
		w.finish(err)
	}
	for _, ws := range q.atIndex {
		for _, w := range ws {
			w.finish(err)
		}
	}
	clear(q.forwarded)
	clear(q.atIndex)
	q.failUntracked(err)
}

// failUntracked fails the writes whose place in the log is not known and
// every read.
func (q *requests) failUntracked(err error) {
	for _, w := range q.waiters {
		w.finish(err)
	}
	for _, w := range q.reads {
		w.finish(err)
	}
	for _, w := range q.indexed {
		w.finish(err)
	}
	clear(q.waiters)
	clear(q.reads)
	q.indexed = q.indexed[:0]
}
