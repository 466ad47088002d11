package raft

import (
	"math"

	"github.com/raftcore/raft/quorum"
	pb "github.com/raftcore/raft/raftpb"
)

// readRequest is a read-index request the leader is confirming
// (ReadOnlySafe): it answers with index once a quorum has acknowledged a
// heartbeat sent after the request arrived.
type readRequest struct {
	// req is the MsgReadIndex as received (From is the requesting node, or
	// this node for a local request).
	req pb.Message
	// index is the leader's commit index when the request arrived.
	index uint64
	// acks are the voters that acknowledged a heartbeat carrying this
	// request's context (the leader counts itself).
	acks map[uint64]bool
}

// readOnly queues the leader's read-index requests in arrival order.
type readOnly struct {
	// pending maps a request context to its request; queue holds the
	// contexts in arrival order. Both are nil until the first request.
	pending map[string]*readRequest
	queue   []string
}

// add queues m, to be answered with index. A retried request (same
// context) replaces the earlier one: answering it with the older index,
// or with acknowledgements from before the retry, could miss writes
// acknowledged in between.
func (ro *readOnly) add(index uint64, m pb.Message) {
	ctx := string(m.Entries[0].Data)
	if _, ok := ro.pending[ctx]; ok {
		ro.remove(ctx)
	}
	if ro.pending == nil {
		ro.pending = map[string]*readRequest{}
	}
	ro.pending[ctx] = &readRequest{req: m, index: index, acks: map[uint64]bool{}}
	ro.queue = append(ro.queue, ctx)
}

func (ro *readOnly) remove(ctx string) {
	delete(ro.pending, ctx)
	for i, c := range ro.queue {
		if c == ctx {
			ro.queue = append(ro.queue[:i], ro.queue[i+1:]...)
			return
		}
	}
}

// ack records that id acknowledged the heartbeat carrying ctx and returns
// the acknowledgements so far, or nil if ctx is not pending.
func (ro *readOnly) ack(id uint64, ctx []byte) map[uint64]bool {
	rr, ok := ro.pending[string(ctx)]
	if !ok {
		return nil
	}
	rr.acks[id] = true
	return rr.acks
}

// release removes and returns the request with context ctx and every
// request queued before it: a quorum acknowledging a later heartbeat round
// confirms the leadership for the earlier requests too.
func (ro *readOnly) release(ctx []byte) []*readRequest {
	for i, c := range ro.queue {
		if c != string(ctx) {
			continue
		}
		out := make([]*readRequest, 0, i+1)
		for _, done := range ro.queue[:i+1] {
			out = append(out, ro.pending[done])
			delete(ro.pending, done)
		}
		ro.queue = append(ro.queue[:0], ro.queue[i+1:]...)
		return out
	}
	return nil
}

// last returns the context of the latest request, or nil.
func (ro *readOnly) last() []byte {
	if len(ro.queue) == 0 {
		return nil
	}
	return []byte(ro.queue[len(ro.queue)-1])
}

// handleReadIndex is the leader's handling of a read request, local or
// forwarded.
func (r *raft) handleReadIndex(m pb.Message) {
	if _, ok := parseLeaseCtx(m.Entries[0].Data); ok && r.leaseReads {
		// Its heartbeats would carry this context, and their
		// acknowledgements would be taken for a lease from whatever tick
		// it names (leaseAcked).
		r.logger().Warningf("node %x: dropping a read request from %x whose context has the lease form", r.id, m.From)
		return
	}
	if !r.committedEntryInCurrentTerm() {
		// Until an entry of this term commits, the leader's commit index may
		// lag the previous leader's: answering could miss acknowledged
		// writes. Hold the request until then. This holds for the only
		// voter too: with AsyncStorageWrites it may have applied entries
		// (and the application acknowledged them) before the HardState
		// carrying their commit index was durable, and restarted below it.
		// (A leader that is no longer a voter has committed its removal,
		// so it is never held.)
		r.pendingReadIndexMessages = append(r.pendingReadIndexMessages, m)
		return
	}
	r.confirmReadIndex(m)
}

// confirmReadIndex answers m: at once from the commit index if this leader
// is the only voter or (lease) while its lease holds, else after a
// heartbeat round (safe). A leader that is not a voter drops it.
func (r *raft) confirmReadIndex(m pb.Message) {
	switch {
	case !r.leaderIsVoter():
		r.logger().Debugf("node %x: no longer a voter, dropping a read request from %x", r.id, m.From)
	case mutationReadWithoutConfirm:
		r.answerReadIndex(m, r.raftLog.committed)
	case r.trk.IsSingleton():
		// This leader is the only voter: no one else can be leader, and an
		// entry of its term has committed (handleReadIndex), so the commit
		// index is safe to read at.
		r.answerReadIndex(m, r.raftLog.committed)
	case r.leaseReads && r.leaseValid():
		r.answerReadIndex(m, r.raftLog.committed)
	default:
		// ReadOnlySafe, or a lease that has run out: confirm with a
		// heartbeat round.
		r.readOnly.add(r.raftLog.committed, m)
		r.readOnly.ack(r.id, m.Entries[0].Data)
		r.bcastHeartbeatWithCtx(m.Entries[0].Data)
	}
}

// leaderIsVoter reports whether this leader is a voter of its
// configuration (of either half of a joint one). One whose removal or
// demotion was applied, without StepDownOnRemoval, is not: it sends no
// heartbeats (bcastHeartbeatWithCtx), and the voters may have elected
// another leader and committed past it unknown to it, so it can neither
// confirm a read nor answer one from its commit index.
func (r *raft) leaderIsVoter() bool {
	pr := r.trk.Progress[r.id]
	return pr != nil && !pr.IsLearner
}

// readIndexAcked counts a heartbeat response carrying a read context and
// answers the requests a quorum has confirmed.
func (r *raft) readIndexAcked(m pb.Message) {
	acks := r.readOnly.ack(m.From, m.Context)
	if acks == nil || r.trk.Config.Voters.VoteResult(acks) != quorum.VoteWon {
		return
	}
	for _, rr := range r.readOnly.release(m.Context) {
		r.answerReadIndex(rr.req, rr.index)
	}
}

// answerReadIndex hands the read state to the application, or sends it to
// the follower that asked.
func (r *raft) answerReadIndex(m pb.Message, index uint64) {
	if m.From == None || m.From == r.id {
		r.addReadState(ReadState{Index: index, RequestCtx: m.Entries[0].Data})
		return
	}
	r.send(pb.Message{To: m.From, Type: pb.MsgReadIndexResp, Index: index, Entries: m.Entries})
}

// releasePendingReadIndexMessages answers the reads held back until an
// entry of this term committed.
func (r *raft) releasePendingReadIndexMessages() {
	if len(r.pendingReadIndexMessages) == 0 || !r.committedEntryInCurrentTerm() {
		return
	}
	msgs := r.pendingReadIndexMessages
	r.pendingReadIndexMessages = nil
	for _, m := range msgs {
		r.confirmReadIndex(m)
	}
}

// committedEntryInCurrentTerm reports whether the leader has committed an
// entry of its own term (its empty entry, at first).
func (r *raft) committedEntryInCurrentTerm() bool {
	return r.raftLog.zeroTermOnOutOfBounds(r.raftLog.term(r.raftLog.committed)) == r.Term
}

// The leader's lease (ReadOnlyLeaseBased). With CheckQuorum a node that
// heard from the leader of its term refuses to vote for an election timeout
// after that, whatever its term or role becomes meanwhile (voteLease,
// inVoteLease). So once a quorum has acknowledged a heartbeat the leader
// sent at tick t, no other leader can be elected before about t +
// electionTimeout: until then, less a margin (leaseMarginTicks), the
// leader may answer reads from its commit index alone. Heartbeats carry
// their send tick in their context to measure this (followers echo the
// context back unchanged). The lease assumes that ticks advance at the
// same rate on every node. A leader transfer's campaign ignores the
// followers' promises, and its timeout-now may arrive (or be sent again)
// after the transfer was abandoned: a leader that sent a timeout-now holds
// no lease for the rest of its term (leaseGivenUp). One whose transfer
// never got as far keeps it. ForgetLeader does nothing with lease-based
// reads, as it would break the promise.

// leaseCtxPrefix marks a heartbeat context that carries a send tick. Read
// request contexts of this form are dropped (handleReadIndex), since a
// heartbeat carrying one would be acknowledged as a lease heartbeat; by
// accident they never are in practice.
const leaseCtxPrefix = "\x00raftcore-lease:"

func leaseCtx(tick uint64) []byte {
	b := make([]byte, 0, len(leaseCtxPrefix)+8)
	b = append(b, leaseCtxPrefix...)
	for i := 7; i >= 0; i-- {
		b = append(b, byte(tick>>(8*i)))
	}
	return b
}

func parseLeaseCtx(ctx []byte) (uint64, bool) {
	if len(ctx) != len(leaseCtxPrefix)+8 || string(ctx[:len(leaseCtxPrefix)]) != leaseCtxPrefix {
		return 0, false
	}
	var t uint64
	for _, c := range ctx[len(leaseCtxPrefix):] {
		t = t<<8 | uint64(c)
	}
	return t, true
}

// leaseAcked records that m.From acknowledged a heartbeat sent at the tick
// its context carries.
func (r *raft) leaseAcked(m pb.Message) {
	if r.leaseGivenUp {
		return
	}
	// A tick still to come is no heartbeat this leader sent.
	if t, ok := parseLeaseCtx(m.Context); ok && t > r.leaseAcks[m.From] && t <= r.ticks {
		if r.leaseAcks == nil {
			r.leaseAcks = map[uint64]uint64{}
		}
		r.leaseAcks[m.From] = t
	}
}

// leaseValid reports whether the leader's lease holds now: a quorum
// acknowledged heartbeats sent less than an election timeout, less
// leaseMarginTicks, ago (see leaseTicks), and no timeout-now was sent in
// this term.
func (r *raft) leaseValid() bool {
	if r.leaseGivenUp {
		return false
	}
	start := uint64(r.trk.Config.Voters.CommittedIndex(leaseAckIndexer{r}))
	return start > 0 && r.ticks+leaseMarginTicks < start+uint64(r.leaseTicks())
}

// leaseMarginTicks is how much earlier than the followers' promises the
// lease ends. A follower's promise runs for leaseTicks of its own ticks
// from when the heartbeat arrives; its first tick may come right after
// (clocks tick at the same rate, not in step), so the promise can end a
// tick less than leaseTicks after the heartbeat was sent. One more tick
// covers a tick's jitter (a ticker firing late, or dropping a tick under
// load). So a lease holds for an election timeout less two ticks after the
// heartbeat a quorum acknowledged; with an ElectionTick of 2 or less,
// never.
const leaseMarginTicks = 2

// leaseTicks is how long a node keeps its promise not to vote after it
// heard from a leader, and so how long a leader's lease lasts after the
// heartbeat a quorum acknowledged: an election timeout, capped to what
// voteLease holds (an ElectionTick past 2^32-1 shortens the lease, never
// the other way round).
func (r *raft) leaseTicks() uint32 {
	return uint32(min(uint64(r.electionTimeout), math.MaxUint32))
}

// leaseAckIndexer presents the lease acknowledgements to the quorum
// arithmetic: each voter's value is the send tick of the latest heartbeat
// it acknowledged; the leader's own is now.
type leaseAckIndexer struct{ r *raft }

func (l leaseAckIndexer) AckedIndex(id uint64) (quorum.Index, bool) {
	if id == l.r.id {
		return quorum.Index(l.r.ticks), true
	}
	t, ok := l.r.leaseAcks[id]
	return quorum.Index(t), ok
}
