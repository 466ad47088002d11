package raft

import (
	"cmp"
	"slices"

	"github.com/raftcore/raft/quorum"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// configuration is the membership every role keeps, in compact form: each
// member once, in ascending ID order, with its roles. A follower needs to
// know the members, nothing more; the tracker's form (a map per set, about
// 200 bytes for three voters against 48 here) exists only while a leader
// or candidate counts acknowledgements or votes (raft.trk). The one flag
// of tracker.Config, AutoLeave, is kept beside it (raft.autoLeave), where
// it packs with the other flags.
type configuration struct {
	// members is sorted by id, each id once, each with at least one role.
	members []member
}

type member struct {
	id    uint64
	roles memberRoles
}

// memberRoles says which sets of tracker.Config a member is in.
type memberRoles uint8

const (
	roleVoter       memberRoles = 1 << iota // Voters[0], the incoming voters
	roleOutgoing                            // Voters[1], the outgoing voters
	roleLearner                             // Learners
	roleLearnerNext                         // LearnersNext
)

// makeConfiguration returns the compact form of cfg, but for AutoLeave.
func makeConfiguration(cfg tracker.Config) configuration {
	n := len(cfg.Voters[0]) + len(cfg.Voters[1]) + len(cfg.Learners) + len(cfg.LearnersNext)
	if n == 0 {
		return configuration{}
	}
	all := make([]member, 0, n)
	add := func(set map[uint64]struct{}, role memberRoles) {
		for id := range set {
			all = append(all, member{id: id, roles: role})
		}
	}
	add(cfg.Voters[0], roleVoter)
	add(cfg.Voters[1], roleOutgoing)
	add(cfg.Learners, roleLearner)
	add(cfg.LearnersNext, roleLearnerNext)
	slices.SortFunc(all, func(a, b member) int { return cmp.Compare(a.id, b.id) })
	// Merge the roles of an id that is in several sets.
	out := all[:0]
	for _, m := range all {
		if k := len(out) - 1; k >= 0 && out[k].id == m.id {
			out[k].roles |= m.roles
			continue
		}
		out = append(out, m)
	}
	if len(out) < n {
		// A joint configuration repeats ids: keep no spare room.
		out = append([]member(nil), out...)
	}
	return configuration{members: out}
}

// roles returns the roles of id, zero if it is no member.
func (c *configuration) roles(id uint64) memberRoles {
	for _, m := range c.members {
		if m.id == id {
			return m.roles
		}
	}
	return 0
}

// isVoter reports whether id votes (in either half, when joint).
func (c *configuration) isVoter(id uint64) bool {
	return c.roles(id)&(roleVoter|roleOutgoing) != 0
}

// isLearner reports whether id is a learner (not a learner-next, which
// still votes in the outgoing half).
func (c *configuration) isLearner(id uint64) bool { return c.roles(id)&roleLearner != 0 }

// ids returns the IDs with any of roles, in ascending order, or nil.
func (c *configuration) ids(roles memberRoles) []uint64 {
	var ids []uint64
	for _, m := range c.members {
		if m.roles&roles != 0 {
			ids = append(ids, m.id)
		}
	}
	return ids
}

// voterIDs returns the voters of both halves in ascending order, as
// tracker.ProgressTracker.VoterNodes does.
func (c *configuration) voterIDs() []uint64 { return c.ids(roleVoter | roleOutgoing) }

// confState returns the configuration in wire form, as
// tracker.ProgressTracker.ConfState does: sorted lists, nil when empty.
func (c *configuration) confState(autoLeave bool) pb.ConfState {
	return pb.ConfState{
		Voters:         c.ids(roleVoter),
		VotersOutgoing: c.ids(roleOutgoing),
		Learners:       c.ids(roleLearner),
		LearnersNext:   c.ids(roleLearnerNext),
		AutoLeave:      autoLeave,
	}
}

// matches reports whether c with autoLeave and cfg describe the same
// configuration. It does not allocate.
func (c *configuration) matches(cfg tracker.Config, autoLeave bool) bool {
	sets := [...]struct {
		set  map[uint64]struct{}
		role memberRoles
	}{
		{cfg.Voters[0], roleVoter},
		{cfg.Voters[1], roleOutgoing},
		{cfg.Learners, roleLearner},
		{cfg.LearnersNext, roleLearnerNext},
	}
	for _, s := range sets {
		n := 0
		for _, m := range c.members {
			_, in := s.set[m.id]
			if in != (m.roles&s.role != 0) {
				return false
			}
			if in {
				n++
			}
		}
		if n != len(s.set) {
			return false
		}
	}
	for _, m := range c.members {
		if m.roles == 0 {
			return false
		}
	}
	return autoLeave == cfg.AutoLeave
}

// trackerConfig returns the configuration in the tracker's form, with maps
// of its own; a set without members is nil, as confchange leaves it.
func (c *configuration) trackerConfig(autoLeave bool) tracker.Config {
	cfg := tracker.Config{AutoLeave: autoLeave}
	set := func(role memberRoles) map[uint64]struct{} {
		var s map[uint64]struct{}
		for _, m := range c.members {
			if m.roles&role == 0 {
				continue
			}
			if s == nil {
				s = map[uint64]struct{}{}
			}
			s[m.id] = struct{}{}
		}
		return s
	}
	cfg.Voters = quorum.JointConfig{set(roleVoter), set(roleOutgoing)}
	cfg.Learners = set(roleLearner)
	cfg.LearnersNext = set(roleLearnerNext)
	return cfg
}
