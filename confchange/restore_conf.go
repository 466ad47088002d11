package confchange

import (
	"fmt"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// Restore builds the configuration cs describes, from scratch (the
// progress in c.Tracker is not reused; its inflight limits are). A joint
// configuration is rebuilt the way it came about: the outgoing voters as a
// plain configuration, then a joint change to the incoming voters and
// learners. The result is checked to be equivalent to cs.
//
// A ConfState with members but no voter (learners only, or a joint one
// without incoming voters) is refused with ErrNoVoters, as a change
// leading there would be; an empty ConfState restores the empty
// configuration (a node waiting to learn its own).
func Restore(c Changer, cs pb.ConfState) (tracker.Config, tracker.ProgressMap, error) {
	c.Tracker = tracker.MakeProgressTracker(c.Tracker.MaxInflight, c.Tracker.MaxInflightBytes)
	s := c.copyState()
	if len(cs.VotersOutgoing) == 0 {
		var ccs []pb.ConfChangeSingle
		ccs = appendChanges(ccs, pb.ConfChangeAddNode, cs.Voters)
		ccs = appendChanges(ccs, pb.ConfChangeAddLearnerNode, cs.Learners)
		if err := c.apply(&s, ccs); err != nil {
			return fail(err)
		}
		return finishRestore(c, s, cs)
	}
	// The outgoing half first, as if it were the whole configuration.
	if err := c.apply(&s, appendChanges(nil, pb.ConfChangeAddNode, cs.VotersOutgoing)); err != nil {
		return fail(err)
	}
	for id := range s.cfg.Voters[0] {
		s.cfg.Voters[1][id] = struct{}{}
	}
	// Then the joint change: incoming voters, voters leaving the incoming
	// half, learners, and learners-next (demoted outgoing voters).
	var ccs []pb.ConfChangeSingle
	for _, id := range cs.VotersOutgoing {
		if !contains(cs.Voters, id) {
			ccs = append(ccs, pb.ConfChangeSingle{Type: pb.ConfChangeRemoveNode, NodeID: id})
		}
	}
	ccs = appendChanges(ccs, pb.ConfChangeAddNode, cs.Voters)
	ccs = appendChanges(ccs, pb.ConfChangeAddLearnerNode, cs.Learners)
	ccs = appendChanges(ccs, pb.ConfChangeAddLearnerNode, cs.LearnersNext)
	if err := c.apply(&s, ccs); err != nil {
		return fail(err)
	}
	s.cfg.AutoLeave = cs.AutoLeave
	return finishRestore(c, s, cs)
}

func finishRestore(c Changer, s state, cs pb.ConfState) (tracker.Config, tracker.ProgressMap, error) {
	members := len(cs.Voters) + len(cs.VotersOutgoing) + len(cs.Learners) + len(cs.LearnersNext)
	cfg, prs, err := c.finish(s, members > 0)
	if err != nil {
		return fail(err)
	}
	got := tracker.ProgressTracker{Config: cfg, Progress: prs}
	if err := got.ConfState().Equivalent(cs); err != nil {
		return fail(fmt.Errorf("raft: conf state cannot be restored: %w", err))
	}
	return cfg, prs, nil
}

func appendChanges(ccs []pb.ConfChangeSingle, t pb.ConfChangeType, ids []uint64) []pb.ConfChangeSingle {
	for _, id := range ids {
		ccs = append(ccs, pb.ConfChangeSingle{Type: t, NodeID: id})
	}
	return ccs
}

func contains(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
