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
	Lead      uint64 // the leader of the current term as far as this node knows, or None
	RaftState StateType
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
// Handle it in this order (the package documentation shows the whole loop):
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
// it. The node never writes into what it handed out, and an append to a
// handed-out slice cannot reach memory the node still uses, so the
// application may keep any of them for as long as it likes. With
// Config.ReuseReadyMessages, Messages is the exception: it is the
// application's only until Advance.
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
	// MsgSnap messages need a ReportSnapshot once sent (or failed). With
	// Config.ReuseReadyMessages, send or copy them before Advance.
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
	// the total payload size of those entries. Their encoded size is the
	// log's applyingEntsSize: without AsyncStorageWrites only accept adds
	// to it and only Advance takes from it, so at Advance it holds exactly
	// what the Readys since the last Advance handed out.
	applied             uint64
	appliedPayloadsSize uint64
	// steps are messages to this node itself, delivered once the writes
	// are done (its acknowledgements of its own entries, its votes).
	steps []pb.Message
}

// RawNode is the application's handle on a node: it feeds in ticks,
// messages and proposals, and hands out Ready batches. It is not safe for
// concurrent use: drive it from one goroutine (or use Node).
type RawNode struct {
	raft *raft
	// prevLead and prevState are the SoftState the last Ready reported.
	// The state takes a byte (the roles are 0 to 3), beside the flags:
	// an idle group's RawNode stays in the 112-byte size class.
	prevLead   uint64
	prevHardSt pb.HardState
	// ack is what the Readys handed out since the last Advance: nothing
	// (but maybe an empty steps array) when none is outstanding, so that
	// Advance then does nothing.
	ack readyAck

	asyncWrite bool
	prevState  uint8
	// readys counts the Readys handed out since the last Tick (up to 255):
	// a node that hands out none, or only a few (lightReadys), in a tick
	// releases its buffers at the next, if it holds any (holding: a Ready
	// was handed out since the last release), and keeps no message memory
	// past each of those Readys.
	readys  uint8
	holding bool
	// msgSlots is how many slots of the node's message memory the Ready
	// built last takes when it is handed out (see takeMsgs). An int32 so
	// that it fits beside the flags: an idle group's RawNode stays in its
	// size class.
	msgSlots int32
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
	r.reuseMsgs = c.ReuseReadyMessages
	rn.setPrevSoftState(r.softState())
	rn.prevHardSt = r.hardState()
	return rn, nil
}

// softStateChanged reports whether ss differs from the SoftState of the
// last Ready.
func (rn *RawNode) softStateChanged(ss SoftState) bool {
	return ss.Lead != rn.prevLead || ss.RaftState != StateType(rn.prevState)
}

// setPrevSoftState records ss as the SoftState of the last Ready.
func (rn *RawNode) setPrevSoftState(ss SoftState) {
	rn.prevLead, rn.prevState = ss.Lead, uint8(ss.RaftState)
}

// Bootstrap initializes a fresh node's log with a conf change entry adding
// each peer as a voter, committed at once, so that the cluster can elect a
// leader. The first Ready carries these entries; persist and apply them as
// usual. It fails if peers is empty or invalid (an ID listed twice, or 0),
// or if the node is not empty: its storage holds an entry or a snapshot,
// or it has a term or a vote (stored, or learned from a message; a node
// that took any entry has a term). A failed Bootstrap changes nothing.
func (rn *RawNode) Bootstrap(peers []Peer) error {
	if len(peers) == 0 {
		return errors.New("raft: must provide at least one peer to Bootstrap")
	}
	for _, p := range peers {
		if IsLocalMsgTarget(p.ID) {
			return fmt.Errorf("raft: cannot bootstrap with peer ID %x, which names a local storage thread", p.ID)
		}
	}
	r := rn.raft
	last, err := r.raftLog.storage.LastIndex()
	if err != nil {
		return err
	}
	if last != 0 {
		return errors.New("raft: can't bootstrap a nonempty Storage")
	}
	if r.Term != 0 || r.Vote != None {
		return fmt.Errorf("raft: can't bootstrap a node that has a term (%d) or a vote (%x)", r.Term, r.Vote)
	}
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
	// Checked before anything changes, so that a failed Bootstrap can be
	// retried.
	cfg, prs, err := r.confStateConfig(pb.ConfState{Voters: voters}, uint64(len(ents)))
	if err != nil {
		return err
	}
	// Pretend a leader of term 1 sent the membership: the entries are
	// committed and this node is a follower of term 1 with no leader.
	rn.prevHardSt = pb.HardState{}
	r.becomeFollower(1, None)
	r.raftLog.bootstrap(ents)
	r.raftLog.committed = uint64(len(ents))
	r.installConfig(cfg, prs)
	return nil
}

// Tick advances the node's logical clock by one tick. Election and
// heartbeat timeouts are counted in ticks.
func (rn *RawNode) Tick() {
	// A node that handed out no Ready, or only a few (lightReadys; not
	// with ReuseReadyMessages, whose chunk is reused), since the last
	// tick releases the buffers it keeps for the next Ready.
	if (rn.readys == 0 || rn.readys <= lightReadys && !rn.raft.reuseMsgs) && rn.holding {
		rn.ReleaseMemory()
	}
	rn.readys = 0
	rn.raft.advanceClock()
	rn.raft.tick()
	rn.raft.tickApplyHeldBack()
}

// lightReadys is how many Readys a node may hand out in one tick and still
// be treated as lightly loaded: it keeps no message memory past a Ready
// that hands out messages, as a group that only answers or sends
// heartbeats does. Each of its Readys then allocates the slots it hands
// out, but the node holds none between Readys: message chunks grow with
// traffic (to 64 slots, 10 KiB), and kept, one such chunk would be most
// of an idle group's heap. From the next Ready in the same tick on, the
// node keeps its chunk for the next Ready, as under load. Not with
// ReuseReadyMessages, whose chunks are reused and never dropped.
const lightReadys = 2

// ReleaseMemory drops the buffers a busy node keeps for reuse between
// Readys: the spare room of its unstable entry array once every entry is
// stable, and its spare message slots (also those for its messages to
// itself). The next Ready allocates them again.
// A node does this by itself at a Tick when no Ready, or only a few, were
// handed out since the previous one (a group that only sends or answers
// heartbeats), so an idle group holds only its state; an application
// that stops ticking an idle group (to quiesce it) may call it then. It
// changes nothing the node will do.
func (rn *RawNode) ReleaseMemory() {
	rn.holding = false
	r := rn.raft
	r.msgChunk = 0
	if len(r.msgs) == 0 {
		r.msgs = nil
	}
	if len(r.msgsAfterAppend) == 0 {
		r.msgsAfterAppend = nil
	}
	if len(rn.ack.steps) == 0 {
		rn.ack.steps = nil
	}
	r.raftLog.unstable.release()
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
	rn.raft.advanceClock()
	rn.raft.electionElapsed = saturatingAdd(rn.raft.electionElapsed, 1)
}

// Campaign makes this node start an election now (a pre-election first,
// with PreVote). With ReadOnlyLeaseBased reads it does nothing on a node
// that heard from a leader, or started, less than an election timeout ago
// (a lone voter too: a leader of an older configuration may count on it):
// the leader's lease rests on no voter voting then (see ForgetLeader). Its
// own election timeout elects it after that.
func (rn *RawNode) Campaign() error {
	return rn.raft.Step(pb.Message{Type: pb.MsgHup})
}

// Propose proposes data to be appended to the log. It returns
// ErrProposalDropped when the proposal cannot be taken now; a nil error
// does not mean the proposal will commit (leadership may change): watch
// CommittedEntries.
func (rn *RawNode) Propose(data []byte) error {
	r := rn.raft
	scratch := &r.rare().propScratch
	scratch[0] = pb.Entry{Data: data}
	err := r.Step(pb.Message{
		Type:    pb.MsgProp,
		From:    r.id,
		Entries: scratch[:1:1],
	})
	scratch[0] = pb.Entry{}
	return err
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
// changes nothing. A message must be addressed to this node, except a
// MsgProp, which may leave To at None, and From too (a batch of proposals
// the application steps as its own). With AsyncStorageWrites, the Responses
// of the storage messages are stepped here too, in the order given; one
// that answers no work the node handed out is refused with
// ErrInvalidMessage. Only this RawNode's own: responses handed out before
// a restart must not be stepped into the new RawNode (see
// Config.AsyncStorageWrites). Step cannot tell a copy that answers
// exactly the work outstanding from the storage thread's own answer: a
// transport should refuse the storage threads' IDs and MsgForgetLeader
// (Step takes it as this application's request) from peers, as kvstore
// and multiraft do.
func (rn *RawNode) Step(m pb.Message) error {
	if rn.asyncWrite && m.To == rn.raft.id {
		// With AsyncStorageWrites the application steps back the
		// responses of its storage threads and the node's messages to
		// itself.
		switch {
		case m.From == LocalAppendThread && m.Type == pb.MsgStorageAppendResp,
			m.From == LocalApplyThread && m.Type == pb.MsgStorageApplyResp:
			return rn.raft.handleStorageResponse(m)
		case m.From == rn.raft.id && (m.Type == pb.MsgAppResp || m.Type == pb.MsgVoteResp || m.Type == pb.MsgPreVoteResp):
			return rn.raft.stepSelfResponse(m)
		}
	}
	if m.Type == pb.MsgProp && m.From == None {
		// A batch of proposals the application steps itself, as etcd raft
		// takes it: from this node.
		m.From = rn.raft.id
	}
	if err := validateMessage(rn.raft.id, &m); err != nil {
		return err
	}
	if IsResponseMsg(m.Type) && !rn.raft.isMember(m.From) {
		return ErrStepPeerNotFound
	}
	if err := rn.raft.validateAgainstLog(&m); err != nil {
		return err
	}
	return rn.raft.Step(m)
}

// HasReady reports whether Ready would return any work.
func (rn *RawNode) HasReady() bool {
	r := rn.raft
	if rn.softStateChanged(r.softState()) {
		return true
	}
	if hs := r.hardState(); !IsEmptyHardState(hs) && hs != rn.prevHardSt {
		return true
	}
	return r.raftLog.hasNextUnstableSnapshot() ||
		len(r.msgs) > 0 || len(r.msgsAfterAppend) > 0 || len(r.readStates()) > 0 ||
		r.raftLog.hasNextUnstableEnts() ||
		r.hasNextCommittedEnts(!rn.asyncWrite)
}

// Ready returns the next batch of work. Handle it as Ready's documentation
// says, then call Advance.
func (rn *RawNode) Ready() (rd Ready) {
	rn.readyWithoutAccept(&rd)
	rn.accept(&rd)
	return rd
}

// readyWithoutAccept builds the next Ready without handing it out: it
// changes nothing the node would miss, so Node can rebuild it until the
// application takes it. It fills rd (which it first empties) rather than
// returning a Ready: a Ready is large, and Ready would copy it once more.
func (rn *RawNode) readyWithoutAccept(rd *Ready) {
	r := rn.raft
	*rd = Ready{
		Entries:          r.raftLog.nextUnstableEnts(),
		CommittedEntries: r.nextCommittedEnts(!rn.asyncWrite),
		ReadStates:       r.readStates(),
	}
	if ss := r.softState(); rn.softStateChanged(ss) {
		// Allocated only when it changed: a SoftState taken by address
		// on every Ready would escape to the heap each time.
		rd.SoftState = &SoftState{Lead: ss.Lead, RaftState: ss.RaftState}
	}
	if hs := r.hardState(); hs != rn.prevHardSt {
		rd.HardState = hs
	}
	if s := r.raftLog.nextUnstableSnapshot(); s != nil {
		rd.Snapshot = *s
	}
	rd.MustSync = MustSync(r.hardState(), rn.prevHardSt, len(rd.Entries))
	if rn.asyncWrite {
		rd.Messages = rn.storageMessages(rd)
	} else {
		rd.Messages = rn.readyMessages()
	}
}

// readyMessages returns the messages of a Ready without
// AsyncStorageWrites, in place (see handout.go): r.msgs, then the
// acknowledgements and votes to peers. The contract sends Messages only
// after persisting, so those travel with the Ready; the ones to this node
// itself wait for Advance (see accept).
func (rn *RawNode) readyMessages() []pb.Message {
	r := rn.raft
	n := 0
	for i := range r.msgsAfterAppend {
		if r.msgsAfterAppend[i].To != r.id {
			n++
		}
	}
	k := len(r.msgs)
	out := r.msgRoom(n)
	for i := range r.msgsAfterAppend {
		if m := &r.msgsAfterAppend[i]; m.To != r.id {
			out[k] = *m
			k++
		}
	}
	rn.msgSlots = int32(len(out))
	if len(out) == 0 {
		return nil
	}
	return out
}

// maxReusedMessages bounds the internal message buffers kept between
// Readys: one that grew past it in a burst is dropped rather than pinned
// for the node's lifetime.
const maxReusedMessages = 256

// reuseMessages empties an internal buffer of acknowledgements and votes
// for reuse, or drops it if it is large. It is not cleared: such messages
// carry no entries, snapshot or responses (send checks it), so their old
// copies pin nothing but, at most, a vote's campaign context.
func reuseMessages(ms []pb.Message) []pb.Message {
	if cap(ms) > maxReusedMessages {
		return nil
	}
	return ms[:0]
}

// takeOwnMessages moves the messages to this node itself from
// r.msgsAfterAppend to steps, where they wait for Advance. Usually (a
// leader acknowledging its own entries) they are all of them and steps is
// empty: the two buffers then swap rather than copy.
func (r *raft) takeOwnMessages(steps []pb.Message) []pb.Message {
	own := 0
	for i := range r.msgsAfterAppend {
		if r.msgsAfterAppend[i].To == r.id {
			own++
		}
	}
	if own > 0 && own == len(r.msgsAfterAppend) && len(steps) == 0 {
		steps, r.msgsAfterAppend = r.msgsAfterAppend, steps
		return steps
	}
	for i := range r.msgsAfterAppend {
		if m := &r.msgsAfterAppend[i]; m.To == r.id {
			steps = append(steps, *m)
		}
	}
	return steps
}

// accept records what rd hands out, to be acknowledged at Advance.
func (rn *RawNode) accept(rd *Ready) {
	r := rn.raft
	if rd.SoftState != nil {
		rn.setPrevSoftState(*rd.SoftState)
	}
	if !rn.asyncWrite {
		rn.ack.steps = r.takeOwnMessages(rn.ack.steps)
	}
	rn.readys = min(rn.readys, 254) + 1
	rn.holding = true
	if invariants.Enabled {
		r.checkLeaderOnlyState()
	}
	// r.msgs was handed out in place; msgsAfterAppend was copied out (to
	// the Ready, or ack.steps) and is reused.
	r.takeMsgs(int(rn.msgSlots))
	if rn.msgSlots > 0 && rn.readys <= lightReadys && !r.reuseMsgs && len(r.msgs) == 0 {
		// Lightly loaded: the chunk is left to the messages handed out.
		r.msgs = nil
		r.msgChunk = 0
	}
	rn.msgSlots = 0
	r.msgsAfterAppend = reuseMessages(r.msgsAfterAppend)
	if r.seldom != nil {
		r.seldom.readStates = nil
	}
	r.raftLog.acceptUnstable()
	if !IsEmptyHardState(rd.HardState) {
		if invariants.Enabled {
			checkHardStateSuccession(r.logger(), rn.prevHardSt, rd.HardState)
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
		rn.ack.appliedPayloadsSize += pb.PayloadsSize(rd.CommittedEntries)
		r.raftLog.acceptApplying(rn.ack.applied, size, true)
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
	ack := rn.ack
	rn.ack = readyAck{}
	r := rn.raft
	if ack.snapIndex > 0 {
		r.raftLog.stableSnapTo(ack.snapIndex)
		r.appliedSnapshot(ack.snapIndex)
	}
	if ack.stable.index > 0 {
		r.raftLog.stableTo(ack.stable)
	}
	if ack.applied > 0 {
		r.appliedTo(ack.applied, r.raftLog.applyingEntsSize, ack.appliedPayloadsSize)
		r.staleApplyReported(ack.applied)
	}
	for _, m := range ack.steps {
		if err := r.Step(m); err != nil {
			r.logger().Panicf("raft: stepping own message %s: %v", m.Type, err)
		}
	}
	// Keep the array for the next Ready's own messages.
	rn.ack.steps = reuseMessages(ack.steps)
	if r.reuseMsgs {
		r.reuseHandedOut()
	}
}

// ReadIndex asks for a linearizable read point. The answer comes in a
// later Ready as a ReadState carrying rctx (which must be unique to the
// request, and not empty: a heartbeat round confirms a read by echoing its
// context, and an empty one confirms nothing, as in etcd raft): once the application has applied up to its Index, a read of
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
// follower the request is forwarded to the leader. TransferLeader(None)
// names no transferee and does nothing.
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

// ApplyConfChange applies a committed conf change entry's change to the
// node's configuration and returns the resulting ConfState, which the
// application stores with its next snapshot. Call it for every conf change
// entry in CommittedEntries, in order.
//
// A change that is invalid for the current configuration (e.g. it would
// remove every voter, or names LocalAppendThread or LocalApplyThread as a
// node) is ignored and the unchanged ConfState returned:
// every node reaches the same decision from the same log, so ignoring it
// keeps them consistent.
//
// A change from entries handed out before a snapshot that the node
// installed since (a leader's MsgSnap stepped while the application was
// still applying them) is ignored too, and the snapshot's ConfState
// returned: the snapshot's configuration already holds that change and
// every later one, and applying it again would leave this node with a
// configuration no other node has. This holds until the snapshot is
// applied (the Advance of the Ready carrying it, or with
// AsyncStorageWrites the response of the MsgStorageAppend carrying it) and
// the entries handed out before it are reported applied (Advance, or
// their MsgStorageApply's response); with AsyncStorageWrites the entries
// after the snapshot are handed out only then. Apply every entry's conf
// change before reporting its batch applied.
func (rn *RawNode) ApplyConfChange(cc pb.ConfChangeI) *pb.ConfState {
	if id, ok := changesLocalThread(cc.AsV2()); ok {
		// No leader of this version appends such a change; one from a log
		// written elsewhere is ignored, as every node of this version
		// ignores it.
		rn.raft.logger().Errorf("node %x: ignoring conf change naming the local storage thread ID %x as a node", rn.raft.id, id)
		cs := rn.raft.confState()
		return &cs
	}
	cs := rn.raft.applyConfChange(cc.AsV2())
	return &cs
}
