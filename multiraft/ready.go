package multiraft

import (
	"slices"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

// GroupReady is one group's share of a host Ready: a raft.Ready whose
// Messages have been moved into the host Ready's batches (Messages is nil).
type GroupReady struct {
	GroupID uint64
	raft.Ready
	// ForwardedOutcomes are the outcomes of proposals this replica
	// forwarded with ProposeWithResult (or ProposeConfChangeWithResult)
	// learned since the group's last Ready: the group's
	// raft.RawNode.ForwardedOutcomes, taken when the host Ready is built,
	// after every batch stepped so far and before this Ready's
	// CommittedEntries are applied. So a forwarded proposal's outcome
	// arrives in the same GroupReady as its entry's application, or in an
	// earlier one. A GroupReady may carry only outcomes (its raft.Ready
	// empty). See raft.ForwardedOutcome for what each means.
	ForwardedOutcomes []raft.ForwardedOutcome
}

// Ready is the host's batch of work: handle it as the package
// documentation says, then call Advance.
type Ready struct {
	// Groups hold the work of each group that has some, in the order the
	// groups were reached by input.
	Groups []GroupReady
	// Batches are the messages to send, one batch per destination node,
	// sorted by Batch.To. Send them after persisting every group's state;
	// the application owns them. For each MsgSnap among a batch's Messages,
	// call ReportSnapshot with its group once sent (or failed).
	Batches []*mrpb.Batch
}

// HasReady reports whether Ready would return any work. It is true after
// input reached a group even if the group turns out to have none, and
// after a tick gave up a forwarded proposal (its outcome waits).
func (h *Host) HasReady() bool {
	return len(h.work) > 0 || len(h.quiesceOut) > 0 || len(h.wakeOut) > 0 || h.nodeHBDue
}

// Ready returns the host's next batch of work. Its cost follows the number
// of groups reached by input since the last Ready. Call Advance before the
// next Ready; Ready panics otherwise.
func (h *Host) Ready() Ready {
	if h.outstanding {
		panic("raft: multiraft: Ready called before Advance of the previous Ready")
	}
	h.outstanding = true
	var rd Ready
	out := make(map[uint64]*mrpb.Batch)
	batch := func(to uint64) *mrpb.Batch {
		b := out[to]
		if b == nil {
			b = &mrpb.Batch{From: h.id, To: to}
			out[to] = b
		}
		return b
	}
	for _, g := range h.work {
		g.hasWork = false
		if g.removed {
			continue
		}
		// The outcomes are taken after the messages stepped since the last
		// Ready and before the application applies this one (see
		// GroupReady.ForwardedOutcomes).
		outcomes := !mutationNoOutcomes && g.takeOutcomes()
		if !g.rn.HasReady() {
			if outcomes {
				rd.Groups = append(rd.Groups, GroupReady{GroupID: g.id, ForwardedOutcomes: g.handOutOutcomes()})
			}
			continue
		}
		grd := g.rn.Ready()
		g.inReady = true
		h.noteReads(g, &grd)
		for _, m := range grd.Messages {
			addMessage(batch(m.To), g.id, m)
		}
		grd.Messages = nil
		rd.Groups = append(rd.Groups, GroupReady{GroupID: g.id, Ready: grd, ForwardedOutcomes: g.handOutOutcomes()})
	}
	clear(h.work)
	h.work = h.work[:0]
	for _, q := range h.quiesceOut {
		b := batch(q.to)
		b.Heartbeats = append(b.Heartbeats, q.hb)
	}
	h.quiesceOut = drained(h.quiesceOut)
	for _, w := range h.wakeOut {
		b := batch(w.to)
		b.WakeGroups = append(b.WakeGroups, w.group)
	}
	h.wakeOut = drained(h.wakeOut)
	if h.nodeHBDue {
		h.nodeHBDue = false
		for _, p := range h.peers {
			batch(p.id).NodeHeartbeat = true
		}
	}
	rd.Batches = make([]*mrpb.Batch, 0, len(out))
	for _, b := range out {
		rd.Batches = append(rd.Batches, b)
	}
	slices.SortFunc(rd.Batches, func(a, b *mrpb.Batch) int {
		switch {
		case a.To < b.To:
			return -1
		case a.To > b.To:
			return 1
		}
		return 0
	})
	for _, b := range rd.Batches {
		h.maybeAddPeer(b)
	}
	return rd
}

// maybeAddPeer makes the destination of b a peer if it is not one yet and
// is a member of a group whose messages b carries. A group may address a
// node outside it (the answer to a read taken from a member since
// removed): such a node gets the message but not, from then on, the
// host's node-level heartbeats. Heartbeats and wakes go to nodes that are
// peers already: members a leader tracks, leaders heard from.
func (h *Host) maybeAddPeer(b *mrpb.Batch) {
	if _, found := slices.BinarySearchFunc(h.peers, b.To, comparePeer); found {
		return
	}
	for i := range b.Messages {
		if g := h.groups[b.Messages[i].GroupID]; g != nil && g.isMember(b.To) {
			h.peer(b.To)
			return
		}
	}
	for i := range b.Heartbeats {
		if g := h.groups[b.Heartbeats[i].GroupID]; g != nil && g.isMember(b.To) {
			h.peer(b.To)
			return
		}
	}
	for i := range b.HeartbeatResponses {
		if g := h.groups[b.HeartbeatResponses[i].GroupID]; g != nil && g.isMember(b.To) {
			h.peer(b.To)
			return
		}
	}
}

// addMessage puts m into b, coalescing a heartbeat or heartbeat response
// that carries nothing but its group, term and commit.
func addMessage(b *mrpb.Batch, group uint64, m pb.Message) {
	plain := len(m.Context) == 0 && m.Index == 0 && m.LogTerm == 0 && !m.Reject &&
		m.RejectHint == 0 && len(m.Entries) == 0 && m.Snapshot == nil && len(m.Responses) == 0
	switch {
	case plain && m.Type == pb.MsgHeartbeat:
		b.Heartbeats = append(b.Heartbeats, mrpb.Heartbeat{GroupID: group, Term: m.Term, Commit: m.Commit})
	case plain && m.Type == pb.MsgHeartbeatResp && m.Commit == 0:
		b.HeartbeatResponses = append(b.HeartbeatResponses, mrpb.HeartbeatResponse{GroupID: group, Term: m.Term})
	default:
		b.Messages = append(b.Messages, mrpb.GroupMessage{GroupID: group, Message: m})
	}
}

// noteReads keeps whether leader g has reads to confirm. A leader
// confirming reads (ReadOnlySafe) sends each heartbeat with the context of
// its latest pending read, and without a context when none is pending; it
// sends heartbeats with a new read's context as soon as it takes the read.
// So the last heartbeat of a Ready tells whether reads were pending when
// it left, and one that was answered since keeps the flag set only until
// the next heartbeat, which comes before the group could quiesce (a
// heartbeat interval is shorter than QuiesceAfterTicks' default, the
// election timeout). Losing leadership drops the reads.
func (h *Host) noteReads(g *group, rd *raft.Ready) {
	if rd.SoftState != nil && rd.SoftState.RaftState != raft.StateLeader {
		g.readsPending = false
		return
	}
	for i := len(rd.Messages) - 1; i >= 0; i-- {
		if m := &rd.Messages[i]; m.Type == pb.MsgHeartbeat {
			g.readsPending = len(m.Context) > 0
			return
		}
	}
}

// Advance acknowledges rd: every group's state is persisted, the batches
// sent, the committed entries applied. Groups removed since Ready are
// skipped.
func (h *Host) Advance(rd Ready) {
	if !h.outstanding {
		panic("raft: multiraft: Advance called without an outstanding Ready")
	}
	h.outstanding = false
	for i := range rd.Groups {
		gr := &rd.Groups[i]
		g, ok := h.groups[gr.GroupID]
		if !ok || !g.inReady {
			continue
		}
		g.inReady = false
		g.rn.Advance(gr.Ready)
		if g.rn.HasReady() {
			h.markWork(g)
		} else if g.activeIdx < 0 {
			// A quiesced group gets no Tick, at which its RawNode would
			// drop the buffers kept for the next Ready (see deactivate);
			// its last Ready (answering the leader's Quiesce heartbeat,
			// say) came after it was deactivated.
			g.rn.ReleaseMemory()
		}
	}
}

// maxKeptOutbox is the most Quiesce heartbeats or wakes whose room the host
// keeps between Readys.
const maxKeptOutbox = 64

// drained empties an outbox the Ready has taken. Groups quiesce and wake
// in bursts (every idle group of a host at once, every group under a
// leader whose node went down), so a large array is dropped rather than
// kept for a burst that may not come: a quiet host holds none.
func drained[T any](s []T) []T {
	if cap(s) > maxKeptOutbox {
		return nil
	}
	return s[:0]
}
