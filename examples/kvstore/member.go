package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
)

// memberConfig is one member's configuration (the command-line flags).
type memberConfig struct {
	ID             uint64
	DataDir        string
	InMemory       bool // MemoryStorage instead of the WAL: nothing survives a restart
	ListenClient   string
	ListenPeer     string
	InitialCluster map[uint64]string // member ID -> peer address
	Join           bool              // a member added later: no bootstrap
	SnapshotEvery  uint64            // applied entries between snapshots
	MaxKeySize     int
	MaxValueSize   int
	RequestTimeout time.Duration
	TickInterval   time.Duration
	Shards         int         // Raft groups keys are hashed to; 0 and 1: one group, no multiraft host
	TLS            tlsSettings // the zero value: plain TCP and HTTP
	Logger         *slog.Logger
	// peerListener, for tests, is the listener to take peer connections
	// on, opened beforehand at ListenPeer (a port picked and closed could be
	// taken by another socket before the member listens again).
	peerListener net.Listener
	// walFS, for tests, is the file system the WAL uses (nil: the OS).
	walFS wal.FS
	// walSegmentSize, for tests, is the WAL's segment size (0: the
	// default), small to make segments rotate and be deleted.
	walSegmentSize int64
	// dropIncoming, for tests, drops the peer messages it returns true
	// for, as a network partition would; dropBatch, with --shards, the
	// batches from the peers it returns true for.
	dropIncoming func(pb.Message) bool
	dropBatch    func(from uint64) bool
	// configureRaft, for tests, changes the RawNode's configuration before
	// it is built (a simulator's random source, say).
	configureRaft func(*raft.Config)
}

// listenPeer returns the listener for peer connections.
func (cfg memberConfig) listenPeer() (net.Listener, error) {
	if cfg.peerListener != nil {
		return cfg.peerListener, nil
	}
	return net.Listen("tcp", cfg.ListenPeer)
}

// storage is what the member persists to: the WAL, or MemoryStorage.
type storage interface {
	raft.Storage
	Save(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) error
	CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error)
	Compact(i uint64) error
	Close() error
}

// peerTransport is what the member needs of its peer transport
// (*transport; a simulated network in tests): the loop sends through it
// and tells it the members' addresses.
type peerTransport interface {
	send(msgs []pb.Message)
	setPeer(id uint64, addr string)
	peerClients() map[uint64]string
	close()
}

// memStorage gives MemoryStorage the WAL's write side.
type memStorage struct{ *raft.MemoryStorage }

func (memStorage) Close() error { return nil }

var (
	errNoLeader = errors.New("no leader: an election is under way or a majority of members is unreachable")
	errTimeout  = errors.New("timed out; a write may still be applied later")
	errStopped  = errors.New("member is shutting down")
	// errLeaderChanged: a request was in flight (perhaps forwarded to the
	// old leader) when the leader changed; a write may or may not be
	// applied.
	errLeaderChanged = errors.New("the leader changed while the request was in flight; a write may or may not be applied: retry")
	// errRemoved: this member applied its own removal. It proposes and
	// forwards nothing more; only stale reads are served.
	errRemoved = errors.New("this member was removed from the cluster: send requests to another member")
	// errRemovedInFlight: a request was waiting when the removal was
	// applied.
	errRemovedInFlight = fmt.Errorf("%w (a write in flight may or may not be applied)", errRemoved)
	// errProposalLost: the write's entry was appended at an index where
	// the log now holds, committed, another term's entry (a leader change
	// replaced it). It was not applied and never will be: retry it.
	errProposalLost = errors.New("the write was not applied: its log entry was replaced by another leader's after a leader change; retry it")
	// errSnapshotted: a snapshot from the leader covered the write's index
	// before this member applied it, so it cannot tell which entry was
	// there.
	errSnapshotted = errors.New("a snapshot from the leader replaced the log here before the write was applied; a write may or may not be applied: retry")
)

// waiter is an HTTP request waiting for its entry to be applied, or for a
// read index to be reached.
type waiter struct {
	done     chan error // buffered: the loop never blocks on it
	result   applyResult
	index    uint64 // for reads: the read index, once known
	deadline time.Time
	// For writes: the term of the entry waited for at its index (see
	// member.atIndex), the request id in the command, and the leader the
	// write was proposed to.
	term  uint64
	reqID string
	lead  uint64
}

func (w *waiter) finish(err error) {
	select {
	case w.done <- err:
	default:
	}
}

// memberStatus is a member's state as the loop last published it.
type memberStatus struct {
	ID       uint64                   `json:"id"`
	State    string                   `json:"state"`
	Term     uint64                   `json:"term"`
	Lead     uint64                   `json:"leader"`
	Commit   uint64                   `json:"commit"`
	Applied  uint64                   `json:"applied"`
	Removed  bool                     `json:"removed"`            // this member applied its own removal
	Progress map[uint64]progressState `json:"progress,omitempty"` // the leader's view of each member
}

type progressState struct {
	Match        uint64 `json:"match"`
	State        string `json:"state"`
	RecentActive bool   `json:"recent_active"` // the leader heard from it within the last election timeout
}

// member is one kvstore server: a RawNode driven by one goroutine (run),
// its storage, state machine, peer transport and HTTP API.
type member struct {
	cfg     memberConfig
	log     *slog.Logger
	metrics *metrics
	store   storage
	sm      *stateMachine
	tr      peerTransport
	httpSrv *http.Server
	clientL net.Listener

	// Owned by the run goroutine.
	rn *raft.RawNode
	requests
	lastSnap uint64
	lead     uint64
	// wasMember: a configuration this member applied held it. Then one
	// that does not means it was removed.
	wasMember bool

	recvC   chan pb.Message
	reports chan report
	loop
	status atomic.Pointer[memberStatus]
	reqSeq atomic.Uint64
	// removed: this member is not in the configuration it applied (set by
	// the loop; read by HTTP handlers, which refuse all but stale reads).
	removed atomic.Bool
	started time.Time
}

// startMember opens the storage, recovers the state machine, and starts
// the loop, the peer transport and the HTTP API.
func startMember(cfg memberConfig) (*member, error) {
	m := newMember(cfg)
	if err := m.openStorage(); err != nil {
		return nil, err
	}
	if err := m.startRaft(); err != nil {
		m.store.Close()
		return nil, err
	}
	if err := m.listen(); err != nil {
		m.store.Close()
		return nil, err
	}
	go m.run()
	return m, nil
}

// newMember returns a member with nothing opened or started yet.
func newMember(cfg memberConfig) *member {
	return &member{
		cfg: cfg, log: cfg.Logger.With("member", cfg.ID), metrics: newMetrics(), sm: newStateMachine(),
		requests: newRequests(),
		loop:     newLoop(4096), recvC: make(chan pb.Message, 4096), reports: make(chan report, 1024),
		started: time.Now(),
	}
}

func (m *member) openStorage() error {
	if m.cfg.InMemory {
		m.store = memStorage{raft.NewMemoryStorage()}
		return nil
	}
	st, err := wal.Open(filepath.Join(m.cfg.DataDir, "raft"), wal.Options{FS: m.cfg.walFS, SegmentSize: m.cfg.walSegmentSize})
	if err != nil {
		return err
	}
	m.store = st
	return nil
}

// electionTick is the election timeout in ticks (randomized up to twice
// that); a leader steps down if it has not heard from a quorum for that
// long (CheckQuorum).
const electionTick = 10

func (m *member) startRaft() error {
	snap, err := m.store.Snapshot()
	if err != nil {
		return err
	}
	if !raft.IsEmptySnap(snap) {
		if err := m.sm.restore(snap); err != nil {
			return err
		}
		m.lastSnap = snap.Metadata.Index
		m.noteRemoval(snap.Metadata.ConfState)
	}
	rc := &raft.Config{
		ID:                m.cfg.ID,
		ElectionTick:      electionTick,
		HeartbeatTick:     1,
		Storage:           m.store,
		Applied:           snap.Metadata.Index,
		MaxSizePerMsg:     1 << 20,
		MaxInflightMsgs:   256,
		CheckQuorum:       true,
		PreVote:           true,
		StepDownOnRemoval: true,
		// handleReady hands every message to the transport, which
		// copies it into its queues, before Advance.
		ReuseReadyMessages: true,
		Logger:             raft.NewSlogLogger(m.log.With("component", "raft")),
	}
	if m.cfg.configureRaft != nil {
		m.cfg.configureRaft(rc)
	}
	last, err := m.store.LastIndex()
	if err != nil {
		return err
	}
	peers := bootstrapPeers(m.cfg.InitialCluster)
	join, err := m.cfg.joining()
	if err != nil {
		return err
	}
	if !join {
		if err := m.prepareBootstrap(last == 0); err != nil {
			return err
		}
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return err
	}
	m.rn = rn
	if last == 0 && !join {
		if err := rn.Bootstrap(peers); err != nil {
			return err
		}
		m.log.Info("bootstrapped a new cluster", "members", len(peers))
	} else if last > 0 {
		hs, _, _ := m.store.InitialState()
		m.log.Info("recovered from disk", "snapshot", snap.Metadata.Index, "last_index", last, "term", hs.Term, "commit", hs.Commit)
	}
	return nil
}

// prepareBootstrap records that the member bootstraps, before anything is
// saved; or, if it bootstrapped here, completes the bootstrap of a log that
// a power cut during its first write left without a configuration (see
// bootstrap.go).
func (m *member) prepareBootstrap(bootstrap bool) error {
	bootEnts, bootHS, err := m.cfg.bootstrapToComplete(bootstrap)
	if len(bootEnts) == 0 || err != nil {
		return err
	}
	rest, hs, ok, err := bootstrapRest(m.store, bootEnts, bootHS)
	if err != nil {
		m.log.Warn("no configuration", "err", err)
	}
	if !ok {
		return nil
	}
	if err := m.store.Save(hs, rest, pb.Snapshot{}); err != nil {
		return fmt.Errorf("completing the bootstrap: %w", err)
	}
	m.log.Warn("completed the bootstrap, whose first write a crash cut short")
	return nil
}

func (m *member) listen() error {
	peerL, err := m.cfg.listenPeer()
	if err != nil {
		return err
	}
	clientL, err := m.cfg.TLS.listenClient(m.cfg.ListenClient)
	if err != nil {
		peerL.Close()
		return err
	}
	m.clientL = clientL
	m.tr = newTransport(m.cfg.ID, clientL.Addr().String(), peerL, m.cfg.TLS.Peer, m.deliver, m.reports, m.metrics, m.log.With("component", "transport"))
	for id, addr := range m.cfg.InitialCluster {
		m.tr.setPeer(id, addr)
	}
	_, peers := m.sm.members()
	for id, addr := range peers {
		m.tr.setPeer(id, addr)
	}
	m.httpSrv = &http.Server{Handler: m.routes(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(m.log.With("component", "http").Handler(), slog.LevelWarn)}
	// Errors net/http writes itself are rewritten as JSON on a plain
	// connection only: the server must see a TLS connection as
	// *tls.Conn (it answers plain HTTP sent to the TLS port that way), so
	// under TLS they stay net/http's plain text.
	served := clientL
	if m.cfg.TLS.Client == nil {
		served = jsonServerErrors{clientL}
	}
	go func() {
		if err := m.httpSrv.Serve(served); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("http server", "err", err)
		}
	}()
	m.publishStatus()
	m.log.Info("serving", "client", clientL.Addr().String(), "peer", peerL.Addr().String())
	return nil
}

// deliver hands an incoming peer message to the loop.
func (m *member) deliver(msg pb.Message) {
	if m.cfg.dropIncoming != nil && m.cfg.dropIncoming(msg) {
		return
	}
	select {
	case m.recvC <- msg:
	case <-m.stopC:
	case <-m.failedC:
	}
}

func (m *member) newRequestID() string {
	return strconv.FormatUint(m.cfg.ID, 10) + "-" + strconv.FormatInt(m.started.UnixNano(), 36) + "-" + strconv.FormatUint(m.reqSeq.Add(1), 10)
}

// run is the Ready loop: the only goroutine that touches the RawNode.
func (m *member) run() {
	defer close(m.doneC)
	defer m.recoverFailure(m.log, m.failAll)
	ticker := time.NewTicker(m.cfg.TickInterval)
	defer ticker.Stop()
	tick := func() {
		m.rn.Tick()
		m.expire(time.Now())
	}
	step, report := m.step, m.handleReport // bound once, not at every wake
	for {
		if !next(&m.loop, ticker.C, tick, m.recvC, step, m.reports, report) {
			m.failAll(errStopped)
			return
		}
		drain(&m.loop, m.recvC, step, m.reports, report)
		for m.rn.HasReady() {
			m.handleReady(m.rn.Ready())
		}
		m.publishStatus()
	}
}

func (m *member) step(msg pb.Message) {
	if err := m.rn.Step(msg); err != nil {
		m.log.Debug("dropped message", "from", msg.From, "type", msg.Type.String(), "err", err)
	}
}

func (m *member) handleReport(r report) {
	if r.unreachable {
		m.rn.ReportUnreachable(r.to)
	}
	if r.snapshot != nil {
		m.rn.ReportSnapshot(r.to, *r.snapshot)
	}
}

// handleReady follows the Ready contract for rd, just taken from the
// RawNode: persist, send, apply, advance.
func (m *member) handleReady(rd raft.Ready) {
	start := time.Now()
	// Where forwarded writes went is learned from the messages stepped
	// so far: take it before applying.
	m.takeForwardedOutcomes(m.rn.ForwardedOutcomes(), m.sm.appliedIndex(), m.lead)
	if rd.SoftState != nil {
		m.softStateChanged(rd.SoftState)
	}
	// 1. Persist: one write, synced when rd.MustSync.
	if err := m.store.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		m.fatal("persisting a Ready failed; the member cannot go on safely", err)
	}
	// 2. Send.
	m.tr.send(rd.Messages)
	// 3. Apply.
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := m.sm.restore(rd.Snapshot); err != nil {
			m.fatal("restoring a snapshot failed", err)
		}
		_, peers := m.sm.members()
		for id, addr := range peers {
			m.tr.setPeer(id, addr)
		}
		m.lastSnap = rd.Snapshot.Metadata.Index
		m.failCoveredBySnapshot(rd.Snapshot.Metadata.Index)
		m.noteRemoval(rd.Snapshot.Metadata.ConfState)
		m.log.Info("installed snapshot", "index", rd.Snapshot.Metadata.Index)
	}
	for _, e := range rd.CommittedEntries {
		m.apply(e)
	}
	m.metrics.committed.Add(float64(len(rd.CommittedEntries)))
	for _, rs := range rd.ReadStates {
		if w, ok := m.reads[string(rs.RequestCtx)]; ok {
			delete(m.reads, string(rs.RequestCtx))
			w.index = rs.Index
			m.indexed = append(m.indexed, w)
		}
	}
	// 4. Advance.
	m.rn.Advance(rd)
	m.releaseReads()
	m.maybeSnapshot()
	m.metrics.readyLatency.Observe(time.Since(start).Seconds())
}

func (m *member) softStateChanged(ss *raft.SoftState) {
	if ss.Lead != m.lead {
		m.metrics.leaderChanges.Inc()
		m.log.Info("leader changed", "leader", ss.Lead, "state", ss.RaftState.String())
		if m.lead != 0 {
			// Writes whose place in the log is known, or may still be
			// learned, wait for it (see track). For the others, and for
			// reads (the library drops read requests at a leader change),
			// answer now rather than at the timeout, so clients retry
			// sooner.
			m.failUntracked(errLeaderChanged)
		}
		m.lead = ss.Lead
	}
	if ss.RaftState == raft.StateLeader {
		m.metrics.isLeader.Set(1)
	} else {
		m.metrics.isLeader.Set(0)
	}
}

func (m *member) apply(e pb.Entry) {
	switch e.Type {
	case pb.EntryNormal:
		id, res, err := m.sm.apply(e)
		if err != nil {
			m.log.Error("skipping an entry the state machine cannot apply", "index", e.Index, "err", err)
		}
		m.answerAt(e, res, err, m.metrics.proposalsLost)
		m.answerID(id, res, err)
	case pb.EntryConfChange, pb.EntryConfChangeV2:
		m.applyConfChange(e)
	}
	m.metrics.applied.Set(float64(e.Index))
}

func (m *member) applyConfChange(e pb.Entry) {
	cc, err := pb.UnmarshalConfChange(e)
	if err != nil {
		m.fatal("a committed conf change does not decode", err)
	}
	v2 := cc.AsV2()
	var ctx confContext
	if len(v2.Context) > 0 {
		if err := json.Unmarshal(v2.Context, &ctx); err != nil {
			m.log.Warn("conf change with an unreadable context", "index", e.Index, "err", err)
		}
	}
	cs := m.rn.ApplyConfChange(cc)
	added := map[uint64]string{}
	var removed []uint64
	for _, c := range v2.Changes {
		switch c.Type {
		case pb.ConfChangeAddNode, pb.ConfChangeAddLearnerNode:
			added[c.NodeID] = ctx.Peer
			m.tr.setPeer(c.NodeID, ctx.Peer)
		case pb.ConfChangeRemoveNode:
			// The transport keeps the removed member's address: if it
			// missed the commit of its removal, it campaigns, and the
			// leader's answer (the log up to its commit index) must reach
			// it for it to learn that it was removed.
			removed = append(removed, c.NodeID)
		}
	}
	m.sm.applyConf(e.Index, *cs, added, removed)
	m.log.Info("membership changed", "index", e.Index, "voters", cs.Voters, "learners", cs.Learners)
	m.answerAt(e, applyResult{index: e.Index}, nil, m.metrics.proposalsLost)
	m.answerID(ctx.RequestID, applyResult{index: e.Index}, nil)
	m.noteRemoval(*cs)
}

// noteRemoval marks this member removed once a configuration it applied
// (from a conf change or a snapshot) no longer holds it after an earlier
// one did, and fails the requests still waiting: nothing will answer them
// here. A configuration without this member before it held it is not a
// removal: it is the log before this member was added (a member replays
// the bootstrap entries one by one, a joining one the log up to its own
// addition). A configuration that holds this member again after its
// removal is its re-addition under the same id (a fresh member, replaying
// the log from its first addition): it serves again.
func (m *member) noteRemoval(cs pb.ConfState) {
	if inConfig(m.cfg.ID, cs) {
		m.wasMember = true
		if m.removed.Load() {
			m.removed.Store(false)
			m.metrics.removed.Set(0)
			m.log.Info("this member was added to the cluster again")
		}
		return
	}
	if !m.wasMember || m.removed.Load() {
		return
	}
	m.removed.Store(true)
	m.metrics.removed.Set(1)
	m.failAll(errRemovedInFlight)
	m.log.Warn("this member was removed from the cluster; it refuses writes and linearizable reads (410) and serves stale reads only")
}

// inConfig: id is in cs, on its way in or out of a joint configuration
// included.
func inConfig(id uint64, cs pb.ConfState) bool {
	for _, ids := range [][]uint64{cs.Voters, cs.VotersOutgoing, cs.Learners, cs.LearnersNext} {
		if slices.Contains(ids, id) {
			return true
		}
	}
	return false
}

// releaseReads answers the reads whose index the state machine reached.
func (m *member) releaseReads() {
	applied := m.sm.appliedIndex()
	kept := m.indexed[:0]
	for _, w := range m.indexed {
		if w.index <= applied {
			w.finish(nil)
		} else {
			kept = append(kept, w)
		}
	}
	clear(m.indexed[len(kept):])
	m.indexed = kept
}

// maybeSnapshot snapshots the state machine every SnapshotEvery applied
// entries and compacts the log, keeping some entries for slow followers.
//
// A removed member takes no snapshot after its removal: its last snapshot
// then still holds it, and a restart replays the removal from the log.
func (m *member) maybeSnapshot() {
	applied := m.sm.appliedIndex()
	if m.cfg.SnapshotEvery == 0 || applied < m.lastSnap+m.cfg.SnapshotEvery || m.removed.Load() {
		return
	}
	data, cs, index := m.sm.snapshot()
	if _, err := m.store.CreateSnapshot(index, &cs, data); err != nil {
		m.log.Error("snapshot failed", "index", index, "err", err)
		return
	}
	m.lastSnap = index
	m.metrics.snapshots.Inc()
	keep := m.cfg.SnapshotEvery / 2
	if index > keep {
		if err := m.store.Compact(index - keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
			m.log.Error("compaction failed", "index", index-keep, "err", err)
		}
	}
	m.log.Info("snapshot taken", "index", index, "bytes", len(data))
}

func (m *member) publishStatus() {
	st := m.rn.Status()
	ms := &memberStatus{
		ID: m.cfg.ID, State: st.RaftState.String(), Term: st.Term, Lead: st.Lead,
		Commit: st.Commit, Applied: m.sm.appliedIndex(), Removed: m.removed.Load(),
	}
	if len(st.Progress) > 0 {
		ms.Progress = map[uint64]progressState{}
		for id, pr := range st.Progress {
			ms.Progress[id] = progressState{Match: pr.Match, State: pr.State.String(), RecentActive: pr.RecentActive}
		}
	}
	m.metrics.term.Set(float64(st.Term))
	m.status.Store(ms)
}

func (m *member) fatal(msg string, err error) {
	panic(memberFailure{fmt.Errorf("%s: %w", msg, err)})
}

// memberFailure is what fatal stops the loop with.
type memberFailure struct{ err error }

// errFailed answers requests once the member stopped on a failure.
var errFailed = errors.New("member stopped after a failure (see its log); use another member")

// stop shuts the member down: the loop first (requests waiting on it fail
// with 503), then HTTP (waiting for in-flight requests), the transport and
// the storage.
func (m *member) stop() {
	close(m.stopC)
	<-m.doneC
	// Requests waiting on the loop have their answers now; a second is
	// plenty for them to be written. Idle keep-alive connections that never
	// sent a request would hold Shutdown for longer: close them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.httpSrv.Shutdown(ctx); err != nil {
		m.httpSrv.Close()
	}
	m.tr.close()
	if err := m.store.Close(); err != nil && m.Failure() == nil {
		m.log.Error("closing storage", "err", err)
	}
	m.log.Info("stopped")
}
