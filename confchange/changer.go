// Package confchange computes the next cluster configuration from the
// current one and a list of changes: a simple change (at most one voter
// added or removed), entering a joint configuration (Raft thesis §4.3) and
// leaving it. It also rebuilds a configuration from a ConfState.
//
// Nothing here mutates its input: every function returns a new
// tracker.Config and tracker.ProgressMap for the caller to install.
package confchange

import (
	"errors"
	"fmt"

	"github.com/raftcore/raft/quorum"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// Changer computes configurations following Tracker's current one.
type Changer struct {
	// Tracker is the current configuration and progress. It is read, never
	// modified.
	Tracker tracker.ProgressTracker
	// LastIndex is the last index of the log: a node added by a change
	// starts with Next = LastIndex+1.
	LastIndex uint64
}

var (
	// ErrJoint is returned for a simple change or an enter while the
	// configuration is joint.
	ErrJoint = errors.New("raft: config is in a joint state")
	// ErrNotJoint is returned for a leave while the configuration is not
	// joint.
	ErrNotJoint = errors.New("raft: config is not in a joint state")
	// ErrTooManyVoterChanges is returned for a simple change that changes
	// more than one voter: that needs a joint configuration.
	ErrTooManyVoterChanges = errors.New("raft: more than one voter changed without entering a joint config")
	// ErrNoVoters is returned for a change that would leave no voter.
	ErrNoVoters = errors.New("raft: removed all voters")
	// ErrUnknownChange is returned for a change of an unknown type.
	ErrUnknownChange = errors.New("raft: unknown conf change type")
)

// state is a working copy of a configuration being changed.
type state struct {
	cfg tracker.Config
	prs tracker.ProgressMap
}

// Simple applies ccs, which may change at most one voter, without a joint
// configuration.
func (c Changer) Simple(ccs ...pb.ConfChangeSingle) (tracker.Config, tracker.ProgressMap, error) {
	if joint(c.Tracker.Config) {
		return fail(ErrJoint)
	}
	s := c.copyState()
	if err := c.apply(&s, ccs); err != nil {
		return fail(err)
	}
	if n := symmetricDiff(c.Tracker.Voters[0], s.cfg.Voters[0]); n > 1 {
		return fail(ErrTooManyVoterChanges)
	}
	return c.finish(s, true)
}

// EnterJoint enters a joint configuration: the current voters become the
// outgoing half, ccs are applied to the incoming half. With autoLeave the
// leader leaves the joint configuration by itself once it is applied.
func (c Changer) EnterJoint(autoLeave bool, ccs ...pb.ConfChangeSingle) (tracker.Config, tracker.ProgressMap, error) {
	if joint(c.Tracker.Config) {
		return fail(ErrJoint)
	}
	if len(c.Tracker.Voters[0]) == 0 {
		// Joint consensus needs an old configuration to agree.
		return fail(fmt.Errorf("%w: cannot enter a joint config from an empty config", ErrNoVoters))
	}
	s := c.copyState()
	for id := range s.cfg.Voters[0] {
		s.cfg.Voters[1][id] = struct{}{}
	}
	if err := c.apply(&s, ccs); err != nil {
		return fail(err)
	}
	s.cfg.AutoLeave = autoLeave
	return c.finish(s, true)
}

// LeaveJoint leaves a joint configuration: the outgoing half is dropped,
// learners-next become learners, and nodes left without a role lose their
// progress.
func (c Changer) LeaveJoint() (tracker.Config, tracker.ProgressMap, error) {
	if !joint(c.Tracker.Config) {
		return fail(ErrNotJoint)
	}
	s := c.copyState()
	for id := range s.cfg.LearnersNext {
		s.cfg.Learners[id] = struct{}{}
		s.prs[id].IsLearner = true
	}
	s.cfg.LearnersNext = map[uint64]struct{}{}
	for id := range s.cfg.Voters[1] {
		_, isVoter := s.cfg.Voters[0][id]
		_, isLearner := s.cfg.Learners[id]
		if !isVoter && !isLearner {
			delete(s.prs, id)
		}
	}
	s.cfg.Voters[1] = quorum.MajorityConfig{}
	s.cfg.AutoLeave = false
	return c.finish(s, false)
}

func fail(err error) (tracker.Config, tracker.ProgressMap, error) {
	return tracker.Config{}, nil, err
}

func joint(cfg tracker.Config) bool { return len(cfg.Voters[1]) > 0 }

// apply applies each change of ccs to s.
func (c Changer) apply(s *state, ccs []pb.ConfChangeSingle) error {
	for _, cc := range ccs {
		if cc.NodeID == 0 {
			continue // a change without a node changes nothing
		}
		switch cc.Type {
		case pb.ConfChangeAddNode:
			c.makeVoter(s, cc.NodeID)
		case pb.ConfChangeAddLearnerNode:
			c.makeLearner(s, cc.NodeID)
		case pb.ConfChangeRemoveNode:
			remove(s, cc.NodeID)
		case pb.ConfChangeUpdateNode:
		default:
			return fmt.Errorf("%w: %d", ErrUnknownChange, int32(cc.Type))
		}
	}
	return nil
}

// makeVoter makes id an incoming voter (promoting it if it was a learner).
func (c Changer) makeVoter(s *state, id uint64) {
	pr := s.prs[id]
	if pr == nil {
		c.initProgress(s, id, false)
	} else {
		pr.IsLearner = false
	}
	delete(s.cfg.Learners, id)
	delete(s.cfg.LearnersNext, id)
	s.cfg.Voters[0][id] = struct{}{}
}

// makeLearner makes id a learner. An outgoing voter being demoted while
// joint becomes a learner only when the joint config is left: until then it
// still votes in the outgoing half.
func (c Changer) makeLearner(s *state, id uint64) {
	pr := s.prs[id]
	if pr == nil {
		c.initProgress(s, id, true)
	} else if pr.IsLearner {
		return
	}
	delete(s.cfg.Voters[0], id)
	if _, outgoing := s.cfg.Voters[1][id]; outgoing {
		s.cfg.LearnersNext[id] = struct{}{}
		return
	}
	s.prs[id].IsLearner = true
	s.cfg.Learners[id] = struct{}{}
}

// remove drops id from the incoming half and the learners; it keeps its
// progress while it is still an outgoing voter.
func remove(s *state, id uint64) {
	if _, ok := s.prs[id]; !ok {
		return // unknown node: nothing to do
	}
	delete(s.cfg.Voters[0], id)
	delete(s.cfg.Learners, id)
	delete(s.cfg.LearnersNext, id)
	if _, outgoing := s.cfg.Voters[1][id]; !outgoing {
		delete(s.prs, id)
	}
}

// initProgress adds progress for a new node. It counts as recently active
// so that adding it cannot make the leader fail its next quorum check.
func (c Changer) initProgress(s *state, id uint64, learner bool) {
	s.prs[id] = &tracker.Progress{
		Next:         max(c.LastIndex+1, 1),
		Inflights:    tracker.NewInflights(max(c.Tracker.MaxInflight, 1), c.Tracker.MaxInflightBytes),
		RecentActive: true,
		IsLearner:    learner,
	}
}

// copyState deep-copies the tracker's configuration and progress.
func (c Changer) copyState() state {
	cfg := c.Tracker.Config.Clone()
	if cfg.Voters[0] == nil {
		cfg.Voters[0] = quorum.MajorityConfig{}
	}
	if cfg.Voters[1] == nil {
		cfg.Voters[1] = quorum.MajorityConfig{}
	}
	if cfg.Learners == nil {
		cfg.Learners = map[uint64]struct{}{}
	}
	if cfg.LearnersNext == nil {
		cfg.LearnersNext = map[uint64]struct{}{}
	}
	prs := make(tracker.ProgressMap, len(c.Tracker.Progress))
	for id, pr := range c.Tracker.Progress {
		p := *pr
		if pr.Inflights != nil {
			p.Inflights = pr.Inflights.Clone()
		}
		prs[id] = &p
	}
	return state{cfg: cfg, prs: prs}
}

// finish validates s and returns it.
func (c Changer) finish(s state, needVoters bool) (tracker.Config, tracker.ProgressMap, error) {
	if needVoters && len(s.cfg.Voters[0]) == 0 {
		return fail(ErrNoVoters)
	}
	if err := check(s.cfg, s.prs); err != nil {
		return fail(err)
	}
	// copyState made every set writable; the sets left empty go back to nil
	// so that a group outside a joint change with no learners keeps no empty
	// maps alive.
	for i, set := range s.cfg.Voters {
		if len(set) == 0 {
			s.cfg.Voters[i] = nil
		}
	}
	if len(s.cfg.Learners) == 0 {
		s.cfg.Learners = nil
	}
	if len(s.cfg.LearnersNext) == 0 {
		s.cfg.LearnersNext = nil
	}
	return s.cfg, s.prs, nil
}

// check verifies the invariants of a configuration and its progress map.
func check(cfg tracker.Config, prs tracker.ProgressMap) error {
	for id := range cfg.Voters.IDs() {
		pr, ok := prs[id]
		if !ok {
			return fmt.Errorf("raft: voter %d has no progress", id)
		}
		if _, next := cfg.LearnersNext[id]; pr.IsLearner && !next {
			return fmt.Errorf("raft: voter %d is marked learner", id)
		}
	}
	for id := range cfg.Learners {
		if _, ok := cfg.Voters.IDs()[id]; ok {
			return fmt.Errorf("raft: %d is both voter and learner", id)
		}
		if pr, ok := prs[id]; !ok || !pr.IsLearner {
			return fmt.Errorf("raft: learner %d has no learner progress", id)
		}
	}
	for id := range cfg.LearnersNext {
		if _, ok := cfg.Voters[1][id]; !ok {
			return fmt.Errorf("raft: learner-next %d is not an outgoing voter", id)
		}
		if _, ok := cfg.Voters[0][id]; ok {
			return fmt.Errorf("raft: learner-next %d is an incoming voter", id)
		}
	}
	members := len(cfg.Voters.IDs()) + len(cfg.Learners)
	if len(prs) != members {
		return fmt.Errorf("raft: %d progress entries for %d members", len(prs), members)
	}
	if cfg.AutoLeave && !joint(cfg) {
		return errors.New("raft: auto-leave set outside a joint config")
	}
	return nil
}

// symmetricDiff counts the IDs in exactly one of a and b.
func symmetricDiff(a, b quorum.MajorityConfig) int {
	n := 0
	for id := range a {
		if _, ok := b[id]; !ok {
			n++
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			n++
		}
	}
	return n
}
