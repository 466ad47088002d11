package rafttest

import (
	"errors"
	"fmt"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// simMsg is a message in flight, delivered at tick due.
type simMsg struct {
	m   pb.Message
	due int64
}

func (s *Sim) repartition() {
	s.blocked = map[link]bool{}
	ids := make([]uint64, len(s.nodes))
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	switch s.rnd.IntN(4) {
	case 0:
		s.event("network healed")
	case 1:
		s.rnd.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		k := 1 + s.rnd.IntN(len(ids)-1)
		a, b := ids[:k], ids[k:]
		for _, x := range a {
			for _, y := range b {
				s.blocked[link{x, y}] = true
				s.blocked[link{y, x}] = true
			}
		}
		s.event("partition %v | %v", a, b)
	case 2:
		x := ids[s.rnd.IntN(len(ids))]
		for _, y := range ids {
			if y != x {
				s.blocked[link{x, y}] = true
				s.blocked[link{y, x}] = true
			}
		}
		s.event("node %d isolated", x)
	case 3:
		var cuts []string
		for i := 0; i < 1+s.rnd.IntN(len(ids)); i++ {
			x, y := ids[s.rnd.IntN(len(ids))], ids[s.rnd.IntN(len(ids))]
			if x != y {
				s.blocked[link{x, y}] = true
				cuts = append(cuts, fmt.Sprintf("%d->%d", x, y))
			}
		}
		s.event("one-way cuts %v", cuts)
	}
}

// deliverDue delivers the messages due now, and reports whether any were.
func (s *Sim) deliverDue() bool {
	var due []simMsg
	kept := s.queue[:0]
	for _, m := range s.queue {
		if m.due <= s.now {
			due = append(due, m)
		} else {
			kept = append(kept, m)
		}
	}
	s.queue = kept
	for _, sm := range due {
		m := sm.m
		from, to := s.node(m.From), s.node(m.To)
		lost := to == nil || to.rn == nil || s.blocked[link{m.From, m.To}]
		if m.Type == pb.MsgSnap && from != nil && from.rn != nil {
			// The transport tells the leader how sending went, unless it
			// is one that forgets to.
			status := raft.SnapshotFinish
			if lost {
				status = raft.SnapshotFailure
			}
			if !lost || s.rnd.Float64() >= s.cfg.ForgetReports {
				from.rn.ReportSnapshot(m.To, status)
			}
		}
		if lost {
			continue
		}
		// A dropped proposal and a response from a node that has left the
		// configuration are normal; any other refusal is a bug.
		if err := to.rn.Step(m); err != nil && !errors.Is(err, raft.ErrProposalDropped) && !errors.Is(err, raft.ErrStepPeerNotFound) {
			s.violate("node %d refused %s: %v", to.id, raft.DescribeMessage(m, nil), err)
		}
		s.checkNode(to)
	}
	return len(due) > 0
}

// send puts messages on the network with its faults.
func (s *Sim) send(msgs []pb.Message) {
	for _, m := range msgs {
		if s.chaos && s.rnd.Float64() < s.cfg.DropRate {
			continue
		}
		delay := 0
		if s.chaos && s.cfg.MaxDelay > 0 {
			delay = s.rnd.IntN(s.cfg.MaxDelay + 1)
		}
		s.queue = append(s.queue, simMsg{m: m, due: s.now + int64(delay)})
		if s.chaos && s.rnd.Float64() < s.cfg.DupRate {
			s.queue = append(s.queue, simMsg{m: m, due: s.now + int64(s.rnd.IntN(s.cfg.MaxDelay+2))})
		}
	}
}
