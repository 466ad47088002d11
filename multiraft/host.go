package multiraft

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

// Errors returned by the host. Wrapped errors carry the group or node.
var (
	// ErrGroupNotFound: no group with this ID lives on the host.
	ErrGroupNotFound = errors.New("raft: multiraft: group not found")
	// ErrGroupExists: CreateGroup for an ID already hosted.
	ErrGroupExists = errors.New("raft: multiraft: group already exists")
	// ErrGroupRemoved: the group was removed from this node and may not
	// come back (its tombstone refuses it).
	ErrGroupRemoved = errors.New("raft: multiraft: group was removed")
	// ErrMalformedBatch: Step refused a batch; nothing changed.
	ErrMalformedBatch = errors.New("raft: multiraft: malformed batch")
	// ErrAsyncStorageWrites: CreateGroup for a group configured with
	// AsyncStorageWrites, which a host cannot drive (it persists and
	// applies through its Ready).
	ErrAsyncStorageWrites = errors.New("raft: multiraft: AsyncStorageWrites is not supported")
)

// Config configures a Host.
type Config struct {
	// ID is this node's ID, nonzero. It is the raft ID of every group
	// replica on the host.
	ID uint64
	// Peers are the other nodes to exchange node-level heartbeats with.
	// Nodes met later are added: a batch's sender, and a node a group's
	// message goes to if it is a member of that group.
	Peers []uint64
	// Tombstones are groups removed from this node before a restart. The
	// application persists RemoveGroup's effect and passes them back here.
	Tombstones []uint64
	// OnUnknownGroup is asked about a message for a group the host does not
	// have (and never removed). If it returns create, the group is created
	// with cfg (not bootstrapped: it waits for its leader's appends or
	// snapshot) and the message stepped into it. If nil, or create is
	// false, or CreateGroup refuses cfg (AsyncStorageWrites, say), the
	// message is dropped and counted.
	OnUnknownGroup func(groupID uint64, m pb.Message) (create bool, cfg raft.Config)
	// NodeHeartbeatTicks is the interval, in ticks, of node-level
	// heartbeats. Default 2. It is what an idle host costs: with every
	// group quiesced, a host need only be ticked (IdleTicks) and send
	// anything once per interval. A longer one goes with a proportionally
	// longer NodeDownTicks, so that as many heartbeats may be late or lost
	// before a live peer is taken for down.
	NodeHeartbeatTicks int
	// NodeDownTicks is how long a peer may stay silent before it is taken
	// for down and the groups quiesced under its leaders wake. Default 10.
	// It never affects safety (a wake only restarts election timers; see
	// the package documentation), only failover: the groups asleep under a
	// leader on a node that dies elect a new leader NodeDownTicks after it
	// was last heard, plus their election timeout, instead of after the
	// election timeout alone. A live peer taken for down costs a wake of
	// those groups and, without PreVote and CheckQuorum, perhaps a needless
	// election.
	NodeDownTicks int
	// QuiesceAfterTicks is how many ticks a leader must have seen its group
	// idle and caught up before quiescing it. Default: the group's
	// ElectionTick.
	QuiesceAfterTicks int
	// DisableQuiescence keeps every group ticking.
	DisableQuiescence bool
}

// Metrics counts input the host dropped. Read them with Host.Metrics.
type Metrics struct {
	// UnknownGroup counts messages for groups the host does not have and
	// did not create.
	UnknownGroup uint64
	// RemovedGroup counts messages for removed groups (refused by their
	// tombstone).
	RemovedGroup uint64
	// Rejected counts messages a group's RawNode.Step refused (stale or
	// inconsistent with its log).
	Rejected uint64
}

// group is one hosted Raft group. A host keeps one per group, so the
// record is packed: counters are 32 bits (activeIdx counts groups, idle
// saturates, the others count requests in flight) and what only a follower
// forwarding ProposeWithResult needs is allocated on first use. Its 56
// bytes fill the 64-byte size class; TestGroupRecordSize guards that.
type group struct {
	id uint64
	rn *raft.RawNode
	// leaderNode is the leader a quiesced follower sleeps under (a key of
	// Host.sleepers), 0 otherwise.
	leaderNode uint64
	// fwd tracks this replica's forwarded ProposeWithResult proposals; nil
	// until the first one.
	fwd *forwarding
	// activeIdx is the group's index in Host.active, or -1 when
	// quiesced. Invariant: activeIdx < 0 == quiesced.
	activeIdx int32
	// quiesceAfter is QuiesceAfterTicks, or the group's ElectionTick.
	quiesceAfter int32
	// idle counts ticks since the last input other than ticks and
	// heartbeats, saturating at math.MaxInt32.
	idle int32
	// canQuiesce is false for lease-based reads (see the package doc).
	canQuiesce bool
	// readsPending: the leader has read requests to confirm; it blocks
	// quiescence. It is what the leader's latest heartbeat said (see
	// noteReads), not a count of requests: a request the group refused,
	// or one that replaced a pending one of the same context, is no
	// request to wait for.
	readsPending bool
	// hasWork: the group is in Host.work.
	hasWork bool
	// inReady: the group's Ready is outstanding in the host's Ready.
	inReady bool
	removed bool
}

// forwarding is what a group knows of the proposals it forwarded with
// ProposeWithResult.
type forwarding struct {
	// watching counts the forwarded proposals whose outcome the group's
	// RawNode has not yet given.
	watching int
	// outcomes are those it gave, for the next Ready to hand out.
	outcomes []raft.ForwardedOutcome
}

// Host hosts many Raft groups on one node. It is not safe for concurrent
// use.
type Host struct {
	cfg    Config
	id     uint64
	now    uint64
	groups map[uint64]*group
	// tombstones hold removed groups.
	tombstones map[uint64]struct{}
	// active are the groups ticked by Tick (not quiesced).
	active []*group
	// work are the groups reached by input since the last Ready.
	work []*group
	// sleepers indexes quiesced followers by their leader's node.
	sleepers map[uint64]map[uint64]*group
	// peers are the known peer nodes, sorted by ID.
	peers []*peer
	// quiesceOut are the Quiesce heartbeats to send in the next Ready.
	quiesceOut []outHeartbeat
	// wakeOut are the wakes for leaders to send in the next Ready.
	wakeOut   []outWake
	nodeHBDue bool
	// outstanding is true between Ready and Advance.
	outstanding bool
	metrics     Metrics
}

type peer struct {
	id        uint64
	lastHeard uint64
	down      bool
}

// outWake asks the leader of group on node to to wake.
type outWake struct {
	to, group uint64
}

type outHeartbeat struct {
	to uint64
	hb mrpb.Heartbeat
}

// NewHost returns a host with no groups.
func NewHost(cfg Config) (*Host, error) {
	if cfg.ID == 0 {
		return nil, errors.New("raft: multiraft: host ID must not be zero")
	}
	if cfg.NodeHeartbeatTicks <= 0 {
		cfg.NodeHeartbeatTicks = 2
	}
	if cfg.NodeDownTicks <= 0 {
		cfg.NodeDownTicks = 10
	}
	if cfg.NodeDownTicks <= cfg.NodeHeartbeatTicks {
		return nil, fmt.Errorf("raft: multiraft: NodeDownTicks (%d) must exceed NodeHeartbeatTicks (%d)", cfg.NodeDownTicks, cfg.NodeHeartbeatTicks)
	}
	h := &Host{
		cfg:        cfg,
		id:         cfg.ID,
		groups:     make(map[uint64]*group),
		tombstones: make(map[uint64]struct{}),
		sleepers:   make(map[uint64]map[uint64]*group),
	}
	for _, id := range cfg.Tombstones {
		h.tombstones[id] = struct{}{}
	}
	for _, id := range cfg.Peers {
		h.peer(id)
	}
	return h, nil
}

// ID returns the host's node ID.
func (h *Host) ID() uint64 { return h.id }

// Metrics returns the counts of dropped input.
func (h *Host) Metrics() Metrics { return h.metrics }

// NumGroups returns the number of hosted groups.
func (h *Host) NumGroups() int { return len(h.groups) }

// NumActive returns the number of groups that are not quiesced.
func (h *Host) NumActive() int { return len(h.active) }

// CreateGroup adds group id with its own configuration and storage. cfg.ID
// must be zero (it is set to the host's ID) or the host's ID. With peers, a
// fresh group (empty storage) is bootstrapped with them as its voters; on a
// restart, or for a replica that joins an existing group, pass none.
// cfg.AsyncStorageWrites must be false (the host persists and applies
// through its Ready): CreateGroup returns ErrAsyncStorageWrites otherwise.
func (h *Host) CreateGroup(id uint64, cfg raft.Config, peers []raft.Peer) error {
	if id == 0 {
		return errors.New("raft: multiraft: group ID must not be zero")
	}
	if cfg.AsyncStorageWrites {
		return fmt.Errorf("%w: group %d", ErrAsyncStorageWrites, id)
	}
	if _, ok := h.groups[id]; ok {
		return fmt.Errorf("%w: %d", ErrGroupExists, id)
	}
	if _, ok := h.tombstones[id]; ok {
		return fmt.Errorf("%w: %d", ErrGroupRemoved, id)
	}
	if cfg.ID == 0 {
		cfg.ID = h.id
	}
	if cfg.ID != h.id {
		return fmt.Errorf("raft: multiraft: group %d: raft ID %d is not the host's node ID %d", id, cfg.ID, h.id)
	}
	// The host copies a group's messages into its batches when it builds
	// its Ready, before the group's Advance: the group may reuse them.
	cfg.ReuseReadyMessages = true
	rn, err := raft.NewRawNode(&cfg)
	if err != nil {
		return fmt.Errorf("raft: multiraft: group %d: %w", id, err)
	}
	if len(peers) > 0 {
		if err := rn.Bootstrap(peers); err != nil {
			return fmt.Errorf("raft: multiraft: group %d: %w", id, err)
		}
	}
	quiesceAfter := h.cfg.QuiesceAfterTicks
	if quiesceAfter <= 0 {
		quiesceAfter = cfg.ElectionTick
	}
	g := &group{
		id:           id,
		rn:           rn,
		canQuiesce:   !h.cfg.DisableQuiescence && cfg.ReadOnlyOption != raft.ReadOnlyLeaseBased,
		quiesceAfter: int32(min(quiesceAfter, math.MaxInt32)),
		activeIdx:    -1,
	}
	h.groups[id] = g
	h.activate(g, h.id)
	h.markWork(g)
	return nil
}

// RemoveGroup removes group id from the host and leaves a tombstone:
// messages for it are refused from now on and CreateGroup fails for it.
// The application removes the group's storage and records the tombstone
// durably (Config.Tombstones). A Ready outstanding for the group is
// dropped: Advance skips it. The next Ready carries nothing of the group,
// not even the Quiesce heartbeats or wakes queued for it since the last.
func (h *Host) RemoveGroup(id uint64) error {
	g, ok := h.groups[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrGroupNotFound, id)
	}
	h.deactivate(g) // also out of h.sleepers, if quiesced
	g.removed = true
	delete(h.groups, id)
	h.tombstones[id] = struct{}{}
	h.quiesceOut = slices.DeleteFunc(h.quiesceOut, func(q outHeartbeat) bool { return q.hb.GroupID == id })
	h.wakeOut = slices.DeleteFunc(h.wakeOut, func(w outWake) bool { return w.group == id })
	return nil
}

// Tombstones returns the removed groups' IDs, sorted.
func (h *Host) Tombstones() []uint64 {
	ids := make([]uint64, 0, len(h.tombstones))
	for id := range h.tombstones {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// touch returns the live group id, waking it and marking it as having
// work: every caller is about to give it input that may need its timers
// (a proposal, a read, a campaign, a transfer).
func (h *Host) touch(id uint64) (*group, error) {
	g, err := h.mark(id)
	if err != nil {
		return nil, err
	}
	g.idle = 0
	h.activate(g, h.id)
	return g, nil
}

// mark returns the live group id marked as having work, without waking
// it: its callers report what the application did (applied a conf change,
// sent a snapshot), which a quiesced group's followers, still applying
// what was committed before it slept, do too.
func (h *Host) mark(id uint64) (*group, error) {
	g, ok := h.groups[id]
	if !ok {
		if _, removed := h.tombstones[id]; removed {
			return nil, fmt.Errorf("%w: %d", ErrGroupRemoved, id)
		}
		return nil, fmt.Errorf("%w: %d", ErrGroupNotFound, id)
	}
	h.markWork(g)
	return g, nil
}

// Propose proposes data to group id (see raft.RawNode.Propose).
func (h *Host) Propose(id uint64, data []byte) error {
	g, err := h.touch(id)
	if err != nil {
		return err
	}
	return g.rn.Propose(data)
}

// ProposeConfChange proposes a configuration change to group id. The IDs
// in cc are node IDs.
func (h *Host) ProposeConfChange(id uint64, cc pb.ConfChangeI) error {
	g, err := h.touch(id)
	if err != nil {
		return err
	}
	return g.rn.ProposeConfChange(cc)
}

// ProposeWithResult proposes data to group id, like Propose, and says
// where the proposal went (see raft.RawNode.ProposeWithResult): on the
// leader, the index and term it was appended at; on a follower, that it was
// forwarded, with the ForwardID under which a later GroupReady of the group
// reports, in ForwardedOutcomes, where it landed or that this is unknown.
func (h *Host) ProposeWithResult(id uint64, data []byte) (raft.ProposalResult, error) {
	g, err := h.touch(id)
	if err != nil {
		return raft.ProposalResult{}, err
	}
	res, err := g.rn.ProposeWithResult(data)
	g.noteResult(res, err)
	return res, err
}

// ProposeConfChangeWithResult proposes a configuration change to group id,
// like ProposeConfChange, and says where it went, as ProposeWithResult
// does.
func (h *Host) ProposeConfChangeWithResult(id uint64, cc pb.ConfChangeI) (raft.ProposalResult, error) {
	g, err := h.touch(id)
	if err != nil {
		return raft.ProposalResult{}, err
	}
	res, err := g.rn.ProposeConfChangeWithResult(cc)
	g.noteResult(res, err)
	return res, err
}

// noteResult counts a forwarded proposal the group's RawNode now watches.
func (g *group) noteResult(res raft.ProposalResult, err error) {
	if err == nil && res.Forwarded && !mutationNoForwardWatch {
		if g.fwd == nil {
			g.fwd = &forwarding{}
		}
		g.fwd.watching++
	}
}

// takeOutcomes moves what g's RawNode learned of the proposals it
// forwarded into g.fwd.outcomes, and reports whether any wait there. It
// asks the RawNode only while some forwarded proposal is unresolved, so
// groups that never use ProposeWithResult pay a comparison.
func (g *group) takeOutcomes() bool {
	f := g.fwd
	if f == nil {
		return false
	}
	if f.watching > 0 {
		o := g.rn.ForwardedOutcomes()
		f.watching -= len(o)
		f.outcomes = append(f.outcomes, o...)
	}
	return len(f.outcomes) > 0
}

// handOutOutcomes returns the outcomes waiting for the next Ready, which
// owns them from now on.
func (g *group) handOutOutcomes() []raft.ForwardedOutcome {
	if g.fwd == nil {
		return nil
	}
	o := g.fwd.outcomes
	g.fwd.outcomes = nil
	return o
}

// ReadIndex asks group id for a read point (see raft.RawNode.ReadIndex);
// the answer comes in the group's ReadStates.
func (h *Host) ReadIndex(id uint64, rctx []byte) error {
	g, err := h.touch(id)
	if err != nil {
		return err
	}
	g.rn.ReadIndex(rctx)
	return nil
}

// Campaign makes this node's replica of group id campaign now.
func (h *Host) Campaign(id uint64) error {
	g, err := h.touch(id)
	if err != nil {
		return err
	}
	return g.rn.Campaign()
}

// TransferLeader asks group id to hand leadership to the replica on node
// transferee.
func (h *Host) TransferLeader(id, transferee uint64) error {
	g, err := h.touch(id)
	if err != nil {
		return err
	}
	g.rn.TransferLeader(transferee)
	return nil
}

// ApplyConfChange applies a committed conf change entry of group id (see
// raft.RawNode.ApplyConfChange). It does not wake a quiesced group.
func (h *Host) ApplyConfChange(id uint64, cc pb.ConfChangeI) (*pb.ConfState, error) {
	g, err := h.mark(id)
	if err != nil {
		return nil, err
	}
	return g.rn.ApplyConfChange(cc), nil
}

// ReportSnapshot reports how sending a MsgSnap of group id to node to went.
// It does not wake a quiesced group.
func (h *Host) ReportSnapshot(id, to uint64, status raft.SnapshotStatus) error {
	g, err := h.mark(id)
	if err != nil {
		return err
	}
	g.rn.ReportSnapshot(to, status)
	return nil
}

// ReportUnreachable tells group id that a message to node to was lost. It
// does not wake a quiesced group.
func (h *Host) ReportUnreachable(id, to uint64) error {
	g, err := h.mark(id)
	if err != nil {
		return err
	}
	g.rn.ReportUnreachable(to)
	return nil
}

// Status returns group id's raft status.
func (h *Host) Status(id uint64) (raft.Status, error) {
	g, ok := h.groups[id]
	if !ok {
		return raft.Status{}, fmt.Errorf("%w: %d", ErrGroupNotFound, id)
	}
	return g.rn.Status(), nil
}

// BasicStatus returns group id's basic raft status.
func (h *Host) BasicStatus(id uint64) (raft.BasicStatus, error) {
	g, ok := h.groups[id]
	if !ok {
		return raft.BasicStatus{}, fmt.Errorf("%w: %d", ErrGroupNotFound, id)
	}
	return g.rn.BasicStatus(), nil
}

// Quiesced reports whether group id is quiesced (not ticked).
func (h *Host) Quiesced(id uint64) bool {
	g, ok := h.groups[id]
	return ok && g.activeIdx < 0
}

// RemovePeer stops the node-level heartbeats to node id: call it once the
// node has left every group on this host (the host does not follow the
// groups' configurations). Groups quiesced here under a leader on that
// node wake, as they would if it went down. A batch from the node, or a
// message of a group it is a member of for it, makes it a peer again.
func (h *Host) RemovePeer(id uint64) {
	i, found := slices.BinarySearchFunc(h.peers, id, comparePeer)
	if !found {
		return
	}
	h.peers = slices.Delete(h.peers, i, i+1)
	h.wakeSleepers(id)
}

// markWork adds g to the groups the next Ready looks at.
func (h *Host) markWork(g *group) {
	if !g.hasWork {
		g.hasWork = true
		h.work = append(h.work, g)
	}
}

// peer returns the peer node id, adding it if new.
func (h *Host) peer(id uint64) *peer {
	i, found := slices.BinarySearchFunc(h.peers, id, comparePeer)
	if found {
		return h.peers[i]
	}
	p := &peer{id: id, lastHeard: h.now}
	h.peers = slices.Insert(h.peers, i, p)
	return p
}

// comparePeer orders peers by ID, for binary search.
func comparePeer(p *peer, id uint64) int {
	switch {
	case p.id < id:
		return -1
	case p.id > id:
		return 1
	}
	return 0
}
