package raft

import (
	"github.com/raftcore/raft/confchange"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// ApplyConfChange applies a committed conf change entry's change to the
// node's configuration and returns the resulting ConfState, which the
// application stores with its next snapshot. Call it for every conf change
// entry in CommittedEntries, in order.
//
// A change that is invalid for the current configuration (e.g. it would
// remove every voter) is ignored and the unchanged ConfState returned:
// every node reaches the same decision from the same log, so ignoring it
// keeps them consistent.
func (rn *RawNode) ApplyConfChange(cc pb.ConfChangeI) *pb.ConfState {
	cs := rn.raft.applyConfChange(cc.AsV2())
	return &cs
}

func (r *raft) applyConfChange(cc pb.ConfChangeV2) pb.ConfState {
	cfg, prs, err := r.nextConfig(cc)
	if err != nil {
		r.logger.Errorf("%x: ignoring invalid conf change %s: %v", r.id, pb.ConfChangesToString(cc.Changes), err)
		return r.trk.ConfState()
	}
	return r.switchToConfig(cfg, prs)
}

// nextConfig computes the configuration and progress that cc would lead to
// from the current one, without installing them.
func (r *raft) nextConfig(cc pb.ConfChangeV2) (tracker.Config, tracker.ProgressMap, error) {
	changer := confchange.Changer{Tracker: r.trk, LastIndex: r.raftLog.lastIndex()}
	if cc.LeaveJoint() {
		return changer.LeaveJoint()
	}
	if autoLeave, ok := cc.EnterJoint(); ok {
		return changer.EnterJoint(autoLeave, cc.Changes...)
	}
	return changer.Simple(cc.Changes...)
}

// switchToConfig installs a new configuration and progress map and deals
// with the consequences: a removed or demoted leader may step down, the
// commit index may move under the new quorum, new peers are contacted, and a
// transfer to a removed node is abandoned.
func (r *raft) switchToConfig(cfg tracker.Config, prs tracker.ProgressMap) pb.ConfState {
	prev := r.trk.Progress
	r.trk.Config = cfg
	r.trk.Progress = prs
	r.logger.Infof("%x: switched to configuration %s", r.id, r.trk.Config)
	cs := r.trk.ConfState()
	pr, member := r.trk.Progress[r.id]
	r.isLearner = member && pr.IsLearner

	if (!member || r.isLearner) && r.state == StateLeader {
		// This leader is no longer a voter. It keeps leading (it may still
		// be needed to commit the change to the new config) unless told to
		// step down; either way it stops counting itself.
		if r.stepDownOnRemoval {
			r.becomeFollower(r.Term, None)
			return cs
		}
	}
	if r.state != StateLeader || len(cs.Voters) == 0 {
		return cs
	}
	if r.maybeCommit() {
		// The new quorum committed more: tell everyone.
		r.bcastAppend()
	} else {
		// Send what is new to peers that lack it, and probe peers that
		// were just added at once: they learn of the leader and start
		// catching up now rather than at the next heartbeat.
		r.trk.Visit(func(id uint64, _ *tracker.Progress) {
			if id == r.id {
				return
			}
			_, known := prev[id]
			r.maybeSendAppend(id, !known)
		})
	}
	if _, ok := r.trk.Progress[r.leadTransferee]; !ok && r.leadTransferee != None {
		r.abortLeaderTransfer()
	}
	return cs
}

// restoreConfState replaces the configuration with the one cs describes
// (at startup, and when installing a snapshot).
func (r *raft) restoreConfState(cs pb.ConfState) error {
	if err := validateConfState(cs); err != nil {
		return err
	}
	cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: r.trk, LastIndex: r.raftLog.lastIndex()}, cs)
	if err != nil {
		return err
	}
	r.trk.Config = cfg
	r.trk.Progress = prs
	pr, member := prs[r.id]
	r.isLearner = member && pr.IsLearner
	return nil
}
