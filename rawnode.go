package raft

import (
	"errors"
	"fmt"

	"github.com/raftcore/raft/invariants"
	pb "github.com/raftcore/raft/raftpb"
)

// SoftState is volatile state that the application may want to observe:
// the known leader and this node's role. It is not persisted.
type SoftState struct {
	Lead      uint64 // must use atomic operations to access; keep 64-bit aligned.
	RaftState StateType
}

func (a *SoftState) equal(b *SoftState) bool {
	return a.Lead == b.Lead && a.RaftState == b.RaftState
}

// ReadState answers a ReadIndex request: once the application has applied
// every entry up to Index, it may serve the read identified by RequestCtx.
type ReadState struct {
	Index      uint64
	RequestCtx []byte
}

// Peer is a member of the cluster a node is bootstrapped with. Context is
// carried in the member's conf change entry (e.g. its address).
type Peer struct {
	ID      uint64
	Context []byte
}

// Ready is a batch of work for the application, returned by RawNode.Ready.
// Handle it in this order (DESIGN: the Ready contract):
//
//  1. Persist Snapshot (if not empty), Entries (an entry at index i replaces
//     every stored entry at i or later) and HardState (if not empty),
//     syncing to stable storage when MustSync is set.
//  2. Send Messages. They may promise the entries and votes persisted in
//     step 1, so they leave only after it.
//  3. Apply Snapshot, then CommittedEntries in order (calling
//     ApplyConfChange for conf change entries); serve ReadStates once the
//     applied index reaches their Index.
//  4. Call Advance.
//
// Every slice in a Ready belongs to the application once handed out, except
// that the entries' Data may be shared with the node's log: do not modify
// it.
type Ready struct {
	// SoftState is set when the leader or role changed since the last
	// Ready, nil otherwise.
	*SoftState

	// HardState is the state to persist before sending Messages, or empty
	// when it did not change.
	pb.HardState

	// ReadStates answer read-index requests.
	ReadStates []ReadState

	// Entries are to be persisted before Messages are sent.
	Entries []pb.Entry

	// Snapshot is to be persisted (and applied) when it is not empty.
	Snapshot pb.Snapshot

	// CommittedEntries are to be applied, in order. They were persisted in
	// this or an earlier Ready.
	CommittedEntries []pb.Entry

	// Messages are to be sent to their recipients after persisting.
	// MsgSnap messages need a ReportSnapshot once sent (or failed).
	Messages []pb.Message

	// MustSync tells whether the HardState and Entries must be synced to
	// disk before Messages are sent; false when only the commit index
	// changed (which is safe to lose).
	MustSync bool
}

// IsEmptyHardState reports whether st is the zero HardState.
func IsEmptyHardState(st pb.HardState) bool { return st == pb.HardState{} }

// IsEmptySnap reports whether sp holds no snapshot.
func IsEmptySnap(sp pb.Snapshot) bool { return sp.Metadata.Index == 0 }

// MustSync reports whether a Ready with hard state st (the previous one
// being prevst) and entsnum entries must be synced: term, vote and log
// entries are promises made to other nodes; the commit index is not.
func MustSync(st, prevst pb.HardState, entsnum int) bool {
	return entsnum != 0 || st.Vote != prevst.Vote || st.Term != prevst.Term
}

// readyAck is what the outstanding Ready handed out, acknowledged at
// Advance.
type readyAck struct {
	// stable is the last entry handed out for persisting (zero if none).
	stable entryID
	// snapIndex is the index of the snapshot handed out (0 if none).
	snapIndex uint64
	// applied is the last committed entry handed out (0 if none), with
	// the total encoded and payload sizes of those entries.
	applied             uint64
	appliedSize         uint64
	appliedPayloadsSize uint64
	// steps are messages to this node itself, delivered once the writes
	// are done (its acknowledgements of its own entries, its votes).
	steps []pb.Message
}

// RawNode is the application's handle on a node: it feeds in ticks,
// messages and proposals, and hands out Ready batches. It is not safe for
// concurrent use: drive it from one goroutine (or use Node).
type RawNode struct {
	raft       *raft
	asyncWrite bool
	prevSoftSt SoftState
	prevHardSt pb.HardState
	// outstanding is true between Ready and Advance.
	outstanding bool
	ack         readyAck
}

// NewRawNode builds a node from c, restoring its state from c.Storage. A
// fresh node (empty storage) must be bootstrapped with Bootstrap, or join a
// cluster whose leader adds it.
func NewRawNode(c *Config) (*RawNode, error) {
	r, err := newRaft(c)
	if err != nil {
		return nil, err
	}
	rn := &RawNode{raft: r, asyncWrite: c.AsyncStorageWrites}
	rn.prevSoftSt = r.softState()
	rn.prevHardSt = r.hardState()
	return rn, nil
}

// Bootstrap initializes a fresh node's log with a conf change entry adding
// each peer as a voter, committed at once, so that the cluster can elect a
// leader. The first Ready carries these entries; persist and apply them as
// usual. It fails if peers is empty or the storage is not empty.
func (rn *RawNode) Bootstrap(peers []Peer) error {
	if len(peers) == 0 {
		return errors.New("raft: must provide at least one peer to Bootstrap")
	}
	last, err := rn.raft.raftLog.storage.LastIndex()
	if err != nil {
		return err
	}
	if last != 0 {
		return errors.New("raft: can't bootstrap a nonempty Storage")
	}
	// Pretend a leader of term 1 sent the membership: the entries are
	// committed and this node is a follower of term 1 with no leader.
	rn.prevHardSt = pb.HardState{}
	rn.raft.becomeFollower(1, None)
	ents := make([]pb.Entry, len(peers))
	voters := make([]uint64, len(peers))
	for i, p := range peers {
		cc := pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: p.ID, Context: p.Context}
		data, err := cc.Marshal()
		if err != nil {
			return err
		}
		ents[i] = pb.Entry{Type: pb.EntryConfChange, Term: 1, Index: uint64(i + 1), Data: data}
		voters[i] = p.ID
	}
	rn.raft.raftLog.append(ents...)
	rn.raft.raftLog.committed = uint64(len(ents))
	return rn.raft.restoreConfState(pb.ConfState{Voters: voters})
}

// Tick advances the node's logical clock by one tick. Election and
// heartbeat timeouts are counted in ticks.
func (rn *RawNode) Tick() {
	rn.raft.ticks++
	rn.raft.tick()
}

// TickQuiesced advances the node's logical clock by one tick and does
// nothing else: no heartbeat, no election, no quorum check. It lets an
// application keep a group quiet (no periodic messages) while it knows
// every member to be in the same state, calling Tick when the group is
// active and TickQuiesced when it is quiesced.
//
// The clock still moves: the ticks count toward the election timeout (a
// follower that is ticked normally again campaigns as soon as the timeout
// has passed, counting the quiesced ticks) and toward the expiry of a
// leader's lease for ReadOnlyLeaseBased reads, which therefore never
// outlives the followers' view of time.
//
// Use it with care: it suspends what keeps the group live.
//
// Deprecated: kept for code written for etcd raft, which deprecates it
// too. Use Tick.
func (rn *RawNode) TickQuiesced() {
	rn.raft.ticks++
	rn.raft.electionElapsed = saturatingAdd(rn.raft.electionElapsed, 1)
}

// Campaign makes this node start an election now (a pre-election first,
// with PreVote).
func (rn *RawNode) Campaign() error {
	return rn.raft.Step(pb.Message{Type: pb.MsgHup})
}

// Propose proposes data to be appended to the log. It returns
// ErrProposalDropped when the proposal cannot be taken now; a nil error
// does not mean the proposal will commit (leadership may change): watch
// CommittedEntries.
func (rn *RawNode) Propose(data []byte) error {
	return rn.raft.Step(pb.Message{
		Type:    pb.MsgProp,
		From:    rn.raft.id,
		Entries: []pb.Entry{{Data: data}},
	})
}

// ProposeConfChange proposes a configuration change (ConfChange or
// ConfChangeV2). It takes effect when its entry is applied with
// ApplyConfChange.
func (rn *RawNode) ProposeConfChange(cc pb.ConfChangeI) error {
	typ, data, err := pb.MarshalConfChange(cc)
	if err != nil {
		return err
	}
	return rn.raft.Step(pb.Message{
		Type:    pb.MsgProp,
		Entries: []pb.Entry{{Type: typ, Data: data}},
	})
}

// Step feeds a message from a peer into the node. Local-only message types
// are refused with ErrStepLocalMsg, responses from nodes outside the
// configuration with ErrStepPeerNotFound, and malformed or inconsistent
// messages with an error wrapping ErrInvalidMessage; a refused message
// changes nothing.
func (rn *RawNode) Step(m pb.Message) error {
	if rn.asyncWrite && m.To == rn.raft.id {
		// With AsyncStorageWrites the application steps back the
		// responses of its storage threads and the node's messages to
		// itself.
		switch {
		case m.From == LocalAppendThread && m.Type == pb.MsgStorageAppendResp,
			m.From == LocalApplyThread && m.Type == pb.MsgStorageApplyResp:
			rn.raft.handleStorageResponse(m)
			return nil
		case m.From == rn.raft.id && (m.Type == pb.MsgAppResp || m.Type == pb.MsgVoteResp || m.Type == pb.MsgPreVoteResp):
			return rn.raft.Step(m)
		}
	}
	if err := validateMessage(rn.raft.id, &m); err != nil {
		return err
	}
	if IsResponseMsg(m.Type) && rn.raft.trk.Progress[m.From] == nil {
		return ErrStepPeerNotFound
	}
	if last := rn.raft.raftLog.lastIndex(); m.Type == pb.MsgHeartbeat && m.Commit > last {
		// A leader caps a heartbeat's commit at what this node holds;
		// refuse before the heartbeat's term or leader is taken in.
		return fmt.Errorf("%w: heartbeat from %x commits %d past our last index %d", ErrInvalidMessage, m.From, m.Commit, last)
	}
	return rn.raft.Step(m)
}

// HasReady reports whether Ready would return any work.
func (rn *RawNode) HasReady() bool {
	r := rn.raft
	if ss := r.softState(); !ss.equal(&rn.prevSoftSt) {
		return true
	}
	if hs := r.hardState(); !IsEmptyHardState(hs) && hs != rn.prevHardSt {
		return true
	}
	return r.raftLog.hasNextUnstableSnapshot() ||
		len(r.msgs) > 0 || len(r.msgsAfterAppend) > 0 || len(r.readStates) > 0 ||
		r.raftLog.hasNextUnstableEnts() ||
		r.raftLog.hasNextCommittedEnts(!rn.asyncWrite)
}

// Ready returns the next batch of work. Handle it as Ready's documentation
// says, then call Advance.
func (rn *RawNode) Ready() Ready {
	rd := rn.readyWithoutAccept()
	rn.accept(&rd)
	return rd
}

// readyWithoutAccept builds the next Ready without handing it out: it
// changes nothing, so Node can rebuild it until the application takes it.
func (rn *RawNode) readyWithoutAccept() Ready {
	r := rn.raft
	rd := Ready{
		Entries:          r.raftLog.nextUnstableEnts(),
		CommittedEntries: r.raftLog.nextCommittedEnts(!rn.asyncWrite),
		// Capped, so that appending below never writes into r.msgs.
		Messages:   r.msgs[:len(r.msgs):len(r.msgs)],
		ReadStates: r.readStates,
	}
	if ss := r.softState(); !ss.equal(&rn.prevSoftSt) {
		rd.SoftState = &ss
	}
	if hs := r.hardState(); hs != rn.prevHardSt {
		rd.HardState = hs
	}
	if s := r.raftLog.nextUnstableSnapshot(); s != nil {
		rd.Snapshot = *s
	}
	rd.MustSync = MustSync(r.hardState(), rn.prevHardSt, len(rd.Entries))
	if rn.asyncWrite {
		rd.Messages = rn.appendStorageMessages(rd)
	} else {
		// Acknowledgements and votes travel with the Ready too: the
		// contract sends Messages only after persisting. Those to
		// ourselves wait for Advance (see accept).
		for _, m := range r.msgsAfterAppend {
			if m.To != r.id {
				rd.Messages = append(rd.Messages, m)
			}
		}
	}
	if len(rd.Messages) == 0 {
		rd.Messages = nil
	}
	return rd
}

// appendStorageMessages adds, with AsyncStorageWrites, the work for the
// local storage threads to rd's messages: a MsgStorageAppend with what to
// write (entries, hard state, snapshot) whose Responses are delivered once
// the write is durable (the node's own acknowledgement, and the
// acknowledgements and votes that promise the write to peers), and a
// MsgStorageApply with the committed entries to apply.
func (rn *RawNode) appendStorageMessages(rd Ready) []pb.Message {
	r := rn.raft
	msgs := rd.Messages
	if len(rd.Entries) > 0 || !IsEmptyHardState(rd.HardState) || !IsEmptySnap(rd.Snapshot) || len(r.msgsAfterAppend) > 0 {
		m := pb.Message{
			Type:    pb.MsgStorageAppend,
			To:      LocalAppendThread,
			From:    r.id,
			Term:    rd.HardState.Term,
			Vote:    rd.HardState.Vote,
			Commit:  rd.HardState.Commit,
			Entries: rd.Entries,
		}
		resp := pb.Message{Type: pb.MsgStorageAppendResp, To: r.id, From: LocalAppendThread}
		if n := len(rd.Entries); n > 0 {
			resp.Index, resp.LogTerm = rd.Entries[n-1].Index, rd.Entries[n-1].Term
		}
		if !IsEmptySnap(rd.Snapshot) {
			snap := rd.Snapshot
			m.Snapshot = &snap
			resp.Snapshot = &pb.Snapshot{Metadata: snap.Metadata}
		}
		m.Responses = append(append(m.Responses, resp), r.msgsAfterAppend...)
		msgs = append(msgs, m)
	}
	if n := len(rd.CommittedEntries); n > 0 {
		msgs = append(msgs, pb.Message{
			Type:    pb.MsgStorageApply,
			To:      LocalApplyThread,
			From:    r.id,
			Entries: rd.CommittedEntries,
			Responses: []pb.Message{{
				Type:    pb.MsgStorageApplyResp,
				To:      r.id,
				From:    LocalApplyThread,
				Entries: rd.CommittedEntries,
			}},
		})
	}
	return msgs
}

// accept records what rd hands out, to be acknowledged at Advance.
func (rn *RawNode) accept(rd *Ready) {
	r := rn.raft
	if rd.SoftState != nil {
		rn.prevSoftSt = *rd.SoftState
	}
	if !rn.asyncWrite {
		for _, m := range r.msgsAfterAppend {
			if m.To == r.id {
				rn.ack.steps = append(rn.ack.steps, m)
			}
		}
	}
	r.msgs = nil
	r.readStates = nil
	// msgsAfterAppend was copied out (into rd.Messages or ack.steps): its
	// array can be reused.
	r.msgsAfterAppend = r.msgsAfterAppend[:0]
	r.raftLog.acceptUnstable()
	if !IsEmptyHardState(rd.HardState) {
		if invariants.Enabled {
			checkHardStateSuccession(r.logger, rn.prevHardSt, rd.HardState)
		}
		rn.prevHardSt = rd.HardState
	}
	if rn.asyncWrite {
		// Acknowledged by the storage threads' responses, not Advance.
		if n := len(rd.CommittedEntries); n > 0 {
			r.raftLog.acceptApplying(rd.CommittedEntries[n-1].Index, pb.EntriesSize(rd.CommittedEntries), false)
		}
		return
	}
	if n := len(rd.Entries); n > 0 {
		last := rd.Entries[n-1]
		rn.ack.stable = entryID{term: last.Term, index: last.Index}
	}
	if !IsEmptySnap(rd.Snapshot) {
		rn.ack.snapIndex = rd.Snapshot.Metadata.Index
	}
	if n := len(rd.CommittedEntries); n > 0 {
		size := pb.EntriesSize(rd.CommittedEntries)
		rn.ack.applied = rd.CommittedEntries[n-1].Index
		rn.ack.appliedSize += size
		rn.ack.appliedPayloadsSize += pb.PayloadsSize(rd.CommittedEntries)
		r.raftLog.acceptApplying(rn.ack.applied, size, true)
	}
	rn.outstanding = true
}

// handleStorageResponse takes a storage thread's response (with
// AsyncStorageWrites): a durable append or a finished apply.
func (r *raft) handleStorageResponse(m pb.Message) {
	switch m.Type {
	case pb.MsgStorageAppendResp:
		if m.Snapshot != nil {
			r.raftLog.stableSnapTo(m.Snapshot.Metadata.Index)
			r.appliedSnapshot(m.Snapshot.Metadata.Index)
		}
		if m.Index != 0 {
			// Ignored if the entry was overwritten meanwhile (its term
			// differs): that write no longer matters.
			r.raftLog.stableTo(entryID{term: m.LogTerm, index: m.Index})
		}
	case pb.MsgStorageApplyResp:
		if n := len(m.Entries); n > 0 {
			r.appliedTo(m.Entries[n-1].Index, pb.EntriesSize(m.Entries), pb.PayloadsSize(m.Entries))
		}
	}
}

// Advance tells the node that the last Ready was handled: its entries,
// hard state and snapshot are persisted, its messages sent, its snapshot and
// committed entries applied. The argument is not used (the node remembers
// what it handed out); it is there so that code written for etcd raft,
// which passes the Ready back, compiles unchanged. Calling Advance when no
// Ready is outstanding does nothing. It panics with AsyncStorageWrites,
// which acknowledges through storage messages instead.
func (rn *RawNode) Advance(_ Ready) {
	if rn.asyncWrite {
		panic("raft: Advance must not be called with AsyncStorageWrites")
	}
	if !rn.outstanding {
		return
	}
	ack := rn.ack
	rn.ack = readyAck{}
	rn.outstanding = false
	r := rn.raft
	if ack.snapIndex > 0 {
		r.raftLog.stableSnapTo(ack.snapIndex)
		r.appliedSnapshot(ack.snapIndex)
	}
	if ack.stable.index > 0 {
		r.raftLog.stableTo(ack.stable)
	}
	if ack.applied > 0 {
		r.appliedTo(ack.applied, ack.appliedSize, ack.appliedPayloadsSize)
	}
	for _, m := range ack.steps {
		if err := r.Step(m); err != nil {
			r.logger.Panicf("raft: stepping own message %s: %v", m.Type, err)
		}
	}
	// Keep the array for the next Ready's own messages.
	clear(ack.steps)
	rn.ack.steps = ack.steps[:0]
}

// appliedSnapshot records that the snapshot at index was applied.
func (r *raft) appliedSnapshot(index uint64) {
	r.raftLog.appliedSnapshotTo(index)
}

// appliedTo records that entries up to index were applied; size is their
// encoded size and payloads their payload size. A batch a snapshot has
// superseded meanwhile (the apply thread lagging the append thread) only
// returns its size budget.
func (r *raft) appliedTo(index, size, payloads uint64) {
	if !r.raftLog.appliedTo(index, size) {
		r.logger.Debugf("node %x: applied batch up to %d superseded by the snapshot at %d", r.id, index, r.raftLog.snapApplied)
		return
	}
	r.reduceUncommittedSize(payloads)
	r.maybeAutoLeave()
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
		r.logger.Panicf("raft: encoding the leave-joint change: %v", err)
	}
	m := pb.Message{Type: pb.MsgProp, From: r.id, Entries: []pb.Entry{{Type: pb.EntryConfChangeV2, Data: data}}}
	if err := r.Step(m); err != nil {
		r.logger.Debugf("node %x: proposing to leave the joint config %s failed (will retry): %v", r.id, r.trk.Config, err)
		return
	}
	r.logger.Infof("node %x: proposed leaving the joint config %s", r.id, r.trk.Config)
}

// ReadIndex asks for a linearizable read point. The answer comes in a
// later Ready as a ReadState carrying rctx (which must be unique to the
// request): once the application has applied up to its Index, a read of
// the state machine reflects every write acknowledged before ReadIndex was
// called. A request that cannot be served (no leader known, or leadership
// changed while it was pending) is dropped without an answer: retry it
// after a timeout, with the same or a new context.
func (rn *RawNode) ReadIndex(rctx []byte) {
	_ = rn.raft.Step(pb.Message{Type: pb.MsgReadIndex, Entries: []pb.Entry{{Data: rctx}}})
}

// ReportUnreachable tells the node that a message to id could not be
// delivered; the leader then probes id again instead of streaming to it.
func (rn *RawNode) ReportUnreachable(id uint64) {
	_ = rn.raft.Step(pb.Message{Type: pb.MsgUnreachable, From: id})
}

// SnapshotStatus is the outcome of sending a snapshot.
type SnapshotStatus int

const (
	// SnapshotFinish means the snapshot was delivered.
	SnapshotFinish SnapshotStatus = 1
	// SnapshotFailure means it was not.
	SnapshotFailure SnapshotStatus = 2
)

// ReportSnapshot tells the leader how sending a snapshot to id went. Call
// it for every MsgSnap sent.
func (rn *RawNode) ReportSnapshot(id uint64, status SnapshotStatus) {
	_ = rn.raft.Step(pb.Message{Type: pb.MsgSnapStatus, From: id, Reject: status == SnapshotFailure})
}

// TransferLeader asks the leader to hand leadership to transferee. On a
// follower the request is forwarded to the leader.
func (rn *RawNode) TransferLeader(transferee uint64) {
	_ = rn.raft.Step(pb.Message{Type: pb.MsgTransferLeader, From: transferee})
}

// ForgetLeader makes a follower forget its current leader, e.g. when the
// application knows it is gone; with CheckQuorum the follower may then
// grant votes at once. It does nothing on leaders and candidates, and
// nothing with ReadOnlyLeaseBased, whose leases it would break. See
// Node.ForgetLeader.
func (rn *RawNode) ForgetLeader() error {
	return rn.raft.Step(pb.Message{Type: pb.MsgForgetLeader})
}

// checkHardStateSuccession panics, naming the invariant, if next cannot
// follow prev as the persisted hard state: the term never decreases, the
// vote of a term never changes once cast, and the commit index never
// decreases.
func checkHardStateSuccession(logger Logger, prev, next pb.HardState) {
	switch {
	case next.Term < prev.Term:
		logger.Panicf("raft: invariant: hard state term(%d) < previous term(%d)", next.Term, prev.Term)
	case next.Term == prev.Term && prev.Vote != None && next.Vote != prev.Vote:
		logger.Panicf("raft: invariant: vote changed from %x to %x within term %d", prev.Vote, next.Vote, next.Term)
	case next.Commit < prev.Commit:
		logger.Panicf("raft: invariant: hard state commit(%d) < previous commit(%d)", next.Commit, prev.Commit)
	}
}
