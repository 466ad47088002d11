package raft

import (
	"fmt"

	pb "github.com/raftcore/raft/raftpb"
)

// validateConfState checks that cs describes a possible configuration:
// no node ID 0, no node listed twice, voters and learners disjoint,
// learners-next drawn from the outgoing voters, auto-leave only when joint.
func validateConfState(cs pb.ConfState) error {
	incoming, err := idSet("voters", cs.Voters)
	if err != nil {
		return err
	}
	outgoing, err := idSet("voters_outgoing", cs.VotersOutgoing)
	if err != nil {
		return err
	}
	learners, err := idSet("learners", cs.Learners)
	if err != nil {
		return err
	}
	next, err := idSet("learners_next", cs.LearnersNext)
	if err != nil {
		return err
	}
	for id := range learners {
		if _, ok := incoming[id]; ok {
			return fmt.Errorf("raft: conf state: %d is both voter and learner", id)
		}
		if _, ok := outgoing[id]; ok {
			return fmt.Errorf("raft: conf state: %d is both outgoing voter and learner", id)
		}
	}
	for id := range next {
		if _, ok := outgoing[id]; !ok {
			return fmt.Errorf("raft: conf state: learner-next %d is not an outgoing voter", id)
		}
		if _, ok := incoming[id]; ok {
			return fmt.Errorf("raft: conf state: learner-next %d is an incoming voter", id)
		}
	}
	if len(outgoing) > 0 && len(incoming) == 0 {
		return fmt.Errorf("raft: conf state: joint config without incoming voters")
	}
	if cs.AutoLeave && len(outgoing) == 0 {
		return fmt.Errorf("raft: conf state: auto-leave set outside a joint config")
	}
	return nil
}

func idSet(name string, ids []uint64) (map[uint64]struct{}, error) {
	set := make(map[uint64]struct{}, len(ids))
	for _, id := range ids {
		if id == None {
			return nil, fmt.Errorf("raft: conf state: node ID 0 in %s", name)
		}
		if _, dup := set[id]; dup {
			return nil, fmt.Errorf("raft: conf state: %d listed twice in %s", id, name)
		}
		set[id] = struct{}{}
	}
	return set, nil
}
