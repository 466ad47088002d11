package rafttest

import (
	"errors"
	"fmt"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

func (s *Sim) repartition() {
	s.net.HealLinks()
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
		s.net.Partition(a, b)
		s.event("partition %v | %v", a, b)
	case 2:
		x := ids[s.rnd.IntN(len(ids))]
		s.net.Isolate(x, ids)
		s.event("node %d isolated", x)
	case 3:
		var cuts []string
		for i := 0; i < 1+s.rnd.IntN(len(ids)); i++ {
			x, y := ids[s.rnd.IntN(len(ids))], ids[s.rnd.IntN(len(ids))]
			if x != y {
				s.net.CutOneWay(x, y)
				cuts = append(cuts, fmt.Sprintf("%d->%d", x, y))
			}
		}
		s.event("one-way cuts %v", cuts)
	}
}

// deliverDue delivers the messages due now, and reports whether the
// network delivered or lost any.
func (s *Sim) deliverDue() bool {
	lost := s.lost
	due := s.net.Take()
	for _, m := range due {
		to := s.node(m.To)
		if to == nil || to.rn == nil {
			s.netLost(m)
			continue
		}
		s.reportSnapshot(m, raft.SnapshotFinish)
		// A dropped proposal and a response from a node that has left the
		// configuration are normal; any other refusal is a bug.
		if err := to.rn.Step(m); err != nil && !errors.Is(err, raft.ErrProposalDropped) && !errors.Is(err, raft.ErrStepPeerNotFound) {
			s.violate("node %d refused %s: %v", to.id, raft.DescribeMessage(m, nil), err)
		}
		s.checkNode(to)
	}
	return len(due) > 0 || s.lost != lost
}

// netLost handles a message the network lost, or that reached a node
// that is down.
func (s *Sim) netLost(m pb.Message) {
	s.lost++
	s.reportSnapshot(m, raft.SnapshotFailure)
}

// reportSnapshot tells the sender of a snapshot how sending went, as a
// transport does, unless it is one that forgets to report failures.
func (s *Sim) reportSnapshot(m pb.Message, status raft.SnapshotStatus) {
	from := s.node(m.From)
	if m.Type != pb.MsgSnap || from == nil || from.rn == nil {
		return
	}
	if status == raft.SnapshotFinish || s.rnd.Float64() >= s.cfg.ForgetReports {
		from.rn.ReportSnapshot(m.To, status)
	}
}
