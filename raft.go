package raft

import (
	"fmt"
	"math/rand/v2"

	"github.com/raftcore/raft/invariants"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// StateType is a node's role.
type StateType uint64

// The roles of a node. A pre-candidate runs a pre-election (PreVote) before
// becoming a candidate.
const (
	StateFollower StateType = iota
	StateCandidate
	StateLeader
	StatePreCandidate
)

var stateNames = [...]string{"StateFollower", "StateCandidate", "StateLeader", "StatePreCandidate"}

func (st StateType) String() string {
	if int(st) < len(stateNames) {
		return stateNames[st]
	}
	return fmt.Sprintf("StateType(%d)", uint64(st))
}

// MarshalJSON renders the role by name.
func (st StateType) MarshalJSON() ([]byte, error) {
	return []byte(`"` + st.String() + `"`), nil
}

// seldomState is the part of a node's state that most nodes never need,
// behind one pointer.
type seldomState struct {
	// propScratch holds the entry of a local proposal (RawNode.Propose)
	// while it is stepped, so that proposing allocates nothing. Nothing
	// keeps a proposal's Entries after Step except forwarding, which
	// copies them (forwardProposal). Here, so that a follower that never
	// proposes carries none.
	propScratch [1]pb.Entry
	// forwarded watches the proposals this follower forwarded with
	// ProposeWithResult (see proposal_forwarded.go).
	forwarded *forwardedProposals
	// removed remembers the last peers a configuration change applied
	// here took out (see noteRemovals).
	removed []uint64
	// readStates are read-index answers for the application, until the
	// next Ready hands them out.
	readStates []ReadState
	// snapApplied is the index of the newest snapshot applied. With
	// AsyncStorageWrites the apply thread may report a batch handed out
	// before that snapshot after it: such a batch ends below snapApplied
	// and is superseded by the snapshot.
	snapApplied uint64
	// restored is the last snapshot installed from a leader's message,
	// until the application has caught up with it (see staleConfChange).
	restored restoredSnapshot
	// supersededWrites are the snapshots handed out for writing that a
	// newer snapshot replaced before their write was reported, oldest
	// first (see noteSupersededWrite).
	supersededWrites []entryID
	// writeEpoch counts the times the log replaced entries it had handed
	// out for writing, or was replaced by a snapshot (see
	// newWriteEpoch).
	writeEpoch uint64
}

// rare returns the node's seldomState, allocating it at the first use.
func (r *raft) rare() *seldomState {
	if r.seldom == nil {
		r.seldom = &seldomState{}
	}
	return r.seldom
}

// addReadState queues a read-index answer for the next Ready.
func (r *raft) addReadState(rs ReadState) {
	s := r.rare()
	s.readStates = append(s.readStates, rs)
}

// readStates returns the read-index answers waiting for the next Ready, or
// nil.
func (r *raft) readStates() []ReadState {
	if r.seldom == nil {
		return nil
	}
	return r.seldom.readStates
}

// forwarded returns the proposals this follower watches, or nil.
func (r *raft) forwarded() *forwardedProposals {
	if r.seldom == nil {
		return nil
	}
	return r.seldom.forwarded
}

// raft is the protocol state of one node. It is not safe for concurrent
// use; RawNode (and Node, with its goroutine) serialize access.
type raft struct {
	id uint64

	// Term and Vote are persisted in HardState (with the log's commit).
	// Invariant: Vote is cast at most once per Term.
	Term uint64
	Vote uint64

	raftLog *raftLog

	maxMsgSize         uint64
	maxUncommittedSize uint64
	// maxInflight and maxInflightBytes size a new leader's Inflights.
	maxInflight      int
	maxInflightBytes uint64

	// conf is the configuration, which every role knows (with autoLeave).
	conf configuration
	// trk is the bookkeeping of a leader or (pre-)candidate: the
	// configuration in the tracker's form, a candidate's votes, a
	// leader's Progress of its peers. A follower has none: trk is nil.
	trk *tracker.ProgressTracker

	state StateType
	// lead is the leader of the current term as far as this node knows.
	lead uint64
	// leaderState is what only a leader keeps (its fields are promoted, so
	// r.termStart means r.leaderState.termStart): becomeLeader allocates it
	// and every other role change drops it, so that a follower carries
	// none. Invariant: leaderState != nil exactly when state is
	// StateLeader.
	*leaderState

	// ticks counts this node's ticks since it started.
	ticks uint64

	// msgs are messages that may be sent at once, queued in memory that
	// the next Ready hands out as it is (see handout.go).
	msgs []pb.Message
	// msgChunk is the length of the last chunk msgs was given.
	msgChunk int32
	// voteLease counts down the ticks left of this node's promise to the
	// leader it last heard from (an append, heartbeat or snapshot of the
	// leader of its term): with CheckQuorum it grants no vote or pre-vote
	// (but to a leader transfer's campaign) until an election timeout has
	// passed since then, whatever its term or role became meanwhile (see
	// inVoteLease). A leader's lease for ReadOnlyLeaseBased reads rests on
	// it. A node restarting with lease-based reads starts with a full
	// promise: it may have made one before it stopped. 32 bits, with the
	// promise capped to fit (leaseTicks), so that it shares msgChunk's
	// word and raft stays within 256 bytes (TestRaftSize).
	voteLease uint32
	// msgsAfterAppend must wait until the entries and hard state written
	// with them are durable: acknowledgements and votes. Those addressed to
	// this node itself are stepped back in once the write is done.
	msgsAfterAppend []pb.Message
	// seldom holds what most nodes never need (nil until the first use).
	seldom *seldomState

	// autoLeave is the configuration's AutoLeave.
	autoLeave bool
	// reuseMsgs is Config.ReuseReadyMessages (see reuseHandedOut). Here
	// among the flags, which share one word.
	reuseMsgs bool
	// leaseReads is set for Config.ReadOnlyOption ReadOnlyLeaseBased.
	leaseReads                bool
	checkQuorum               bool
	preVote                   bool
	disableProposalForwarding bool
	disableConfChangeValid    bool
	stepDownOnRemoval         bool

	heartbeatTimeout int
	electionTimeout  int
	// snapshotTimeout is how long a peer may stay in StateSnapshot without
	// news before the leader probes it again.
	snapshotTimeout int
	// randomizedElectionTimeout is drawn from
	// [electionTimeout, 2*electionTimeout) at every role change.
	randomizedElectionTimeout int
	// electionElapsed counts ticks since the last election timeout (or
	// since hearing from the leader, for a follower). A leader uses it for
	// check-quorum and leader transfer timeouts.
	electionElapsed int

	// rand is the source of the randomized election timeouts:
	// Config.RandomSource or, by default, a PCG of the node's own.
	rand rand.Source
}

// logger returns the node's logger, which its log holds.
func (r *raft) logger() Logger { return r.raftLog.unstable.logger }

// leaderState is the part of a node's state that only a leader keeps.
type leaderState struct {
	// termStart is the index of the empty entry the leader appended on
	// taking office: every entry from there to the last index is of the
	// current term, every one before it of an earlier term (no other node
	// leads this term, and a leader never truncates its log).
	termStart uint64
	// pendingConfIndex is the index of the last conf change the leader
	// appended; another may be proposed once it is applied.
	pendingConfIndex uint64
	// pendingLeaveIndex is the index of a conf change in the leader's log
	// (appended by it, or unapplied when it took office) that takes it out
	// of the incoming voters; until it is applied the leader takes no
	// other proposals.
	pendingLeaveIndex uint64
	// uncommittedSize is the payload size of the leader's uncommitted
	// entries (bounded by maxUncommittedSize).
	uncommittedSize uint64
	// heartbeatElapsed counts ticks since the last heartbeat round.
	heartbeatElapsed int
	// leadTransferee is the node the leader is handing leadership to, or
	// None.
	leadTransferee uint64

	// readOnly holds the read-index requests being confirmed;
	// pendingReadIndexMessages are requests held until an entry of the
	// leader's term commits.
	readOnly                 readOnly
	pendingReadIndexMessages []pb.Message
	// leaseAcks maps a peer to the tick at which the leader sent the
	// latest heartbeat the peer acknowledged (ReadOnlyLeaseBased).
	leaseAcks map[uint64]uint64
	// leaseGivenUp is set when the leader sends a timeout-now (a leader
	// transfer's): it holds no lease for the rest of its term, even once
	// the transfer is abandoned. The transferee's campaign ignores the
	// followers' promises (inVoteLease), and its timeout-now may still be
	// in flight, or be sent again (handleHeartbeatResponse), after the
	// abort. Reads are confirmed with a heartbeat round instead; a new
	// leadership starts with a new leaderState, and so without it. A
	// transfer that has not sent one yet leaves the lease as it is: no
	// campaign that ignores the promises can have started.
	leaseGivenUp bool
	// queuedAppends notes, per peer, the append queued for it since the
	// last Ready that a later one may extend (see raft_coalesce.go).
	queuedAppends []queuedAppend
}

// checkLeaderOnlyState panics unless the leader-only state (leaderState,
// the peers' Progress) exists exactly while this node leads, the tracker
// exactly while it leads or campaigns, and the tracker's configuration is
// the node's.
func (r *raft) checkLeaderOnlyState() {
	leader := r.state == StateLeader
	var prs tracker.ProgressMap
	if r.trk != nil {
		prs = r.trk.Progress
	}
	if (r.leaderState != nil) != leader || (r.trk != nil) != (r.state != StateFollower) || (prs != nil) != leader {
		r.logger().Panicf("raft: invariant: %s with leader state %t, tracker %t and progress of %d peers",
			r.state, r.leaderState != nil, r.trk != nil, len(prs))
	}
	if r.trk != nil && !r.conf.matches(r.trk.Config, r.autoLeave) {
		r.logger().Panicf("raft: invariant: the tracker's configuration %s differs from the node's %+v", r.trk.Config, r.conf)
	}
}

// newRaft builds the protocol state from a validated config, restoring the
// hard state and configuration from Storage.
func newRaft(c *Config) (*raft, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	raftlog := newLogWithSize(c.Storage, c.Logger, c.MaxCommittedSizePerReady)
	hs, cs, err := c.Storage.InitialState()
	if err != nil {
		return nil, fmt.Errorf("raft: reading the initial state from storage: %w", err)
	}
	r := &raft{
		id:                        c.ID,
		lead:                      None,
		raftLog:                   raftlog,
		maxMsgSize:                c.MaxSizePerMsg,
		maxUncommittedSize:        c.MaxUncommittedEntriesSize,
		maxInflight:               c.MaxInflightMsgs,
		maxInflightBytes:          c.MaxInflightBytes,
		electionTimeout:           c.ElectionTick,
		heartbeatTimeout:          c.HeartbeatTick,
		snapshotTimeout:           c.SnapshotTimeout,
		checkQuorum:               c.CheckQuorum,
		preVote:                   c.PreVote,
		disableProposalForwarding: c.DisableProposalForwarding,
		disableConfChangeValid:    c.DisableConfChangeValidation,
		stepDownOnRemoval:         c.StepDownOnRemoval,
		leaseReads:                c.ReadOnlyOption == ReadOnlyLeaseBased,
	}
	r.rand = c.RandomSource
	if r.rand == nil {
		r.rand = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	if err := r.restoreConfState(cs); err != nil {
		return nil, fmt.Errorf("raft: restoring the configuration from storage: %w", err)
	}
	if !IsEmptyHardState(hs) {
		if err := r.loadState(hs); err != nil {
			return nil, err
		}
	}
	// A node restarting into a cluster that serves lease reads does not
	// know whether it promised a leader its vote: it keeps the promise for
	// an election timeout, as if it had just heard from a leader. Also at
	// term 0 with AsyncStorageWrites, whose heartbeat answers leave before
	// the term they answer in is durable: a node may have acknowledged a
	// leader's heartbeat and lost its term in a crash.
	if c.CheckQuorum && c.ReadOnlyOption == ReadOnlyLeaseBased && (hs.Term > 0 || c.AsyncStorageWrites) {
		r.voteLease = r.leaseTicks()
	}
	if c.Applied > 0 {
		if last := r.raftLog.lastIndex(); c.Applied > last {
			return nil, fmt.Errorf("raft: config: Applied %d is past the last index %d in storage", c.Applied, last)
		}
		if c.Applied > r.raftLog.committed {
			// The state machine applied entries whose commit the storage
			// had not recorded yet (with AsyncStorageWrites the commit
			// index is written after the entries, and applying needs only
			// the entries): they were committed, so take the state
			// machine's word.
			r.logger().Infof("node %x: applied index %d is past the stored commit %d; committing to it", c.ID, c.Applied, r.raftLog.committed)
			r.raftLog.commitTo(c.Applied)
		}
		if c.Applied < r.raftLog.applied {
			return nil, fmt.Errorf("raft: config: Applied %d is before the storage's snapshot index %d", c.Applied, r.raftLog.applied)
		}
		r.raftLog.appliedTo(c.Applied, 0, 0)
	}
	r.becomeFollower(r.Term, None)

	r.logger().Infof("node %x starting: voters=%v term=%d commit=%d applied=%d last=%d lastTerm=%d",
		r.id, r.conf.voterIDs(), r.Term, r.raftLog.committed, r.raftLog.applied,
		r.raftLog.lastIndex(), r.raftLog.lastEntryID().term)
	return r, nil
}

// loadState restores the hard state read from storage. A commit index past
// the stored log means the storage lost entries it had acknowledged.
func (r *raft) loadState(hs pb.HardState) error {
	if hs.Commit > r.raftLog.lastIndex() {
		return fmt.Errorf("raft: storage is corrupt: hard state commit %d past the last index %d",
			hs.Commit, r.raftLog.lastIndex())
	}
	// A commit index below the snapshot's is merely stale (the snapshot
	// was taken of applied, hence committed, state after the hard state was
	// last written, as can happen with AsyncStorageWrites): keep the
	// snapshot's.
	r.raftLog.committed = max(r.raftLog.committed, hs.Commit)
	r.Term = hs.Term
	r.Vote = hs.Vote
	return nil
}

func (r *raft) hardState() pb.HardState {
	return pb.HardState{Term: r.Term, Vote: r.Vote, Commit: r.raftLog.committed}
}

func (r *raft) softState() SoftState { return SoftState{Lead: r.lead, RaftState: r.state} }

// send queues m, filling in From and (for all but forwarded proposals and
// read requests, which travel without a term) Term.
func (r *raft) send(m pb.Message) {
	if m.From == None {
		m.From = r.id
	}
	switch m.Type {
	case pb.MsgVote, pb.MsgVoteResp, pb.MsgPreVote, pb.MsgPreVoteResp:
		// The term is set by the caller: a pre-vote carries the term the
		// candidate would campaign in, and a granted pre-vote response
		// echoes it.
		if m.Term == 0 {
			r.logger().Panicf("raft: %s must carry a term", m.Type)
		}
	case pb.MsgProp, pb.MsgReadIndex:
		// Forwarded as if local to the leader: no term.
	default:
		m.Term = r.Term
	}
	switch {
	case m.Type == pb.MsgAppResp || m.Type == pb.MsgVoteResp || m.Type == pb.MsgPreVoteResp || mustPersistBeforeVoteRequest(m):
		// Acknowledgements and votes promise something about durable
		// state: they leave only once the current write is done.
		if invariants.Enabled && (m.Entries != nil || m.Snapshot != nil || m.Responses != nil) {
			// Their buffers are reused without clearing (reuseMessages).
			r.logger().Panicf("raft: invariant: %s to %x carries entries, a snapshot or responses", m.Type, m.To)
		}
		r.msgsAfterAppend = append(r.msgsAfterAppend, m)
	case m.To == r.id:
		r.logger().Panicf("raft: message to self must be an acknowledgement or vote, got %s", m.Type)
	default:
		out := r.msgRoom(1)
		out[len(out)-1] = m
		// Not out itself, which is capped: the chunk's room stays.
		r.msgs = r.msgs[:len(out)]
	}
}

// mustPersistBeforeVoteRequest reports whether m is a vote request, which
// leaves only once the candidate's term and self-vote are durable. Sent
// earlier (as AsyncStorageWrites would otherwise allow), a candidate could
// win on its peers' votes, crash before its own write landed, restart in
// the previous term and win the same term a second time, with a different
// log: two entries under one index and term.
func mustPersistBeforeVoteRequest(m pb.Message) bool {
	return m.Type == pb.MsgVote && !mutationEarlyVoteRequest
}

// reset prepares the node for a new role in term.
func (r *raft) reset(term uint64) {
	if invariants.Enabled && term < r.Term {
		r.logger().Panicf("raft: invariant: term(%d) going back to %d", r.Term, term)
	}
	if r.Term != term {
		r.Term = term
		r.Vote = None
	}
	r.lead = None
	r.electionElapsed = 0
	r.resetRandomizedElectionTimeout()
	r.abortLeaderTransfer()
	// Votes and progress belong to one election and one leadership.
	r.trk = nil
	// Reads in progress are dropped (their requesters retry), and a lease
	// starts afresh with the next leadership.
	r.leaderState = nil
}

func (r *raft) becomeFollower(term, lead uint64) {
	r.reset(term)
	r.lead = lead
	r.state = StateFollower
	r.logger().Infof("node %x: follower at term %d", r.id, r.Term)
}

func (r *raft) becomeCandidate() {
	if r.state == StateLeader {
		r.logger().Panicf("raft: invalid transition [leader -> candidate]")
	}
	r.reset(r.Term + 1)
	r.trk = r.newTracker()
	r.Vote = r.id
	r.state = StateCandidate
	r.logger().Infof("node %x: candidate at term %d", r.id, r.Term)
}

func (r *raft) becomePreCandidate() {
	if r.state == StateLeader {
		r.logger().Panicf("raft: invalid transition [leader -> pre-candidate]")
	}
	// A pre-candidate keeps its term and vote: nothing durable changes
	// until the pre-election is won.
	r.trk = r.newTracker()
	r.lead = None
	r.state = StatePreCandidate
	r.logger().Infof("node %x: pre-candidate at term %d", r.id, r.Term)
}

func (r *raft) becomeLeader() {
	if r.state == StateFollower {
		r.logger().Panicf("raft: invalid transition [follower -> leader]")
	}
	r.reset(r.Term)
	r.leaderState = &leaderState{}
	r.trk = r.newTracker()
	r.trk.Progress = r.membersProgress(true)
	r.lead = r.id
	r.state = StateLeader
	// The leader replicates to itself through its own storage writes; its
	// progress is in the replicate state from the start.
	if pr := r.trk.Progress[r.id]; pr != nil {
		pr.BecomeReplicate()
		pr.RecentActive = true
	}
	// Conservatively treat any conf change in the log as pending until it
	// is applied.
	r.pendingConfIndex = r.raftLog.lastIndex()
	r.pendingLeaveIndex = r.unappliedLeaveIndex()

	// An empty entry of the new term: once it commits, so does everything
	// before it (Raft §5.4.2), and the leader learns its commit index.
	r.termStart = r.raftLog.lastIndex() + 1
	if !r.appendEntry(pb.Entry{}) {
		r.logger().Panicf("raft: empty entry was dropped")
	}
	r.logger().Infof("node %x: leader at term %d", r.id, r.Term)
}

// advanceClock counts one tick of the node's clock, whatever its role and
// whether or not the tick is quiesced.
func (r *raft) advanceClock() {
	r.ticks++
	if r.voteLease > 0 {
		r.voteLease--
	}
}

// tick advances the role's clock: the leader's heartbeat (and quorum
// check), everyone else's election timeout. A switch rather than a
// function field set at each role change: the method value would be an
// allocation per group and per change of role.
func (r *raft) tick() {
	if r.state == StateLeader {
		r.tickHeartbeat()
		return
	}
	r.tickElection()
}

// tickElection is the tick of followers and candidates: campaign once the
// randomized election timeout has passed without hearing from a leader.
func (r *raft) tickElection() {
	r.electionElapsed++
	if r.pastElectionTimeout() && r.promotable() {
		r.electionElapsed = 0
		if err := r.Step(pb.Message{From: r.id, Type: pb.MsgHup}); err != nil {
			r.logger().Debugf("campaign after election timeout: %v", err)
		}
	}
}

// tickHeartbeat is the leader's tick: heartbeats every heartbeatTimeout,
// and every electionTimeout a quorum check and the leader transfer timeout.
func (r *raft) tickHeartbeat() {
	r.heartbeatElapsed++
	r.electionElapsed++
	if r.electionElapsed >= r.electionTimeout {
		r.electionElapsed = 0
		if r.checkQuorum {
			if err := r.Step(pb.Message{From: r.id, Type: pb.MsgCheckQuorum}); err != nil {
				r.logger().Debugf("periodic leader step: %v", err)
			}
		}
		if r.state == StateLeader && r.leadTransferee != None {
			r.abortLeaderTransfer()
		}
	}
	if r.state != StateLeader {
		return
	}
	r.checkSnapshotStalls()
	r.maybeAutoLeave() // retried here if the proposal after applying was dropped
	if r.heartbeatElapsed >= r.heartbeatTimeout {
		r.heartbeatElapsed = 0
		if err := r.Step(pb.Message{From: r.id, Type: pb.MsgBeat}); err != nil {
			r.logger().Debugf("periodic leader step: %v", err)
		}
	}
}

func (r *raft) pastElectionTimeout() bool {
	return r.electionElapsed >= r.randomizedElectionTimeout
}

func (r *raft) resetRandomizedElectionTimeout() {
	// Saturating: ElectionTick may be close to the largest int.
	// rand.Rand holds nothing but its source, so a node keeps the source
	// alone and wraps it here (on the stack) for the draw.
	r.randomizedElectionTimeout = saturatingAdd(r.electionTimeout, rand.New(r.rand).IntN(r.electionTimeout))
}

// promotable reports whether this node may campaign: it is a voter in the
// current config and has no snapshot waiting to be written.
func (r *raft) promotable() bool {
	return r.isVoter(r.id) && !r.raftLog.hasNextOrInProgressSnapshot()
}

// Step is the entry point of every message, local or from a peer. It
// applies the term rules (Raft §5.1) and hands the message to the current
// role's step function.
func (r *raft) Step(m pb.Message) error {
	if (m.Type == pb.MsgPreVote || m.Type == pb.MsgVote) && r.refusesAsRemoved(m) {
		r.refuseRemovedCampaigner(m)
		return nil
	}
	if handled, err := r.stepTerm(m); handled {
		return err
	}
	switch m.Type {
	case pb.MsgHup:
		if r.preVote {
			r.hup(campaignPreElection)
		} else {
			r.hup(campaignElection)
		}
		return nil
	case pb.MsgVote, pb.MsgPreVote:
		r.handleVoteRequest(m)
		return nil
	}
	// The role's handler, by a switch rather than a function field: one
	// field less in every group.
	switch r.state {
	case StateLeader:
		return stepLeader(r, m)
	case StateFollower:
		return stepFollower(r, m)
	default:
		return stepCandidate(r, m)
	}
}

// stepTerm compares m's term with ours. A higher term makes this node a
// follower (with exceptions for pre-votes and leases); a lower term is
// answered or ignored. It reports whether m was fully handled.
func (r *raft) stepTerm(m pb.Message) (bool, error) {
	switch {
	case m.Term == 0:
		// Local message (or a forwarded proposal / read request).
		return false, nil
	case m.Term > r.Term:
		return r.stepHigherTerm(m), nil
	case m.Term < r.Term:
		r.stepLowerTerm(m)
		return true, nil
	}
	return false, nil
}

// stepHigherTerm handles a message from a later term. It reports whether
// the message is dropped.
func (r *raft) stepHigherTerm(m pb.Message) bool {
	if (m.Type == pb.MsgVote || m.Type == pb.MsgPreVote) && r.inVoteLease(m) {
		// A leader was heard from within the election timeout: this
		// candidate is likely disruptive (e.g. it was partitioned).
		// Don't bump the term or grant the vote (Raft thesis §4.2.3).
		r.logger().Infof("node %x (last term %d index %d, vote %x, %s): leader lease holds, dropping %s from %x (last term %d index %d) at term %d, %d ticks of promise left",
			r.id, r.raftLog.lastEntryID().term, r.raftLog.lastIndex(), r.Vote, r.state, m.Type, m.From, m.LogTerm, m.Index, r.Term, r.voteLease)
		return true
	}
	switch {
	case m.Type == pb.MsgPreVote:
		// A pre-vote does not change our term.
	case m.Type == pb.MsgPreVoteResp && !m.Reject:
		// A granted pre-vote carries the term we would campaign in; our
		// term changes only if the pre-election is won.
	default:
		r.logger().Infof("node %x (term %d): %s from %x carries higher term %d",
			r.id, r.Term, m.Type, m.From, m.Term)
		if m.Type == pb.MsgApp || m.Type == pb.MsgHeartbeat || m.Type == pb.MsgSnap {
			r.becomeFollower(m.Term, m.From)
		} else {
			r.becomeFollower(m.Term, None)
		}
	}
	return false
}

// stepLowerTerm handles a message from an earlier term: mostly ignored, but
// a stale leader or pre-candidate is told the current term so it can catch
// up instead of being stuck.
func (r *raft) stepLowerTerm(m pb.Message) {
	switch {
	case (r.checkQuorum || r.preVote) && (m.Type == pb.MsgHeartbeat || m.Type == pb.MsgApp):
		// With CheckQuorum or PreVote, a node partitioned away from a
		// leader may never raise its term high enough to unseat a stale
		// leader that still sends to it; answering with our term makes
		// the stale leader step down.
		r.send(pb.Message{To: m.From, Type: pb.MsgAppResp})
	case m.Type == pb.MsgPreVote:
		// Reject so that the pre-candidate learns the current term instead
		// of waiting for responses that never come.
		r.logger().Infof("node %x (last term %d index %d, vote %x): refusing stale %s from %x (last term %d index %d); our term is %d",
			r.id, r.raftLog.lastEntryID().term, r.raftLog.lastIndex(), r.Vote, m.Type, m.From, m.LogTerm, m.Index, r.Term)
		r.send(pb.Message{To: m.From, Term: r.Term, Type: pb.MsgPreVoteResp, Reject: true})
	default:
		r.logger().Infof("node %x (term %d): dropping %s from %x with stale term %d",
			r.id, r.Term, m.Type, m.From, m.Term)
	}
}

// stepFollower is the follower's step function.
func stepFollower(r *raft, m pb.Message) error {
	switch m.Type {
	case pb.MsgProp:
		return r.forwardProposal(m)
	case pb.MsgApp:
		r.heardFromLeader(m.From)
		return r.handleAppendEntries(m)
	case pb.MsgHeartbeat:
		if err := r.checkHeartbeat(m); err != nil {
			return err
		}
		r.heardFromLeader(m.From)
		r.handleHeartbeat(m)
	case pb.MsgSnap:
		r.heardFromLeader(m.From)
		r.handleSnapshot(m)
	case pb.MsgTransferLeader:
		if m.From == None {
			// No transferee named (TransferLeader(None)). Forwarded, the
			// request would name this node: send fills in the sender.
			r.logger().Debugf("node %x: transfer request names no transferee, ignoring it", r.id)
			return nil
		}
		if r.lead == None {
			r.logger().Infof("node %x: no leader known at term %d, dropping transfer request", r.id, r.Term)
			return nil
		}
		if m.From == r.lead {
			// A transfer to the leader itself: nothing to do. Forwarded,
			// it would reach the leader as a message claiming to come
			// from it, which it refuses as invalid.
			r.logger().Debugf("node %x: transfer to the current leader %x, nothing to do", r.id, r.lead)
			return nil
		}
		m.To = r.lead
		r.send(m)
	case pb.MsgForgetLeader:
		r.forgetLeader()
	case pb.MsgReadIndex:
		if r.lead == None {
			r.logger().Infof("node %x: no leader known at term %d, dropping read-index request", r.id, r.Term)
			return nil
		}
		m.To = r.lead
		r.send(m)
	case pb.MsgReadIndexResp:
		r.addReadState(ReadState{Index: m.Index, RequestCtx: m.Entries[0].Data})
	case pb.MsgTimeoutNow:
		r.logger().Infof("node %x (term %d): %x handed over leadership, campaigning now", r.id, r.Term, m.From)
		// Leadership transfers never use pre-vote: the leader asked for it.
		r.hup(campaignTransfer)
	}
	return nil
}

// heardFromLeader notes an append, heartbeat or snapshot from lead, the
// leader of this term: the election timeout starts again, and so does the
// promise not to vote that the leader's lease rests on (voteLease).
func (r *raft) heardFromLeader(lead uint64) {
	r.electionElapsed = 0
	r.lead = lead
	r.voteLease = r.leaseTicks()
}

// stepCandidate is the step function of candidates and pre-candidates.
func stepCandidate(r *raft, m pb.Message) error {
	switch m.Type {
	case pb.MsgProp:
		r.logger().Infof("node %x: no leader known at term %d, dropping proposal", r.id, r.Term)
		return ErrProposalNoLeader
	case pb.MsgReadIndex:
		r.logger().Infof("node %x: no leader known at term %d, dropping read-index request", r.id, r.Term)
	case pb.MsgApp:
		r.becomeFollower(m.Term, m.From) // always m.Term == r.Term
		r.heardFromLeader(m.From)
		return r.handleAppendEntries(m)
	case pb.MsgHeartbeat:
		if err := r.checkHeartbeat(m); err != nil {
			return err
		}
		r.becomeFollower(m.Term, m.From)
		r.heardFromLeader(m.From)
		r.handleHeartbeat(m)
	case pb.MsgSnap:
		r.becomeFollower(m.Term, m.From)
		r.heardFromLeader(m.From)
		r.handleSnapshot(m)
	case pb.MsgVoteResp, pb.MsgPreVoteResp:
		r.handleVoteResponse(m)
	case pb.MsgTimeoutNow:
		r.logger().Debugf("node %x (term %d, %v): ignoring timeout-now from %x", r.id, r.Term, r.state, m.From)
	}
	return nil
}

// stepLeader is the leader's step function.
func stepLeader(r *raft, m pb.Message) error {
	switch m.Type {
	case pb.MsgBeat:
		r.bcastHeartbeat()
		return nil
	case pb.MsgCheckQuorum:
		r.checkQuorumActive()
		return nil
	case pb.MsgProp:
		return r.handleProposal(m)
	case pb.MsgReadIndex:
		r.handleReadIndex(m)
		return nil
	}
	// The rest are about one peer, which must be in the configuration.
	pr := r.trk.Progress[m.From]
	if pr == nil {
		r.logger().Debugf("node %x: %x is not in the configuration, dropping its message", r.id, m.From)
		return nil
	}
	switch m.Type {
	case pb.MsgAppResp:
		return r.handleAppendResponse(m, pr)
	case pb.MsgHeartbeatResp:
		r.handleHeartbeatResponse(m, pr)
	case pb.MsgSnapStatus:
		r.handleSnapStatus(m, pr)
	case pb.MsgUnreachable:
		// The transport could not deliver to the peer: appends in flight
		// are likely lost, so probe again.
		if pr.State == tracker.StateReplicate {
			pr.BecomeProbe()
		}
		r.logger().Debugf("node %x: %x unreachable, probing it again (%s)", r.id, m.From, pr)
	case pb.MsgTransferLeader:
		r.handleTransferLeader(m, pr)
	}
	return nil
}

// checkQuorumActive steps down a leader that has not heard from a quorum in
// the last election timeout, and starts a new interval.
func (r *raft) checkQuorumActive() {
	if !r.trk.QuorumActive() {
		r.logger().Warningf("node %x: no quorum heard from within an election timeout, stepping down", r.id)
		r.becomeFollower(r.Term, None)
		return
	}
	r.trk.Visit(func(id uint64, pr *tracker.Progress) {
		if id != r.id {
			pr.RecentActive = false
		}
	})
}
