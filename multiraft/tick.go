package multiraft

import (
	"math"
	"slices"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	"github.com/raftcore/raft/tracker"
)

// Tick advances the host's clock by one tick: it ticks every group that is
// not quiesced, quiesces the leaders that qualify, and runs node-level
// liveness. Its cost follows the number of active groups and peers.
func (h *Host) Tick() {
	h.now++
	var quiesce []*group
	for _, g := range h.active {
		if h.mayQuiesce(g) {
			// Checked before the tick, which would send heartbeats.
			quiesce = append(quiesce, g)
			continue
		}
		g.rn.Tick()
		if g.idle < math.MaxInt32 {
			g.idle++
		}
		// A tick may give up, as Unknown, a forwarded proposal looked for
		// too long: its outcome waits for the next Ready.
		if g.rn.HasReady() || (!mutationNoTickOutcomes && g.takeOutcomes()) {
			h.markWork(g)
		}
	}
	for _, g := range quiesce {
		h.quiesceLeader(g)
	}
	h.tickLiveness()
}

// mayQuiesce reports whether g is a leader, still a voter, whose group is
// idle and caught up: every member's Match at the commit index, everything
// applied, no transfer or read pending, and no Ready of its own waiting.
//
// A leader that applied its own removal or demotion to learner (without
// StepDownOnRemoval) keeps leading but sends no heartbeats, so that the
// voters time out and elect a leader of the new configuration. Quiescing
// it would put them to sleep under it instead, and its node, alive, would
// never wake them: it must stay awake (its Progress entry is gone, or a
// learner's, while it is a voter of neither half).
//
// Safety does not depend on this check: a quiesced group is one that is not
// ticked, and ticks only schedule elections, heartbeats and quorum checks.
// The check is for liveness: a follower behind, a pending read (answered
// only through heartbeat rounds) or a transfer (timed in ticks) would
// otherwise wait for the next wake. Lease-based groups never get here
// (canQuiesce): a lease assumes the followers' election timers run.
func (h *Host) mayQuiesce(g *group) bool {
	if !g.canQuiesce || g.idle < g.quiesceAfter || g.inReady || g.hasWork || g.readsPending || g.watchingForwarded() || g.rn.HasReady() {
		return false
	}
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || st.LeadTransferee != raft.None || st.Applied != st.Commit {
		return false
	}
	caughtUp, voter := true, false
	g.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if pr.Match != st.Commit {
			caughtUp = false
		}
		if id == h.id && typ == raft.ProgressTypePeer {
			voter = true
		}
	})
	return caughtUp && voter
}

// quiesceLeader stops ticking leader g and tells each follower to stop too,
// with a last heartbeat marked Quiesce. The followers' answers to it do not
// wake g (see stepHeartbeatResponse).
func (h *Host) quiesceLeader(g *group) {
	st := g.rn.BasicStatus()
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, _ tracker.Progress) {
		if id == h.id {
			return
		}
		h.quiesceOut = append(h.quiesceOut, outHeartbeat{to: id, hb: mrpb.Heartbeat{
			GroupID: g.id, Term: st.Term, Commit: st.Commit, Quiesce: true,
		}})
	})
	h.deactivate(g)
}

// maybeQuiesceFollower quiesces follower g under leader if the heartbeat it
// has just stepped left it in the state the leader saw: a follower of
// leader at term, with commit at the leader's commit.
func (h *Host) maybeQuiesceFollower(g *group, leader uint64, hb *mrpb.Heartbeat) {
	if !g.canQuiesce || g.activeIdx < 0 || g.watchingForwarded() {
		return
	}
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateFollower || st.Lead != leader || st.Term != hb.Term || st.Commit != hb.Commit {
		return
	}
	h.deactivate(g)
	g.leaderNode = leader
	set := h.sleepers[leader]
	if set == nil {
		set = make(map[uint64]*group)
		h.sleepers[leader] = set
	}
	set[g.id] = g
}

// activate makes g ticked again (wakes it) if it was quiesced, for input
// from node by (h.id for local calls).
//
// A follower woken by anything but its leader also wakes the leader, with
// a wake in the next batch to the leader's node: otherwise its election
// timer runs while the leader sends no heartbeats, and once it runs out the
// follower grants the first campaign that reaches it (a peer cut off from
// the leader, say) and the group elects a new leader for nothing. A wake
// only restarts timers: it affects when elections and heartbeats happen,
// never what is committed.
//
// A removed group is never activated: nothing would drain its work.
func (h *Host) activate(g *group, by uint64) {
	if g.activeIdx >= 0 || g.removed {
		return
	}
	if g.leaderNode != 0 {
		if by != g.leaderNode && !mutationNoLeaderWake {
			h.wakeOut = append(h.wakeOut, outWake{to: g.leaderNode, group: g.id})
		}
		delete(h.sleepers[g.leaderNode], g.id)
		g.leaderNode = 0
	}
	g.activeIdx = int32(len(h.active))
	h.active = append(h.active, g)
}

// deactivate stops ticking g, and drops the buffers its RawNode keeps for
// reuse while busy (it would drop them itself at its next idle tick, which
// a quiesced group does not get). A group quiesced under a leader leaves
// its sleepers: nothing wakes it but a call or a message, which a removed
// group no longer gets.
func (h *Host) deactivate(g *group) {
	if g.leaderNode != 0 {
		delete(h.sleepers[g.leaderNode], g.id)
		g.leaderNode = 0
	}
	if g.activeIdx < 0 {
		return
	}
	g.rn.ReleaseMemory()
	last := len(h.active) - 1
	moved := h.active[last]
	h.active[g.activeIdx] = moved
	moved.activeIdx = g.activeIdx
	h.active[last] = nil
	h.active = h.active[:last]
	g.activeIdx = -1
}

// tickLiveness schedules node-level heartbeats and wakes the groups
// quiesced under a peer that has gone silent for NodeDownTicks.
//
// Assumptions: hosts tick at about the same rate, and a batch is delivered
// within NodeDownTicks - NodeHeartbeatTicks ticks; a host that takes a live
// peer for down only wakes groups (an election, perhaps needless), and one
// that is slow to take a dead peer for down only delays their election.
// Neither affects safety.
func (h *Host) tickLiveness() {
	if h.now%uint64(h.cfg.NodeHeartbeatTicks) == 0 && len(h.peers) > 0 {
		h.nodeHBDue = true
	}
	downTicks := h.downTicks()
	for _, p := range h.peers {
		if p.down || h.now-p.lastHeard < downTicks {
			continue
		}
		p.down = true
		if mutationNeverWake {
			continue
		}
		h.wakeSleepers(p.id)
	}
}

// downTicks is NodeDownTicks, as tickLiveness and IdleTicks use it.
func (h *Host) downTicks() uint64 {
	if mutationLateWake {
		return 50 * uint64(h.cfg.NodeDownTicks)
	}
	return uint64(h.cfg.NodeDownTicks)
}

// IdleTicks returns how many Ticks may come before one does more than
// advance the host's clock: 1 while a group is ticking, a Ready is waiting
// (HasReady) or outstanding; otherwise (every group quiesced) the ticks
// until the next node-level heartbeat is due or a peer not heard from
// since would be taken for down, whichever is first; NodeHeartbeatTicks
// when neither can happen (no peers), so that the result is always between
// 1 and NodeHeartbeatTicks, a wait any caller can multiply by its tick
// interval.
//
// An application whose host is idle need not wake at every tick: it may
// wait IdleTicks tick intervals and then call Tick that many times, which
// ends where ticking at each interval would have. Input arriving in the
// meantime is handled at the clock's older reading: a batch from a peer
// is recorded as heard up to IdleTicks-1 ticks early on the host's clock,
// so that peer may be taken for down as much earlier (a wake of the groups
// asleep under it, never a change to what is committed). With every group
// quiesced IdleTicks is at most NodeHeartbeatTicks, so the host's
// heartbeats keep their rate.
func (h *Host) IdleTicks() int {
	if len(h.active) > 0 || h.outstanding || h.HasReady() {
		return 1
	}
	every := uint64(h.cfg.NodeHeartbeatTicks)
	if len(h.peers) == 0 {
		return int(every)
	}
	next := every - h.now%every
	downTicks := h.downTicks()
	for _, p := range h.peers {
		if p.down {
			continue
		}
		// tickLiveness takes p for down at the tick where now-lastHeard
		// reaches downTicks.
		silent := h.now - p.lastHeard
		if silent >= downTicks {
			return 1
		}
		next = min(next, downTicks-silent)
	}
	return int(next)
}

// wakeSleepers wakes every group quiesced under a leader on node, in group
// ID order (so that the host stays deterministic).
func (h *Host) wakeSleepers(node uint64) {
	set := h.sleepers[node]
	if len(set) == 0 {
		return
	}
	ids := make([]uint64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		g := set[id]
		// The leader's node is down: no wake for it.
		h.activate(g, node)
	}
	delete(h.sleepers, node)
}

// heard records that node is alive.
func (h *Host) heard(node uint64) {
	p := h.peer(node)
	p.lastHeard = h.now
	p.down = false
}

// watchingForwarded reports whether g's RawNode still looks for a proposal
// it forwarded: its window is counted in ticks, so a group asleep would
// never report it (neither appended nor unknown). A leader that dropped
// the proposal sends nothing more, and would quiesce the group meanwhile.
func (g *group) watchingForwarded() bool {
	return g.fwd != nil && g.fwd.watching > 0
}
