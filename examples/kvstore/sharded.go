package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/multiraft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
)

// With --shards N above 1, a member hosts N Raft groups (shards 1..N) in
// one multiraft.Host: every member hosts every shard, a key belongs to the
// shard its hash picks (shardOf), and writes and linearizable reads go to
// that shard. One Ready loop drives the host; its batches travel on one
// connection per peer (sharded_transport.go); the shards' logs are one
// wal.MultiLog (shard_storage.go), saved once per host Ready.
//
// A write learns its fate as the single-group member's does
// (proposals.go), through the host's ProposeWithResult and each shard's
// forwarded outcomes: it waits at the (index, term) its entry got, and is
// answered when this member applies that index (503 proposal_lost if
// another entry is there), or by request id where its place is unknown.
// Membership changes apply to every shard (sharded_membership.go) and wait
// by request id.

// shardOf is the shard holding key: FNV-1a of the key, the same on every
// member and across restarts.
func shardOf(key string, n int) uint64 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return uint64(h.Sum32()%uint32(n)) + 1
}

// shard is one group's share of the member: its state machine and the
// requests waiting on it. Owned by the loop, except sm (concurrent reads).
type shard struct {
	id       uint64
	sm       *stateMachine
	lead     uint64
	state    raft.StateType
	term     uint64
	commit   uint64
	lastSnap uint64
	// campaignAt: campaign once this index is applied (see spreadLeaders).
	campaignAt uint64
	requests
	// wasMember: a configuration of the shard applied here held this
	// member; removed: a later one did not (see noteSelf).
	wasMember bool
	removed   bool
}

// batchIn is a batch from a peer, for the loop.
type batchIn struct {
	from  uint64
	batch *mrpb.Batch
}

// shardedMember is a kvstore server with --shards above 1.
type shardedMember struct {
	cfg      memberConfig
	n        int
	log      *slog.Logger
	metrics  *metrics
	quiesced prometheus.Gauge
	led      prometheus.Gauge
	store    shardLog
	host     *multiraft.Host // owned by the run goroutine
	shards   []*shard        // shards[i-1] is shard i
	tr       *transport
	httpSrv  *http.Server
	clientL  net.Listener
	ticks    uint64
	// dirty: a Ready changed what the status shows since it was last
	// published; published is the quiesced count then.
	dirty     bool
	published int

	recvC   chan batchIn
	reports chan report
	loop
	status  atomic.Pointer[shardedStatus]
	reqSeq  atomic.Uint64
	started time.Time
	// peerIn counts, for each other member, the shards whose applied
	// configuration holds it: the transport knows a member while it is
	// above zero. Owned by the loop.
	peerIn map[uint64]int
	// gone are the members every shard removed (owned by the loop): the
	// host sends them no node-level heartbeats (see forgetGone).
	gone map[uint64]bool
	// removedShards counts the shards that applied this member's
	// removal (owned by the loop); removed is set once all have.
	removedShards int
	removed       atomic.Bool
	// heard are the peers whose liveness-only batches arrived since the
	// loop last stepped them (see deliver); heardSpare is the loop's
	// other buffer.
	heardMu    sync.Mutex
	heard      []uint64
	heardSpare []uint64
	// waiting are the shards given a request (write, read, conf change)
	// since they last had none waiting; owned by the loop (see expire).
	waiting map[uint64]*shard
	// freeing are the shards freeLog has still to snapshot; freeTried the
	// number of log segments when it last chose them. Owned by the loop.
	freeing   []uint64
	freeTried int
}

// shardStatus is one shard as a member sees it.
type shardStatus struct {
	Shard   uint64 `json:"shard"`
	State   string `json:"state"`
	Term    uint64 `json:"term"`
	Lead    uint64 `json:"leader"`
	Commit  uint64 `json:"commit"`
	Applied uint64 `json:"applied"`
}

// shardedStatus is GET /status of a sharded member.
type shardedStatus struct {
	ID       uint64 `json:"id"`
	Shards   int    `json:"shards"`
	Leading  int    `json:"leading"`   // shards this member leads
	NoLeader int    `json:"no_leader"` // shards without a known leader here
	Quiesced int    `json:"quiesced"`  // groups not ticking here
	// Removed: every shard applied this member's removal; RemovedShards:
	// how many did.
	Removed       bool          `json:"removed"`
	RemovedShards int           `json:"removed_shards,omitempty"`
	Groups        []shardStatus `json:"groups,omitempty"`
}

// startShardedMember is startMember for --shards above 1.
func startShardedMember(cfg memberConfig) (*shardedMember, error) {
	m := &shardedMember{
		cfg: cfg, n: cfg.Shards, log: cfg.Logger.With("member", cfg.ID), metrics: newMetrics(),
		loop: newLoop(4096), recvC: make(chan batchIn, 1024), reports: make(chan report, 4096),
		started: time.Now(), peerIn: map[uint64]int{}, gone: map[uint64]bool{}, waiting: map[uint64]*shard{},
	}
	m.quiesced = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kvstore_quiesced_groups", Help: "Shards (Raft groups) quiesced on this member: not ticking, no heartbeats."})
	m.led = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kvstore_shards_led", Help: "Shards this member leads."})
	shardsGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "kvstore_shards", Help: "Shards (Raft groups) every member hosts."})
	shardsGauge.Set(float64(m.n))
	m.metrics.registry.MustRegister(m.quiesced, m.led, shardsGauge)
	st, err := openShardLog(cfg.DataDir, m.n, cfg.InMemory, wal.Options{FS: cfg.walFS, SegmentSize: cfg.walSegmentSize})
	if err != nil {
		return nil, err
	}
	m.store = st
	if err := m.startHost(); err != nil {
		st.close()
		return nil, err
	}
	if err := m.listen(); err != nil {
		st.close()
		return nil, err
	}
	go m.run()
	return m, nil
}

// startHost creates the host and its groups, recovering each shard's
// state machine from its snapshot and bootstrapping a new cluster's.
func (m *shardedMember) startHost() error {
	var peerIDs []uint64
	for id := range m.cfg.InitialCluster {
		if id != m.cfg.ID {
			peerIDs = append(peerIDs, id)
		}
	}
	host, err := multiraft.NewHost(multiraft.Config{ID: m.cfg.ID, Peers: peerIDs, NodeHeartbeatTicks: nodeHeartbeatTicks, NodeDownTicks: nodeDownTicks})
	if err != nil {
		return err
	}
	m.host = host
	boot := bootstrapPeers(m.cfg.InitialCluster)
	raftLog := raft.NewSlogLogger(m.log.With("component", "raft"))
	recovered := 0
	for i := 1; i <= m.n; i++ {
		s := &shard{id: uint64(i), sm: newStateMachine(), requests: newRequests()}
		m.shards = append(m.shards, s)
		rec, err := m.recoverShard(s)
		if err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
		if rec {
			recovered++
		}
	}
	// A new cluster's members bootstrap every shard with the initial
	// members. A member started with --join bootstraps none: it learns
	// each shard from its leader (the log from the start, or a snapshot).
	// So does a member of which some shards already hold a log (one that
	// joined and had not heard from every shard's leader yet), except
	// that one which bootstrapped here completes the bootstrap of shards
	// its first write left incomplete.
	join, err := m.cfg.joining()
	if err != nil {
		return err
	}
	bootstrap := recovered == 0 && !join
	if !join {
		if err := m.prepareBootstrap(bootstrap); err != nil {
			return err
		}
	}
	for _, s := range m.shards {
		st := m.store.storage(s.id)
		snap, err := st.Snapshot()
		if err != nil {
			return fmt.Errorf("shard %d: %w", s.id, err)
		}
		rc := raft.Config{
			ElectionTick: electionTick, HeartbeatTick: 1, Storage: st, Applied: snap.Metadata.Index,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, CheckQuorum: true, PreVote: true, StepDownOnRemoval: true,
			Logger: raftLog,
		}
		if m.cfg.configureRaft != nil {
			m.cfg.configureRaft(&rc)
		}
		var peers []raft.Peer
		if bootstrap {
			peers = boot
		}
		if err := host.CreateGroup(s.id, rc, peers); err != nil {
			return err
		}
	}
	switch {
	case bootstrap:
		m.spreadLeaders(boot)
		m.log.Info("bootstrapped a new cluster", "members", len(boot), "shards", m.n)
	case recovered > 0:
		m.log.Info("recovered from disk", "shards", m.n, "recovered", recovered)
	default:
		m.log.Info("joining a cluster: every shard waits for its leader", "shards", m.n)
	}
	return nil
}

// recoverShard restores s's state machine from its snapshot and reports
// whether its log holds anything.
func (m *shardedMember) recoverShard(s *shard) (bool, error) {
	st := m.store.storage(s.id)
	snap, err := st.Snapshot()
	if err != nil {
		return false, err
	}
	if !raft.IsEmptySnap(snap) {
		if err := s.sm.restore(snap); err != nil {
			return false, err
		}
		s.lastSnap = snap.Metadata.Index
		m.noteConf(s, pb.ConfState{})
	}
	last, err := st.LastIndex()
	if err != nil || last == 0 {
		return false, err
	}
	hs, _, _ := st.InitialState()
	s.term, s.commit = hs.Term, hs.Commit
	return true, nil
}

// prepareBootstrap records that the member bootstraps, before anything is
// saved; or, if it bootstrapped here, completes, with one Save, the
// bootstrap of the shards that a power cut during its first write left
// without a configuration (see bootstrap.go).
func (m *shardedMember) prepareBootstrap(bootstrap bool) error {
	bootEnts, bootHS, err := m.cfg.bootstrapToComplete(bootstrap)
	if len(bootEnts) == 0 || err != nil {
		return err
	}
	var rd multiraft.Ready
	for _, s := range m.shards {
		rest, hs, ok, err := bootstrapRest(m.store.storage(s.id), bootEnts, bootHS)
		if err != nil {
			m.log.Warn("shard without a configuration", "shard", s.id, "err", err)
		}
		if !ok {
			continue
		}
		rd.Groups = append(rd.Groups, multiraft.GroupReady{GroupID: s.id, Ready: raft.Ready{HardState: hs, Entries: rest}})
		s.term, s.commit = hs.Term, hs.Commit
	}
	if len(rd.Groups) == 0 {
		return nil
	}
	if err := m.store.saveReady(&rd); err != nil {
		return fmt.Errorf("completing the bootstrap: %w", err)
	}
	m.log.Warn("completed the bootstrap of shards whose first write a crash cut short", "shards", len(rd.Groups))
	return nil
}

// spreadLeaders makes a new cluster's member k (in id order) campaign for
// shards k, k+n, k+2n, ... as soon as it has applied the bootstrap
// configuration (raft refuses to campaign before), so that leadership, and
// with it the work of writes, starts out spread over the members rather
// than going to whichever member starts first.
func (m *shardedMember) spreadLeaders(boot []raft.Peer) {
	for _, s := range m.shards {
		if boot[int(s.id-1)%len(boot)].ID == m.cfg.ID {
			s.campaignAt = uint64(len(boot))
		}
	}
}

// maybeCampaign campaigns for s once it applied index s.campaignAt, unless
// it has a leader by then.
func (m *shardedMember) maybeCampaign(s *shard) {
	if s.campaignAt == 0 || s.sm.appliedIndex() < s.campaignAt {
		return
	}
	s.campaignAt = 0
	if s.lead != 0 {
		return
	}
	if err := m.host.Campaign(s.id); err != nil {
		m.log.Warn("campaign", "shard", s.id, "err", err)
	}
}

func (m *shardedMember) listen() error {
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
	m.tr = newBatchTransport(m.cfg.ID, clientL.Addr().String(), peerL, m.cfg.TLS.Peer, m.n, m.deliver, m.reports, m.metrics, m.log.With("component", "transport"))
	for id, addr := range m.cfg.InitialCluster {
		m.tr.setPeer(id, addr)
	}
	for _, s := range m.shards {
		_, peers := s.sm.members()
		for id, addr := range peers {
			if m.peerIn[id] > 0 {
				m.tr.setPeer(id, addr)
			}
		}
	}
	m.httpSrv = &http.Server{Handler: m.routes(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(m.log.With("component", "http").Handler(), slog.LevelWarn)}
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
	m.log.Info("serving", "client", clientL.Addr().String(), "peer", peerL.Addr().String(), "shards", m.n)
	return nil
}

// deliver hands a batch from a peer to the loop. A batch that only says
// the peer is alive (a node-level heartbeat, nothing for any shard) does
// not wake the loop: it is noted (heard) and stepped at the loop's next
// tick (stepHeard), which with every shard quiesced is the next time the
// host's clock moves, so the host records the peer as heard at the same
// clock reading, and otherwise within a tick. An idle member thus wakes
// once per heartbeat interval, not once more per peer.
func (m *shardedMember) deliver(from uint64, b *mrpb.Batch) {
	if m.cfg.dropBatch != nil && m.cfg.dropBatch(from) {
		return
	}
	if len(b.Messages)+len(b.Heartbeats)+len(b.HeartbeatResponses)+len(b.WakeGroups) == 0 {
		m.heardMu.Lock()
		if !slices.Contains(m.heard, from) {
			m.heard = append(m.heard, from)
		}
		m.heardMu.Unlock()
		return
	}
	select {
	case m.recvC <- batchIn{from, b}:
	case <-m.stopC:
	case <-m.failedC:
	}
}

func (m *shardedMember) newRequestID() string {
	return strconv.FormatUint(m.cfg.ID, 10) + "-" + strconv.FormatInt(m.started.UnixNano(), 36) + "-" + strconv.FormatUint(m.reqSeq.Add(1), 10)
}

// statusEvery is how often, in ticks, the status is published when it
// changed without a leader change (it costs one pass over the shards, so
// an idle member skips it).
const statusEvery = 10

// run is the Ready loop: the only goroutine that touches the host.
func (m *shardedMember) run() {
	defer close(m.doneC)
	defer m.recoverFailure(m.log, m.failAll)
	clock := newTickClock(m.cfg.TickInterval)
	defer clock.stop()
	publish := false
	tick := func() {
		m.stepHeard()
		for range clock.due {
			m.host.Tick()
			m.ticks++
			if m.ticks%statusEvery == 0 {
				m.expire(time.Now())
				publish = publish || m.dirty || m.published != m.host.NumGroups()-m.host.NumActive()
			}
		}
		clock.fired()
	}
	step, report := m.step, m.handleReport // bound once, not at every wake
	for {
		publish = false
		if !next(&m.loop, clock.timer.C, tick, m.recvC, step, m.reports, report) {
			m.failAll(errStopped)
			return
		}
		drain(&m.loop, m.recvC, step, m.reports, report)
		for m.host.HasReady() {
			if m.handleReady(m.host.Ready()) {
				publish = true
			}
		}
		if publish {
			m.publishStatus()
		}
		m.forgetGone()
		clock.plan(m.ticksPerWake())
	}
}

// forgetGone takes the members every shard removed off the host's peers,
// after each round: a batch from one (it runs on until stopped) or a
// message to one makes it a peer again, and the host would send it
// node-level heartbeats, which fail (counted as failed sends) once it is
// stopped, for as long as this member runs.
func (m *shardedMember) forgetGone() {
	for id := range m.gone {
		m.host.RemovePeer(id)
	}
}

// The node-level heartbeat interval and liveness timeout, in ticks: at
// the default 10 ms tick a heartbeat every 100 ms, and a peer silent for
// a second taken for down.
//
// The heartbeats are what an idle member costs: with every shard
// quiesced, the loop wakes once per interval to send its own and take the
// peers' (ticksPerWake, deliver). At two ticks (as before) three idle
// --shards 10000 members used a median 3.4-4.1% of a core each on the
// shared 2-core test machine, at ten 1.0% (docs/benchmarks.md).
//
// Safety does not depend on either: quiescence only withholds ticks, and
// ticks only decide when elections and heartbeats happen, never what is
// committed (see the multiraft package documentation). What they decide is
// failover: the shards asleep under a leader on a member that stops wake
// nodeDownTicks after it was last heard, and then elect within their
// election timeout (10-20 ticks). With the interval at two ticks and the
// timeout at 20 that was 30-40 ticks (0.3-0.4 s at 10 ms); at ten and 100
// it is 110-120 ticks (1.1-1.2 s; measured with 64 shards, 1.5 s from a
// kill to every shard led again, against 0.6 s), the price of an idle
// member five times cheaper in heartbeats. The timeout is the same ten intervals as before,
// so as many heartbeats may be late or lost before a live member is taken
// for down (a wake of the shards asleep under it; with PreVote and
// CheckQuorum, no election while their leader answers). Shards that are
// awake are not concerned: their leaders heartbeat every tick, and their
// followers elect within their election timeout.
const (
	nodeHeartbeatTicks = 10
	nodeDownTicks      = 10 * nodeHeartbeatTicks
)

// ticksPerWake is how many ticks the loop gives the host at its clock's
// next firing: one while any shard is awake or the host has work; with
// every shard quiesced, the ticks until the host next has something to do
// (multiraft.Host.IdleTicks: its node-level heartbeats fall due, or a
// silent peer is taken for down), at most nodeHeartbeatTicks, so that an
// idle member wakes once per heartbeat interval rather than at every
// tick. It does not stop ticking: the node-level heartbeats are how peers
// know this member is alive (without them, after nodeDownTicks, they would
// wake every shard asleep under its leaders and elect). A batch received
// between two wakes is stamped at the host's older clock reading, so a
// peer may be taken for down up to nodeHeartbeatTicks-1 ticks early, a
// tenth of nodeDownTicks. Input that wakes a shard brings the loop back to
// a tick a wake.
func (m *shardedMember) ticksPerWake() int {
	return min(m.host.IdleTicks(), nodeHeartbeatTicks)
}

// stepHeard steps, on the loop, a node-level heartbeat from each peer
// deliver noted since the last call.
func (m *shardedMember) stepHeard() {
	m.heardMu.Lock()
	heard := m.heard
	m.heard = m.heardSpare[:0]
	m.heardMu.Unlock()
	for _, from := range heard {
		if _, gone := m.gone[from]; gone {
			// Stepped, it would make the member a peer again, sent
			// node-level heartbeats until forgetGone after this round.
			continue
		}
		m.step(batchIn{from, &mrpb.Batch{From: from, To: m.cfg.ID, NodeHeartbeat: true}})
	}
	m.heardSpare = heard[:0]
}

func (m *shardedMember) step(b batchIn) {
	if err := m.host.Step(b.from, b.batch); err != nil {
		m.metrics.peerBadFrames.Inc()
		m.log.Warn("dropped a batch", "from", b.from, "err", err)
	}
}

func (m *shardedMember) handleReport(r report) {
	if r.group == 0 {
		return
	}
	if r.unreachable {
		m.host.ReportUnreachable(r.group, r.to)
	}
	if r.snapshot != nil {
		m.host.ReportSnapshot(r.group, r.to, *r.snapshot)
	}
}

// handleReady follows the host Ready contract: persist every shard's
// state, send the batches, apply, advance. It reports whether a shard's
// leader changed.
func (m *shardedMember) handleReady(rd multiraft.Ready) bool {
	start := time.Now()
	changed := false
	m.dirty = m.dirty || len(rd.Groups) > 0
	for i := range rd.Groups {
		gr := &rd.Groups[i]
		s := m.shards[gr.GroupID-1]
		if gr.SoftState != nil {
			changed = m.softStateChanged(s, gr.SoftState) || changed
		}
		if !raft.IsEmptyHardState(gr.HardState) {
			s.term, s.commit = gr.HardState.Term, gr.HardState.Commit
		}
	}
	// 1. Persist.
	if err := m.store.saveReady(&rd); err != nil {
		m.fatal("persisting a Ready failed; the member cannot go on safely", err)
	}
	// 2. Send.
	m.tr.sendBatches(rd.Batches)
	// 3. Apply.
	for i := range rd.Groups {
		m.applyGroup(&rd.Groups[i])
	}
	// 4. Advance.
	m.host.Advance(rd)
	for i := range rd.Groups {
		s := m.shards[rd.Groups[i].GroupID-1]
		m.releaseReads(s)
		m.maybeSnapshot(s)
		m.maybeCampaign(s)
	}
	m.freeLog()
	m.metrics.readyLatency.Observe(time.Since(start).Seconds())
	return changed
}

func (m *shardedMember) softStateChanged(s *shard, ss *raft.SoftState) bool {
	s.state = ss.RaftState
	if ss.Lead == s.lead {
		return false
	}
	m.metrics.leaderChanges.Inc()
	m.log.Debug("leader changed", "shard", s.id, "leader", ss.Lead, "state", ss.RaftState.String())
	if s.lead != 0 {
		// Writes that know their (index, term) wait for it to be applied;
		// the others, and every read, may be lost with the old leader.
		s.failUntracked(errLeaderChanged)
	}
	s.lead = ss.Lead
	return true
}

// applyGroup applies one shard's snapshot, committed entries and read
// states.
func (m *shardedMember) applyGroup(gr *multiraft.GroupReady) {
	s := m.shards[gr.GroupID-1]
	// Where forwarded writes went is learned before the Ready that applies
	// their entries.
	s.takeForwardedOutcomes(gr.ForwardedOutcomes, s.sm.appliedIndex(), s.lead)
	if !raft.IsEmptySnap(gr.Snapshot) {
		old := s.sm.confState()
		if err := s.sm.restore(gr.Snapshot); err != nil {
			m.fatal(fmt.Sprintf("shard %d: restoring a snapshot failed", s.id), err)
		}
		s.lastSnap = gr.Snapshot.Metadata.Index
		s.failCoveredBySnapshot(gr.Snapshot.Metadata.Index)
		m.noteConf(s, old)
		m.log.Info("installed snapshot", "shard", s.id, "index", gr.Snapshot.Metadata.Index)
	}
	for _, e := range gr.CommittedEntries {
		switch e.Type {
		case pb.EntryNormal:
			id, res, err := s.sm.apply(e)
			if err != nil {
				m.log.Error("skipping an entry the state machine cannot apply", "shard", s.id, "index", e.Index, "err", err)
			}
			s.answerAt(e, res, err, m.metrics.proposalsLost)
			s.answerID(id, res, err)
		case pb.EntryConfChange, pb.EntryConfChangeV2:
			m.applyConfChange(s, e)
		}
	}
	m.metrics.committed.Add(float64(len(gr.CommittedEntries)))
	for _, rs := range gr.ReadStates {
		if w, ok := s.reads[string(rs.RequestCtx)]; ok {
			delete(s.reads, string(rs.RequestCtx))
			w.index = rs.Index
			s.indexed = append(s.indexed, w)
		}
	}
}

// applyConfChange applies a shard's conf change, answers the request
// that proposed it here, and tells the transport and the member's removal
// state what changed.
func (m *shardedMember) applyConfChange(s *shard, e pb.Entry) {
	cc, err := pb.UnmarshalConfChange(e)
	if err != nil {
		m.fatal(fmt.Sprintf("shard %d: a committed conf change does not decode", s.id), err)
	}
	v2 := cc.AsV2()
	var ctx confContext
	if len(v2.Context) > 0 {
		if err := json.Unmarshal(v2.Context, &ctx); err != nil {
			m.log.Warn("conf change with an unreadable context", "shard", s.id, "index", e.Index, "err", err)
		}
	}
	cs, err := m.host.ApplyConfChange(s.id, cc)
	if err != nil {
		m.fatal(fmt.Sprintf("shard %d: applying a conf change", s.id), err)
	}
	added := map[uint64]string{}
	var removed []uint64
	for _, c := range v2.Changes {
		switch c.Type {
		case pb.ConfChangeAddNode, pb.ConfChangeAddLearnerNode:
			added[c.NodeID] = ctx.Peer
		case pb.ConfChangeRemoveNode:
			removed = append(removed, c.NodeID)
		}
	}
	old := s.sm.confState()
	s.sm.applyConf(e.Index, *cs, added, removed)
	m.log.Debug("membership changed", "shard", s.id, "index", e.Index, "voters", cs.Voters, "learners", cs.Learners)
	s.answerAt(e, applyResult{index: e.Index}, nil, m.metrics.proposalsLost)
	s.answerID(ctx.RequestID, applyResult{index: e.Index}, nil)
	m.noteConf(s, old)
}

// noteConf follows shard s from configuration old to the one its state
// machine holds now: the transport learns a member when the first shard's
// configuration holds it; when the last one's no longer does, the host
// stops its node-level heartbeats (forgetGone) but the transport keeps its
// address: if it missed the commit of its removal it campaigns, and the
// shard leaders' answers (the log up to their commit index) must reach it.
func (m *shardedMember) noteConf(s *shard, old pb.ConfState) {
	cs, peers := s.sm.members()
	for _, id := range confMembers(old, cs) {
		was, is := inConfig(id, old), inConfig(id, cs)
		if was == is || id == m.cfg.ID {
			continue
		}
		if is {
			m.peerIn[id]++
			delete(m.gone, id)
			if m.peerIn[id] == 1 && m.tr != nil {
				m.tr.setPeer(id, peers[id])
				m.log.Info("member added", "peer", id, "addr", peers[id], "shard", s.id)
			}
			continue
		}
		if m.peerIn[id]--; m.peerIn[id] <= 0 {
			delete(m.peerIn, id)
			m.gone[id] = true
			m.log.Info("member removed from every shard", "peer", id, "shard", s.id)
		}
	}
	m.noteSelf(s, cs)
}

// noteSelf marks shard s removed here once a configuration it applied no
// longer holds this member after an earlier one did (see member.noteRemoval:
// the configurations before this member was added are not a removal), and
// fails what waits on it. Once every shard has, the member is removed.
func (m *shardedMember) noteSelf(s *shard, cs pb.ConfState) {
	if inConfig(m.cfg.ID, cs) {
		s.wasMember = true
		if s.removed {
			// Added again under the same id after its removal.
			s.removed = false
			m.removedShards--
			m.dirty = true
			if m.removed.Load() {
				m.removed.Store(false)
				m.metrics.removed.Set(0)
				m.log.Info("this member was added again to a shard it had been removed from", "shard", s.id)
			}
		}
		return
	}
	if !s.wasMember || s.removed {
		return
	}
	s.removed = true
	m.removedShards++
	m.dirty = true
	s.failAll(errRemovedInFlight)
	if m.removedShards < m.n {
		return
	}
	m.removed.Store(true)
	m.metrics.removed.Set(1)
	m.log.Warn("this member was removed from every shard; it refuses writes and linearizable reads (410) and serves stale reads only")
}

// confMembers is every member in a or b, sorted, once.
func confMembers(a, b pb.ConfState) []uint64 {
	var ids []uint64
	for _, cs := range []pb.ConfState{a, b} {
		for _, l := range [][]uint64{cs.Voters, cs.VotersOutgoing, cs.Learners, cs.LearnersNext} {
			ids = append(ids, l...)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// releaseReads answers s's reads whose index its state machine reached.
func (m *shardedMember) releaseReads(s *shard) {
	applied := s.sm.appliedIndex()
	kept := s.indexed[:0]
	for _, w := range s.indexed {
		if w.index <= applied {
			w.finish(nil)
		} else {
			kept = append(kept, w)
		}
	}
	clear(s.indexed[len(kept):])
	s.indexed = kept
}

// maybeSnapshot snapshots s's state machine every SnapshotEvery applied
// entries and compacts its log. A shard that applied this member's removal
// takes no snapshot more: its last one still holds the member, and a
// restart replays the removal from the log (see member.maybeSnapshot).
func (m *shardedMember) maybeSnapshot(s *shard) {
	applied := s.sm.appliedIndex()
	if m.cfg.SnapshotEvery == 0 || applied < s.lastSnap+m.cfg.SnapshotEvery || s.removed {
		return
	}
	m.snapshot(s, m.cfg.SnapshotEvery/2)
}

// snapshot snapshots s's state machine at its applied index, unless its
// last snapshot is there already, and compacts its log up to keep entries
// before that snapshot.
func (m *shardedMember) snapshot(s *shard, keep uint64) {
	if s.sm.appliedIndex() > s.lastSnap {
		data, cs, index := s.sm.snapshot()
		if err := m.store.createSnapshot(s.id, index, &cs, data); err != nil {
			m.log.Error("snapshot failed", "shard", s.id, "index", index, "err", err)
			return
		}
		s.lastSnap = index
		m.metrics.snapshots.Inc()
	}
	if index := s.lastSnap; index > keep {
		if err := m.store.compact(s.id, index-keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
			m.log.Error("compaction failed", "shard", s.id, "index", index-keep, "err", err)
		}
	}
}

// maxLogSegments is how many segment files (64 MiB each) the shards' log
// may hold before freeLog snapshots the shards that keep the oldest.
// freeLogBatch is how many of them it snapshots in one round of the loop
// (a snapshot costs two fsyncs), so that freeing the first segment of a
// new --shards 10000 member, which holds every shard's bootstrap, does not
// stall the loop for 20,000 fsyncs at once.
const (
	maxLogSegments = 4
	freeLogBatch   = 16
)

// freeLog keeps the shards' log from growing with everything ever
// written. The log deletes its oldest segments once no shard needs an
// entry in them, and a shard snapshots and compacts every SnapshotEvery
// entries it applies: a shard that takes few writes would keep the segment
// of its last entries (at first, its bootstrap) for good, and every later
// segment with it, whatever the others compact. So once the log holds more
// than maxLogSegments, the shards holding the oldest segment are
// snapshotted at their applied index and compacted to it, however few
// entries they applied since their last snapshot, a batch per round. If
// that frees nothing (a holder has not applied its entries there, or
// applied this member's removal and takes no snapshot), it tries again once
// the log has grown by a segment.
func (m *shardedMember) freeLog() {
	if len(m.freeing) == 0 {
		n := m.store.segments()
		if n < m.freeTried {
			m.freeTried = 0
		}
		if m.cfg.SnapshotEvery == 0 || n <= max(maxLogSegments, m.freeTried) {
			return
		}
		m.freeTried = n
		m.freeing = m.store.oldestHolders()
	}
	batch := m.freeing[:min(len(m.freeing), freeLogBatch)]
	m.freeing = m.freeing[len(batch):]
	for _, id := range batch {
		if s := m.shards[id-1]; !s.removed {
			m.snapshot(s, 0)
		}
	}
}

// propose proposes a command to shard s, on the loop goroutine.
func (m *shardedMember) propose(s *shard, w *waiter, reqID string, data []byte) {
	if err := unserved(s.removed, s.lead); err != nil {
		w.finish(err)
		return
	}
	m.metrics.proposals.Inc()
	res, err := m.host.ProposeWithResult(s.id, data)
	if err != nil {
		m.metrics.proposalsFailed.Inc()
		w.finish(fmt.Errorf("%w (%v)", errNoLeader, err))
		return
	}
	s.track(w, reqID, res, s.lead)
	m.waiting[s.id] = s
}

// readIndex asks shard s for a read index, on the loop goroutine.
func (m *shardedMember) readIndex(s *shard, w *waiter, rctx string) {
	if err := unserved(s.removed, s.lead); err != nil {
		w.finish(err)
		return
	}
	m.metrics.readIndex.Inc()
	if err := m.host.ReadIndex(s.id, []byte(rctx)); err != nil {
		w.finish(fmt.Errorf("%w (%v)", errNoLeader, err))
		return
	}
	s.reads[rctx] = w
	m.waiting[s.id] = s
}

// expire fails the requests whose deadline passed. It looks only at the
// shards given a request since they last had none (m.waiting), so that an
// idle member's pass costs nothing however many shards it hosts: a pass
// over all of them, every statusEvery ticks, was about a third of what an
// idle --shards 10000 member did.
func (m *shardedMember) expire(now time.Time) {
	for id, s := range m.waiting {
		if len(s.waiters)+len(s.reads)+len(s.forwarded)+len(s.atIndex) == 0 {
			delete(m.waiting, id)
			continue
		}
		s.expire(now)
	}
}

func (m *shardedMember) failAll(err error) {
	for _, s := range m.shards {
		s.failAll(err)
	}
}

func (m *shardedMember) publishStatus() {
	st := &shardedStatus{
		ID: m.cfg.ID, Shards: m.n, Quiesced: m.host.NumGroups() - m.host.NumActive(),
		Removed: m.removed.Load(), RemovedShards: m.removedShards,
	}
	st.Groups = make([]shardStatus, len(m.shards))
	for i, s := range m.shards {
		st.Groups[i] = shardStatus{Shard: s.id, State: s.state.String(), Term: s.term, Lead: s.lead, Commit: s.commit, Applied: s.sm.appliedIndex()}
		switch {
		case s.lead == 0:
			st.NoLeader++
		case s.lead == m.cfg.ID:
			st.Leading++
		}
	}
	m.dirty, m.published = false, st.Quiesced
	m.quiesced.Set(float64(st.Quiesced))
	m.led.Set(float64(st.Leading))
	m.status.Store(st)
}

func (m *shardedMember) fatal(msg string, err error) {
	panic(memberFailure{fmt.Errorf("%s: %w", msg, err)})
}

// stop shuts the member down as member.stop does.
func (m *shardedMember) stop() {
	close(m.stopC)
	<-m.doneC
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.httpSrv.Shutdown(ctx); err != nil {
		m.httpSrv.Close()
	}
	m.tr.close()
	if err := m.store.close(); err != nil && m.Failure() == nil {
		m.log.Error("closing storage", "err", err)
	}
	m.log.Info("stopped")
}
