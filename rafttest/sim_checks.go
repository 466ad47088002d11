package rafttest

import (
	"fmt"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// entryRecord is what the first node to apply an index applied there.
type entryRecord struct {
	term uint64
	data string
	// seenTerm is the highest term any node had when the entry was first
	// applied: the term in which it was committed is no later, so every
	// leader of a later term must hold it (Leader Completeness).
	seenTerm uint64
}

// leadership is who led a term: a node, in one of its incarnations.
type leadership struct {
	id          uint64
	incarnation int
}

// newLeader records n as the leader of its term and checks that it is the
// only one and that its log holds every committed entry (Leader
// Completeness).
func (s *Sim) newLeader(n *simNode) {
	st := n.rn.BasicStatus()
	if prev, ok := s.leaders[st.Term]; ok {
		if prev.id != n.id {
			s.violate("two leaders in term %d: %d and %d", st.Term, prev.id, n.id)
			return
		}
		if prev.incarnation != n.incarnation {
			// Its first leadership was lost in a crash: two leaderships
			// of one term may put different entries under one index and
			// term (Log Matching breaks).
			s.violate("node %d leads term %d a second time, after a restart", n.id, st.Term)
			return
		}
	}
	s.leaders[st.Term] = leadership{id: n.id, incarnation: n.incarnation}
	s.event("node %d leads term %d", n.id, st.Term)
	first, _ := n.storage.FirstIndex()
	last, _ := n.storage.LastIndex()
	for i := first; i <= s.lastIndex; i++ {
		rec, ok := s.committed[i]
		if !ok || rec.seenTerm >= st.Term {
			// A leader of an older term than the commit's may lack it.
			continue
		}
		if i > last {
			s.violate("leader %d of term %d lacks committed entry %d (last index %d)", n.id, st.Term, i, last)
			return
		}
		if t, err := n.storage.Term(i); err == nil && t != rec.term {
			s.violate("leader %d of term %d has term %d at committed index %d (committed term %d)", n.id, st.Term, t, i, rec.term)
			return
		}
	}
}

// checkHardState checks a hard state about to be persisted against the
// last one: term and commit never go back, a vote is never changed
// within a term.
func (s *Sim) checkHardState(n *simNode, hs pb.HardState) {
	if v := hardStateRegression(n.id, n.persisted, hs); v != "" {
		s.violate("%s", v)
	}
}

// hardStateRegression describes what is wrong with node id persisting hs
// after prev, or returns "".
func hardStateRegression(id uint64, prev, hs pb.HardState) string {
	switch {
	case hs.Term < prev.Term:
		return fmt.Sprintf("node %d: persisted term goes back from %d to %d", id, prev.Term, hs.Term)
	case hs.Term == prev.Term && prev.Vote != raft.None && hs.Vote != prev.Vote:
		return fmt.Sprintf("node %d: vote changed within term %d from %d to %d", id, hs.Term, prev.Vote, hs.Vote)
	case hs.Commit < prev.Commit:
		return fmt.Sprintf("node %d: persisted commit goes back from %d to %d", id, prev.Commit, hs.Commit)
	}
	return ""
}

// checkNode checks n's leader and commit index after a step.
func (s *Sim) checkNode(n *simNode) {
	if n.rn == nil {
		return
	}
	st := n.rn.BasicStatus()
	s.maxTerm = max(s.maxTerm, st.Term)
	if st.RaftState == raft.StateLeader {
		if prev, ok := s.leaders[st.Term]; ok && prev.id != n.id {
			s.violate("two leaders in term %d: %d and %d", st.Term, prev.id, n.id)
		}
		if _, ok := s.leaders[st.Term]; !ok {
			s.leaders[st.Term] = leadership{id: n.id, incarnation: n.incarnation}
		}
	}
	if st.Commit < n.commit {
		s.violate("node %d: commit went back from %d to %d", n.id, n.commit, st.Commit)
	}
	n.commit = max(n.commit, st.Commit)
	if st.Applied < n.sm.Applied && st.Applied != 0 {
		s.violate("node %d: reports applied %d below its state machine's %d", n.id, st.Applied, n.sm.Applied)
	}
}

// checkTick checks, at the end of a tick, that the recent committed
// entries of every running node are the ones that were applied.
func (s *Sim) checkTick() {
	for _, n := range s.running() {
		first, _ := n.storage.FirstIndex()
		// What the storage itself claims committed: with Async the node may
		// know more than it has written yet.
		hi := min(n.persisted.Commit, s.lastIndex)
		lo := max(first, hi-min(hi, 64))
		for i := lo; i <= hi && i > 0; i++ {
			rec, ok := s.committed[i]
			if !ok {
				continue
			}
			if t, err := n.storage.Term(i); err == nil && t != rec.term {
				s.violate("node %d holds term %d at committed index %d (committed term %d)", n.id, t, i, rec.term)
				return
			}
		}
	}
}
