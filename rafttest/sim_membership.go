package rafttest

import (
	"errors"
	"math/rand/v2"
	"slices"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// Reconfigure, on a leader, proposes a random membership change that fits
// the configuration it has applied: add a learner, promote one, remove
// or demote a voter, replace one through a joint configuration (left
// automatically or explicitly), or leave an explicit joint configuration.
// The leader may still refuse it (one is pending), which the log records
// as an empty entry. Removed nodes keep running (membership changes run
// with CheckQuorum).
func (s *simServer) Reconfigure(r *rand.Rand, nodes []uint64) {
	if s.rn.BasicStatus().RaftState != raft.StateLeader {
		return
	}
	cs := s.durable.sm.ConfState
	in := func(set []uint64, id uint64) bool { return slices.Contains(set, id) }
	var voters, learners, others []uint64
	for _, id := range nodes {
		switch {
		case in(cs.Voters, id):
			voters = append(voters, id)
		case in(cs.Learners, id) || in(cs.LearnersNext, id):
			learners = append(learners, id)
		case !in(cs.VotersOutgoing, id):
			others = append(others, id)
		}
	}
	pick := func(set []uint64) uint64 { return set[r.IntN(len(set))] }
	var cc pb.ConfChangeI
	switch {
	case len(cs.VotersOutgoing) > 0:
		if cs.AutoLeave {
			return // the leader leaves on its own
		}
		cc = pb.ConfChangeV2{}
	default:
		switch op := r.IntN(5); {
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
				Transition: []pb.ConfChangeTransition{pb.ConfChangeTransitionAuto, pb.ConfChangeTransitionJointImplicit, pb.ConfChangeTransitionJointExplicit}[r.IntN(3)],
				Changes: []pb.ConfChangeSingle{
					{Type: pb.ConfChangeAddNode, NodeID: add},
					{Type: pb.ConfChangeRemoveNode, NodeID: pick(voters)},
				},
			}
		default:
			return
		}
	}
	s.env.run.event("leader %d proposes %v (config %s)", s.env.ID, describeCC(cc), raft.DescribeConfState(cs))
	if err := s.rn.ProposeConfChange(cc); err != nil && !errors.Is(err, raft.ErrProposalDropped) {
		s.env.run.violate("node %d: proposing a conf change: %v", s.env.ID, err)
	}
}

// maybeLeaveJoint, after the chaos phase, has a leader in an explicit
// joint configuration propose to leave it (every ten ticks until it
// does), as an application that entered one must.
func (s *simServer) maybeLeaveJoint() {
	run, cs := s.env.run, s.durable.sm.ConfState
	if run.chaos || len(cs.VotersOutgoing) == 0 || cs.AutoLeave || run.now < s.sim.nextLeave ||
		s.rn.BasicStatus().RaftState != raft.StateLeader {
		return
	}
	s.sim.nextLeave = run.now + 10
	run.event("leader %d proposes leaving the joint config", s.env.ID)
	if err := s.rn.ProposeConfChange(pb.ConfChangeV2{}); err != nil && !errors.Is(err, raft.ErrProposalDropped) {
		run.violate("node %d: proposing to leave joint: %v", s.env.ID, err)
	}
}

func describeCC(cc pb.ConfChangeI) string {
	v2 := cc.AsV2()
	if v2.LeaveJoint() {
		return "leave-joint"
	}
	return pb.ConfChangesToString(v2.Changes) + " " + v2.Transition.String()
}
