package multiraft

import (
	"fmt"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// StepBytes decodes a marshaled Batch from node from and steps it (see
// Step). A batch that does not decode is refused with an error wrapping
// ErrMalformedBatch and changes nothing.
func (h *Host) StepBytes(from uint64, data []byte) error {
	var b mrpb.Batch
	if err := b.Unmarshal(data); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedBatch, err)
	}
	return h.Step(from, &b)
}

// Step feeds a batch from peer node from into the host. The whole batch is
// checked first: if any part is malformed (wrong sender or recipient, a
// message without a group, a local message type, ...), Step returns an
// error wrapping ErrMalformedBatch and nothing changes. Otherwise every
// message goes to its group: messages for unknown groups are offered to
// Config.OnUnknownGroup and otherwise dropped, messages for removed groups
// are refused, and messages a group refuses are dropped; all three are
// counted in Metrics, not returned. The host keeps no reference to b.
func (h *Host) Step(from uint64, b *mrpb.Batch) error {
	if err := h.validateBatch(from, b); err != nil {
		return err
	}
	h.heard(from)
	for i := range b.Messages {
		h.stepMessage(from, b.Messages[i].GroupID, b.Messages[i].Message)
	}
	for i := range b.Heartbeats {
		h.stepHeartbeat(from, &b.Heartbeats[i])
	}
	for i := range b.HeartbeatResponses {
		h.stepHeartbeatResponse(from, &b.HeartbeatResponses[i])
	}
	for _, id := range b.WakeGroups {
		h.stepWake(from, id)
	}
	return nil
}

// validateBatch checks what can be checked without any group's state.
func (h *Host) validateBatch(from uint64, b *mrpb.Batch) error {
	switch {
	case b == nil:
		return fmt.Errorf("%w: nil batch", ErrMalformedBatch)
	case from == 0 || from == h.id:
		return fmt.Errorf("%w: sender %d", ErrMalformedBatch, from)
	case b.From != from:
		return fmt.Errorf("%w: batch from %d delivered as from %d", ErrMalformedBatch, b.From, from)
	case b.To != h.id:
		return fmt.Errorf("%w: batch for %d delivered to %d", ErrMalformedBatch, b.To, h.id)
	}
	for i := range b.Messages {
		gm := &b.Messages[i]
		m := &gm.Message
		if _, known := pb.MessageType_name[int32(m.Type)]; !known || raft.IsLocalMsg(m.Type) || m.Type == pb.MsgForgetLeader {
			return fmt.Errorf("%w: message %d: type %d", ErrMalformedBatch, i, int32(m.Type))
		}
		// A forwarded proposal or read keeps its first sender (a read
		// forwarded again, by a follower whose leader changed, comes from
		// a third node), and a forwarded leader transfer names the
		// transferee as its sender; stepMessage requires a member of the
		// group.
		forwarded := m.Type == pb.MsgProp || m.Type == pb.MsgReadIndex || m.Type == pb.MsgTransferLeader
		switch {
		case gm.GroupID == 0:
			return fmt.Errorf("%w: message %d without a group", ErrMalformedBatch, i)
		case m.To != h.id:
			return fmt.Errorf("%w: message %d addressed to %d", ErrMalformedBatch, i, m.To)
		case m.From != from && !(forwarded && m.From != 0):
			return fmt.Errorf("%w: message %d from %d in a batch from %d", ErrMalformedBatch, i, m.From, from)
		}
	}
	for i := range b.Heartbeats {
		if b.Heartbeats[i].GroupID == 0 || b.Heartbeats[i].Term == 0 {
			return fmt.Errorf("%w: heartbeat %d without a group or term", ErrMalformedBatch, i)
		}
	}
	for i := range b.HeartbeatResponses {
		if b.HeartbeatResponses[i].GroupID == 0 || b.HeartbeatResponses[i].Term == 0 {
			return fmt.Errorf("%w: heartbeat response %d without a group or term", ErrMalformedBatch, i)
		}
	}
	for i, id := range b.WakeGroups {
		if id == 0 {
			return fmt.Errorf("%w: wake %d without a group", ErrMalformedBatch, i)
		}
	}
	return nil
}

// lookup returns the group a message is for, creating it if the
// application's hook says so, or nil (and counts the drop).
func (h *Host) lookup(id uint64, m *pb.Message) *group {
	if g, ok := h.groups[id]; ok {
		return g
	}
	if _, removed := h.tombstones[id]; removed {
		h.metrics.RemovedGroup++
		return nil
	}
	if h.cfg.OnUnknownGroup != nil {
		if create, cfg := h.cfg.OnUnknownGroup(id, *m); create {
			if err := h.CreateGroup(id, cfg, nil); err == nil {
				return h.groups[id]
			}
		}
	}
	h.metrics.UnknownGroup++
	return nil
}

// stepMessage wakes the group and steps m, from node from, into it.
func (h *Host) stepMessage(from, id uint64, m pb.Message) {
	if mutationCrossGroup {
		id++
	}
	g := h.lookup(id, &m)
	if g == nil {
		return
	}
	if m.From != from && !g.isMember(m.From) {
		// A forwarded request from outside the group (validateBatch lets
		// only those name a third node): the leader would answer a read
		// to its sender, making that node a peer of this host.
		h.metrics.Rejected++
		return
	}
	if err := g.rn.Step(m); err != nil {
		// Refused: nothing changed, nothing to wake the group for.
		h.metrics.Rejected++
		return
	}
	g.idle = 0
	h.activate(g, from)
	h.markWork(g)
}

// stepHeartbeat expands a coalesced heartbeat into the group's
// MsgHeartbeat. A plain heartbeat wakes the group (its leader is awake); one
// marked Quiesce may put it to sleep.
func (h *Host) stepHeartbeat(from uint64, hb *mrpb.Heartbeat) {
	m := pb.Message{Type: pb.MsgHeartbeat, From: from, To: h.id, Term: hb.Term, Commit: hb.Commit}
	g := h.lookup(hb.GroupID, &m)
	if g == nil {
		return
	}
	if err := g.rn.Step(m); err != nil {
		h.metrics.Rejected++
		return
	}
	if !hb.Quiesce {
		h.activate(g, from)
	}
	h.markWork(g)
	if hb.Quiesce {
		h.maybeQuiesceFollower(g, from, hb)
	}
}

// stepHeartbeatResponse expands a coalesced heartbeat response. It does not
// wake a quiesced leader: the followers answer its last (Quiesce) heartbeat
// this way, and a caught-up follower's answer asks nothing of the leader.
func (h *Host) stepHeartbeatResponse(from uint64, r *mrpb.HeartbeatResponse) {
	m := pb.Message{Type: pb.MsgHeartbeatResp, From: from, To: h.id, Term: r.Term}
	g := h.lookup(r.GroupID, &m)
	if g == nil {
		return
	}
	h.markWork(g)
	if err := g.rn.Step(m); err != nil {
		h.metrics.Rejected++
	}
	if g.activeIdx < 0 && g.rn.BasicStatus().RaftState != raft.StateLeader {
		// A higher term in the answer deposed the leader: it needs its
		// election timer again.
		h.activate(g, from)
	}
}

// stepWake wakes group id at the request of its follower on node from
// (see activate). It never creates a group: a wake carries no message.
func (h *Host) stepWake(from, id uint64) {
	g, ok := h.groups[id]
	if !ok {
		if _, removed := h.tombstones[id]; removed {
			h.metrics.RemovedGroup++
		} else {
			h.metrics.UnknownGroup++
		}
		return
	}
	// The woken group stays awake for a quiescence period, time for the
	// cause of the wake (a campaign, a proposal) to settle.
	g.idle = 0
	h.activate(g, from)
}

// isMember reports whether node is a member (voter or learner) of g's
// configuration as g's replica knows it.
func (g *group) isMember(node uint64) bool {
	found := false
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, _ tracker.Progress) {
		found = found || id == node
	})
	return found
}
