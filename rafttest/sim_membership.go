package rafttest

import (
	"errors"
	"slices"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// changeMembership asks the leader for a random membership change that
// fits its configuration. The leader may still refuse it (one is pending),
// which the log records as an empty entry.
func (s *Sim) changeMembership() {
	l := s.leader()
	if l == nil {
		return
	}
	cs := l.sm.ConfState
	in := func(set []uint64, id uint64) bool { return slices.Contains(set, id) }
	var voters, learners, others []uint64
	for id := uint64(1); id <= uint64(len(s.nodes)); id++ {
		switch {
		case in(cs.Voters, id):
			voters = append(voters, id)
		case in(cs.Learners, id) || in(cs.LearnersNext, id):
			learners = append(learners, id)
		case !in(cs.VotersOutgoing, id):
			others = append(others, id)
		}
	}
	pick := func(set []uint64) uint64 { return set[s.rnd.IntN(len(set))] }
	var cc pb.ConfChangeI
	switch {
	case len(cs.VotersOutgoing) > 0:
		if cs.AutoLeave {
			return // the leader leaves on its own
		}
		cc = pb.ConfChangeV2{}
	default:
		switch op := s.rnd.IntN(5); {
		case op == 0 && len(others) > 0:
			cc = pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: pick(others)}
		case op == 1 && len(learners) > 0:
			cc = pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: pick(learners)}
		case op == 2 && len(voters) > 2:
			cc = pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: pick(voters)}
		case op == 3 && len(voters) > 2:
			cc = pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeAddLearnerNode, NodeID: pick(voters)}}}
		case op == 4 && len(voters) > 1 && len(others)+len(learners) > 0:
			add := pick(append(append([]uint64{}, others...), learners...))
			cc = pb.ConfChangeV2{
				Transition: []pb.ConfChangeTransition{pb.ConfChangeTransitionAuto, pb.ConfChangeTransitionJointImplicit, pb.ConfChangeTransitionJointExplicit}[s.rnd.IntN(3)],
				Changes: []pb.ConfChangeSingle{
					{Type: pb.ConfChangeAddNode, NodeID: add},
					{Type: pb.ConfChangeRemoveNode, NodeID: pick(voters)},
				},
			}
		default:
			return
		}
	}
	s.event("leader %d proposes %v (config %s)", l.id, describeCC(cc), raft.DescribeConfState(cs))
	if err := l.rn.ProposeConfChange(cc); err != nil && !errors.Is(err, raft.ErrProposalDropped) {
		s.violate("node %d: proposing a conf change: %v", l.id, err)
	}
}

// membershipChanged marks the nodes out of the latest configuration as
// removed, and starts re-added nodes that are down, as an operator would.
func (s *Sim) membershipChanged() {
	cs := s.conf
	for _, n := range s.nodes {
		member := slices.Contains(cs.Voters, n.id) || slices.Contains(cs.VotersOutgoing, n.id) ||
			slices.Contains(cs.Learners, n.id) || slices.Contains(cs.LearnersNext, n.id)
		switch {
		case !member && !n.removed:
			n.removed = true
		case member && n.removed:
			n.removed = false
			s.event("node %d is a member again", n.id)
			if n.rn == nil {
				s.restart(n) // the operator starts it again
			}
		}
	}
}

// leaveExplicitJoint asks the leader to leave an explicit joint
// configuration, as an application that entered one must.
func (s *Sim) leaveExplicitJoint() {
	l := s.leader()
	if l == nil || len(l.sm.ConfState.VotersOutgoing) == 0 || l.sm.ConfState.AutoLeave {
		return
	}
	s.event("leader %d proposes leaving the joint config", l.id)
	if err := l.rn.ProposeConfChange(pb.ConfChangeV2{}); err != nil && !errors.Is(err, raft.ErrProposalDropped) {
		s.violate("node %d: proposing to leave joint: %v", l.id, err)
	}
}

func describeCC(cc pb.ConfChangeI) string {
	v2 := cc.AsV2()
	if v2.LeaveJoint() {
		return "leave-joint"
	}
	return pb.ConfChangesToString(v2.Changes) + " " + v2.Transition.String()
}
