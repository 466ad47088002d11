package rafttest

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

func (s *Sim) repartition() {
	s.event("%s", repartition(s.rnd, s.net, len(s.nodes)))
}

// repartition replaces the partition of net over nodes 1..nodes with a
// random one (healed, split in two, one node isolated, or links cut one
// way) and describes it.
func repartition(rnd *rand.Rand, net *Network, nodes int) string {
	net.HealLinks()
	ids := make([]uint64, nodes)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	switch rnd.IntN(4) {
	case 1:
		rnd.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		k := 1 + rnd.IntN(len(ids)-1)
		a, b := ids[:k], ids[k:]
		net.Partition(a, b)
		return fmt.Sprintf("partition %v | %v", a, b)
	case 2:
		x := ids[rnd.IntN(len(ids))]
		net.Isolate(x, ids)
		return fmt.Sprintf("node %d isolated", x)
	case 3:
		var cuts []string
		for i := 0; i < 1+rnd.IntN(len(ids)); i++ {
			x, y := ids[rnd.IntN(len(ids))], ids[rnd.IntN(len(ids))]
			if x != y {
				net.CutOneWay(x, y)
				cuts = append(cuts, fmt.Sprintf("%d->%d", x, y))
			}
		}
		return fmt.Sprintf("one-way cuts %v", cuts)
	}
	return "network healed"
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
	if !forgotten(s.rnd, status, s.cfg.ForgetReports) {
		from.rn.ReportSnapshot(m.To, status)
	}
}

// forgotten reports whether a transport that forgets to report a lost
// snapshot with probability rate forgets this report.
func forgotten(rnd *rand.Rand, status raft.SnapshotStatus, rate float64) bool {
	return status == raft.SnapshotFailure && rnd.Float64() < rate
}
