package raft

import (
	"fmt"
	"slices"

	"github.com/raftcore/raft/confchange"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// applyConfChange applies a conf change the application took from a
// committed entry and returns the resulting configuration. A change from
// entries that a snapshot installed since has superseded changes nothing
// (see staleConfChange).
func (r *raft) applyConfChange(cc pb.ConfChangeV2) pb.ConfState {
	if r.staleConfChange(cc) {
		return r.confState()
	}
	cfg, prs, err := r.nextConfig(cc)
	if err != nil {
		r.logger().Errorf("%x: ignoring invalid conf change %s: %v", r.id, pb.ConfChangesToString(cc.Changes), err)
		return r.confState()
	}
	return r.switchToConfig(cfg, prs)
}

// nextConfig computes the configuration and progress that cc would lead to
// from the current one, without installing them.
func (r *raft) nextConfig(cc pb.ConfChangeV2) (tracker.Config, tracker.ProgressMap, error) {
	changer := confchange.Changer{LastIndex: r.raftLog.lastIndex()}
	if r.state == StateLeader {
		changer.Tracker = *r.trk
	} else {
		// The changer wants the tracker's form with a progress for every
		// member; a node that does not lead lends it placeholders and
		// keeps none of the result.
		changer.Tracker = r.emptyTracker()
		changer.Tracker.Config = r.trackerConfig()
		changer.Tracker.Progress = r.membersProgress(false)
	}
	return changeConfig(changer, cc)
}

// changeConfig computes the configuration and progress that cc leads to
// from changer's.
func changeConfig(changer confchange.Changer, cc pb.ConfChangeV2) (tracker.Config, tracker.ProgressMap, error) {
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
// transfer to a node that no longer votes is abandoned.
func (r *raft) switchToConfig(cfg tracker.Config, prs tracker.ProgressMap) pb.ConfState {
	var prev tracker.ProgressMap
	if r.trk != nil {
		prev = r.trk.Progress
	}
	before := r.conf.ids(roleVoter | roleOutgoing | roleLearner | roleLearnerNext)
	r.installConfig(cfg, prs)
	r.noteRemovals(before)
	r.logger().Infof("%x: switched to configuration %s", r.id, cfg)
	cs := r.confState()
	member := r.isMember(r.id)

	if (!member || r.isLearner()) && r.state == StateLeader {
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
		// The new quorum committed more: tell everyone, and answer the
		// reads that waited for a commit in this term.
		r.releasePendingReadIndexMessages()
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
	if t := r.transferee(); t != None && !r.isVoter(t) {
		// Removed or demoted: a learner ignores the timeout-now, and
		// proposals would be refused until the transfer timed out.
		r.abortLeaderTransfer()
	}
	return cs
}

// maxRemembered bounds how many removed peers a node remembers.
const maxRemembered = 16

// noteRemovals remembers the peers of before (the members of the
// previous configuration) that the configuration just installed no longer
// has: a node that applied a change refuses their votes, and a leader
// catches them up (refuseRemovedCampaigner). Only changes applied since
// the node started count (not those a snapshot or restart folded into its
// configuration), and only the last maxRemembered removals.
func (r *raft) noteRemovals(before []uint64) {
	for _, id := range before {
		if r.isMember(id) || id == r.id {
			continue
		}
		rm := append(r.rare().removed, id)
		r.seldom.removed = rm[max(0, len(rm)-maxRemembered):]
	}
}

// refusesAsRemoved reports whether the vote request m is refused because
// it comes from a peer this node saw removed (see wasRemoved and
// refuseRemovedCampaigner), and whose log is not ahead of ours.
//
// The last condition keeps the rule from blocking elections: a peer
// removed and then re-added may hold the re-adding entry (and more) while
// this node, lagging, lacks it, and this node's vote may be the one the
// re-added peer needs (the peer's log may be the only one up to date
// enough to win). A log that holds an entry ours lacks ends past ours or
// before it (two logs with the same last entry are the same log); one
// that ends before ours would be refused by the log rule anyway, so the
// request of one that ends past ours is handled as any other. A removed
// peer that missed its removal has no entry past the leader's log, so the
// leader still refuses it (and answers it with the log); a lagging
// follower may grant it, which costs an election at worst (etcd raft
// handles every removed peer's requests so).
func (r *raft) refusesAsRemoved(m pb.Message) bool {
	if !r.wasRemoved(m.From) {
		return false
	}
	last := r.raftLog.lastEntryID()
	ahead := m.LogTerm > last.term || (m.LogTerm == last.term && m.Index > last.index)
	return !ahead
}

// wasRemoved reports whether id is a peer this node saw removed, that is
// not in its configuration now, and that no entry of its log past what it
// applied may bring back.
//
// The last condition keeps the rule from blocking elections: a peer
// removed and then re-added is a voter of every configuration from the
// re-adding entry on, and a node that holds that entry without having
// applied it (it never heard the entry committed) may be the vote the
// re-added peer needs. Refusing it there could leave a cluster without a
// leader for good; without the rule the request is handled as any other.
func (r *raft) wasRemoved(id uint64) bool {
	return r.seldom != nil && slices.Contains(r.seldom.removed, id) && !r.isMember(id) && !r.confChangeUnapplied()
}

// maxUnappliedScan bounds how many entries past the applied index
// confChangeUnapplied looks at; a longer unapplied tail counts as holding
// a configuration change.
const maxUnappliedScan = 1024

// confChangeUnapplied reports whether this node's log may hold a
// configuration change past its applied index: one of the entries there
// is a change, or they are too many to look at, or cannot be read.
func (r *raft) confChangeUnapplied() bool {
	lo, hi := r.raftLog.applied+1, r.raftLog.lastIndex()
	if lo > hi {
		return false
	}
	if hi-lo >= maxUnappliedScan {
		return true
	}
	ents, err := r.raftLog.slice(lo, hi+1, noLimit)
	if err != nil {
		return true
	}
	for i := range ents {
		if ents[i].Type == pb.EntryConfChange || ents[i].Type == pb.EntryConfChangeV2 {
			return true
		}
	}
	return false
}

// refuseRemovedCampaigner handles a vote request from a peer this node saw
// removed. Its vote is refused without looking at its term (so that its
// elections neither disrupt this node nor win: it is in no configuration
// here). A leader also answers a pre-vote with the log up to its commit
// index: a leader sends nothing to a peer it no longer has, so a follower
// that missed the commit index of its own removal (the message was lost,
// or its progress was paused when the index moved) would campaign,
// unheard, forever. The append starts at the pre-candidate's last index or
// the commit index, whichever is lower: if its log holds our entry there
// (a committed one), it takes the rest and applies its removal; if not, it
// refuses the append and nothing changes.
func (r *raft) refuseRemovedCampaigner(m pb.Message) {
	r.logger().Infof("%x: refusing %s from %x (last term %d index %d) at term %d: it was removed from the configuration",
		r.id, m.Type, m.From, m.LogTerm, m.Index, m.Term)
	if r.state != StateLeader || m.Type != pb.MsgPreVote || m.Term > r.Term+1 {
		// A vote request carries the campaigner's new term, past ours:
		// it would ignore our append, and answer it in its term.
		return
	}
	prev := min(m.Index, r.raftLog.committed)
	prevTerm, err := r.raftLog.term(prev)
	if err != nil {
		return // compacted: only a snapshot would do, and this is a courtesy
	}
	var ents []pb.Entry
	if prev < r.raftLog.committed {
		if ents, err = r.raftLog.slice(prev+1, r.raftLog.committed+1, r.maxMsgSize); err != nil {
			return
		}
	}
	r.logger().Infof("%x: sending removed %x the log from index %d up to commit index %d", r.id, m.From, prev, r.raftLog.committed)
	r.send(pb.Message{To: m.From, Type: pb.MsgApp, Index: prev, LogTerm: prevTerm, Entries: ents, Commit: r.raftLog.committed})
}

// restoreConfState replaces the configuration with the one cs describes
// (at startup, and when installing a snapshot).
func (r *raft) restoreConfState(cs pb.ConfState) error {
	cfg, prs, err := r.confStateConfig(cs, r.raftLog.lastIndex())
	if err != nil {
		return err
	}
	r.installConfig(cfg, prs)
	return nil
}

// confStateConfig returns the configuration cs describes, and its progress
// for a log ending at lastIndex, changing nothing.
func (r *raft) confStateConfig(cs pb.ConfState, lastIndex uint64) (tracker.Config, tracker.ProgressMap, error) {
	if err := validateConfState(cs); err != nil {
		return tracker.Config{}, nil, err
	}
	return confchange.Restore(confchange.Changer{Tracker: r.emptyTracker(), LastIndex: lastIndex}, cs)
}

// installConfig makes cfg the configuration. The tracker of a leader or
// candidate takes it too, and a leader the progress confchange computed
// with it (prs); the other roles keep none (becomeLeader starts everyone's
// progress afresh).
func (r *raft) installConfig(cfg tracker.Config, prs tracker.ProgressMap) {
	r.conf = makeConfiguration(cfg)
	r.autoLeave = cfg.AutoLeave
	if r.seldom != nil && len(r.seldom.removed) > 0 {
		// A removed peer the new configuration has again is forgotten: it
		// counts as removed again only when a change removes it again.
		r.seldom.removed = slices.DeleteFunc(r.seldom.removed, r.isMember)
	}
	if r.trk == nil {
		return
	}
	r.trk.Config = cfg
	r.trk.Progress = nil
	if r.state == StateLeader {
		r.trk.Progress = prs
		// The lease acknowledgements of peers no longer members go: an ID
		// added back (a new process, maybe) has made no promise.
		for id := range r.leaseAcks {
			if !r.isMember(id) {
				delete(r.leaseAcks, id)
			}
		}
		if !r.leaderIsVoter() {
			// Reads waiting for a heartbeat round would never be
			// confirmed (see leaderIsVoter): dropped, to be retried.
			r.readOnly = readOnly{}
			r.pendingReadIndexMessages = nil
		}
	}
}

// confState returns the configuration in wire form.
func (r *raft) confState() pb.ConfState { return r.conf.confState(r.autoLeave) }

// trackerConfig returns the configuration in the tracker's form, with maps
// of its own.
func (r *raft) trackerConfig() tracker.Config { return r.conf.trackerConfig(r.autoLeave) }

// emptyTracker returns a tracker with no configuration, progress or votes,
// sized for this node's Inflights.
func (r *raft) emptyTracker() tracker.ProgressTracker {
	return tracker.MakeProgressTracker(r.maxInflight, r.maxInflightBytes)
}

// newTracker returns the tracker a new leader or (pre-)candidate starts
// with: the configuration, no progress, no votes.
func (r *raft) newTracker() *tracker.ProgressTracker {
	return &tracker.ProgressTracker{
		Config:           r.trackerConfig(),
		MaxInflight:      r.maxInflight,
		MaxInflightBytes: r.maxInflightBytes,
	}
}

// membersProgress returns a Progress for every member of the
// configuration, as a new leader starts them: probing from the index after
// its last, with an empty window of inflight appends if inflights is set.
func (r *raft) membersProgress(inflights bool) tracker.ProgressMap {
	next := r.raftLog.lastIndex() + 1
	prs := make(tracker.ProgressMap, len(r.conf.members))
	for _, m := range r.conf.members {
		pr := &tracker.Progress{Next: next, IsLearner: m.roles&roleLearner != 0}
		if inflights {
			pr.Inflights = tracker.NewInflights(r.maxInflight, r.maxInflightBytes)
		}
		prs[m.id] = pr
	}
	return prs
}

// isVoter reports whether id votes in the configuration (in either half,
// when joint).
func (r *raft) isVoter(id uint64) bool { return r.conf.isVoter(id) }

// isLearner reports whether this node is a learner in the configuration.
func (r *raft) isLearner() bool { return r.conf.isLearner(r.id) }

// isMember reports whether id is a voter or a learner of the
// configuration.
func (r *raft) isMember(id uint64) bool { return r.conf.roles(id) != 0 }

// vetConfChange records a conf change entry the leader is about to append
// at index (refuseConfChanges has let it through): it is now the pending
// one, and, if it takes this node out of the voters, the pending leave.
func (r *raft) vetConfChange(e *pb.Entry, index uint64) {
	if e.Type != pb.EntryConfChange && e.Type != pb.EntryConfChangeV2 {
		return
	}
	cc, err := pb.UnmarshalConfChange(*e)
	if err != nil {
		// refuseConfChanges has refused it already.
		r.logger().Panicf("raft: vetting a conf change that does not decode: %v", err)
	}
	r.pendingConfIndex = index
	if r.excludesSelf(cc.AsV2()) {
		r.pendingLeaveIndex = index
	}
}

// refuseConfChanges returns the refusal (ErrProposalConfChangeRefused, with
// its reason) of the first conf change in ents that may not be appended
// now, or nil: nothing of a refused proposal is appended.
func (r *raft) refuseConfChanges(ents []pb.Entry) error {
	seen := false
	for _, e := range ents {
		if e.Type != pb.EntryConfChange && e.Type != pb.EntryConfChangeV2 {
			continue
		}
		cc, err := pb.UnmarshalConfChange(e)
		if err != nil {
			return &confChangeRefused{reason: fmt.Sprintf("does not decode: %v", err)}
		}
		if seen && !r.disableConfChangeValid {
			return &confChangeRefused{reason: "another conf change comes earlier in the same proposal"}
		}
		seen = true
		if reason := r.confChangeRefusal(cc); reason != "" {
			return &confChangeRefused{reason: fmt.Sprintf("%v: %s", cc, reason)}
		}
	}
	return nil
}

// excludesSelf reports whether applying cc to the current configuration
// leaves this node out of the incoming voters (removed, demoted, or left in
// the outgoing half of a joint configuration only).
func (r *raft) excludesSelf(cc pb.ConfChangeV2) bool {
	cfg, _, err := r.nextConfig(cc)
	if err != nil {
		return false
	}
	_, in := cfg.Voters[0][r.id]
	return !in
}

// unappliedLeaveIndex returns the index of the last conf change in the
// unapplied part of the log after which this node is no longer an incoming
// voter (removed, demoted, or left in the outgoing half of a joint
// configuration only), or 0. A new leader takes it as its pending leave:
// the change may be its own proposal from an earlier term or another
// leader's, and entries it appended after it would be as harmful as if it
// had proposed it now (handleProposal).
//
// The changes are replayed in log order on a copy of the configuration.
// One that fails to apply is skipped: applyConfChange ignores it too, and
// the application may already have applied the first unapplied entries'
// changes (between a Ready and its Advance, or before its apply thread
// reported them), so that an enter or leave of a joint configuration fails
// on replay while every other kind of change is the same applied twice.
func (r *raft) unappliedLeaveIndex() uint64 {
	lo, hi := r.unappliedFrom(), r.raftLog.lastIndex()+1
	var changer *confchange.Changer // made at the first conf change
	leave := uint64(0)
	err := r.scanLog(lo, hi, func(ents []pb.Entry) bool {
		eachConfChange(ents, func(e *pb.Entry, cc pb.ConfChangeV2) bool {
			if changer == nil {
				changer = &confchange.Changer{Tracker: r.emptyTracker(), LastIndex: hi - 1}
				changer.Tracker.Config = r.trackerConfig()
				changer.Tracker.Progress = r.membersProgress(false)
			}
			cfg, prs, err := changeConfig(*changer, cc)
			if err != nil {
				return true // ignored, as applyConfChange ignores it
			}
			changer.Tracker.Config, changer.Tracker.Progress = cfg, prs
			if _, in := cfg.Voters[0][r.id]; !in {
				leave = e.Index
			}
			return true
		})
		return true
	})
	if err != nil {
		r.logger().Panicf("raft: reading unapplied entries [%d,%d): %v", lo, hi, err)
	}
	return leave
}

// leavingConfig reports whether this leader is on its way out of the
// configuration: a change that excludes it from the incoming voters is
// pending, or already applied (it leads a joint configuration from the
// outgoing half, or was demoted).
func (r *raft) leavingConfig() bool {
	if r.pendingLeaveIndex > r.raftLog.applied {
		return true
	}
	_, in := r.trk.Config.Voters[0][r.id]
	return !in
}

// acceptableLeaveJoint reports whether ents is exactly one leave-joint
// change that may be proposed now (a refused one would only append an
// empty entry).
func (r *raft) acceptableLeaveJoint(ents []pb.Entry) bool {
	if len(ents) != 1 || ents[0].Type != pb.EntryConfChangeV2 {
		return false
	}
	cc, err := pb.UnmarshalConfChange(ents[0])
	return err == nil && cc.AsV2().LeaveJoint() && r.confChangeRefusal(cc) == ""
}

// confChangeRefusal returns why cc may not be proposed now, or "".
func (r *raft) confChangeRefusal(cc pb.ConfChangeI) string {
	if r.disableConfChangeValid {
		return ""
	}
	alreadyJoint := len(r.trk.Config.Voters[1]) > 0
	v2 := cc.AsV2()
	_, wantsJoint := v2.EnterJoint()
	switch {
	case r.pendingConfIndex > r.raftLog.applied:
		return fmt.Sprintf("possible unapplied conf change at index %d (applied to %d)", r.pendingConfIndex, r.raftLog.applied)
	case alreadyJoint && !v2.LeaveJoint():
		return "must transition out of joint config first"
	case !alreadyJoint && v2.LeaveJoint():
		return "not in joint state; refusing empty conf change"
	case alreadyJoint && wantsJoint:
		return "already in a joint config"
	}
	return ""
}

// maybeAutoLeave proposes leaving a joint configuration entered with
// auto-leave (ConfChangeTransitionAuto or JointImplicit) once the entry
// that entered it is applied. Only the leader proposes it; a new leader
// does so once it has applied everything up to its own first entry.
func (r *raft) maybeAutoLeave() {
	if r.state != StateLeader || !r.trk.Config.AutoLeave || r.raftLog.applied < r.pendingConfIndex {
		return
	}
	data, err := (&pb.ConfChangeV2{}).Marshal()
	if err != nil {
		r.logger().Panicf("raft: encoding the leave-joint change: %v", err)
	}
	m := pb.Message{Type: pb.MsgProp, From: r.id, Entries: []pb.Entry{{Type: pb.EntryConfChangeV2, Data: data}}}
	if err := r.Step(m); err != nil {
		r.logger().Debugf("node %x: proposing to leave the joint config %s failed (will retry): %v", r.id, r.trk.Config, err)
		return
	}
	r.logger().Infof("node %x: proposed leaving the joint config %s", r.id, r.trk.Config)
}

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
