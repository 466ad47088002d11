package rafttest

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// chaosNode is one node of a RunChaos run: its durable storage, and its
// server while it runs (nil while crashed).
type chaosNode struct {
	id      uint64
	storage *raft.MemoryStorage
	srv     Server
	rn      *raft.RawNode
	env     *ServerEnv
	// log is the server's storage if it is a StorageServer.
	log raft.Storage
	// restarts counts the node's crashes.
	restarts int
	// persisted is the last HardState handed to a HandleReady that
	// returned; synced is persisted as of the last such Ready with
	// MustSync, which must survive a crash. (A Ready without MustSync
	// changes no term or vote and appends nothing: the commit index it
	// carries may be lost, which costs nothing but re-learning it.)
	persisted, synced pb.HardState
	// commit is the highest commit index of this incarnation; applied
	// the last committed index handed to it.
	commit, applied uint64
	// span is the node's current stretch on the timeline.
	span nodeSpan
	// later holds the work its server handed to ServerEnv.Later, by
	// queue; a crash drops it.
	later map[string][]laterWork
	// promised is what the messages its servers sent promise about their
	// durable state: a term at least, and in a term the vote.
	promised promise
	// async is set once its server handed storage work to threads of its
	// own (AsyncStorageWrites): a Ready's commit index is then not known
	// to be stored when HandleReady returns.
	async bool
	// outbox holds what its server sends during HandleReady, sent once it
	// returns (unless the node dies first); nil outside HandleReady.
	outbox []pb.Message
	// restartAt, when not 0, is the tick of a restart already decided
	// (FreshLeaderCrashRate), and campaign makes that restart call
	// Campaign at once.
	restartAt int64
	campaign  bool
	// holding is set while its server holds a Ready (ServerEnv.HoldReady)
	// and held the last committed index that Ready handed out.
	holding bool
	held    uint64
	// confChecked is where its configuration was last checked
	// (checkConf).
	confChecked confCheckPoint
}

// laterWork is a function handed to ServerEnv.Later and when it is due.
type laterWork struct {
	due int64
	f   func()
}

// promise is what a node's acknowledgements and vote messages promise
// about its durable state: its term is at least term; in voteTerm it voted
// for vote (None: no vote promised); in ackTerm its log holds entries up
// to ackIndex (a leader never takes back, within its term, what a
// follower acknowledged).
type promise struct {
	term, voteTerm, vote uint64
	ackTerm, ackIndex    uint64
}

// nodeSpan is a stretch of a node's timeline in one role and term (or
// down).
type nodeSpan struct {
	start int64
	what  string
	// state and term are the role and term of a stretch up (what is
	// "down" otherwise).
	state raft.StateType
	term  uint64
}

// chaosOp is a client's operation while its client waits for it.
type chaosOp struct {
	id       uint64
	hist     int // index in chaosRun.history
	deadline int64
	client   *chaosClient
	// live marks an operation started in the liveness phase.
	live bool
}

type chaosClient struct {
	id      int
	pending *chaosOp
	// liveDone is set once an operation started in the liveness phase
	// was answered.
	liveDone bool
}

// chaosRun is one run of RunChaos.
type chaosRun struct {
	simLog
	cfg   ChaosConfig
	fault SimConfig
	rnd   *rand.Rand
	opRnd *rand.Rand
	// laterRnd draws the delays of ServerEnv.Later, reconfRnd the
	// membership changes, leaderCrashRnd the fresh leaders' crashes,
	// forgetRnd the snapshot reports forgotten (streams of their own, so
	// that servers that use none replay as before).
	laterRnd, reconfRnd, leaderCrashRnd, forgetRnd *rand.Rand
	net                                            *Network
	clock                                          int64
	nodes                                          []*chaosNode
	peers                                          []raft.Peer

	clients  []*chaosClient
	history  []porcupine.Operation
	answered []bool
	pending  map[uint64]*chaosOp
	nextOpID uint64

	leaders   map[uint64]leadership
	committed map[uint64]entryRecord
	// appendedAt maps where servers reported proposals appended
	// (ServerEnv.Appended) to what was proposed.
	appendedAt map[[2]uint64]string // (index, term) -> data
	// confIndexes are the indexes of the committed conf changes, in
	// order; confAt is the configuration nodes have at rest after
	// applying up to each of them (checkConf).
	confIndexes []uint64
	confAt      map[uint64]confSeen
	// maxTerm is the highest term any node has reached.
	maxTerm uint64
	chaos   bool
	// isolation isolates the leader now and then in the chaos phase.
	isolation *leaderIsolation
	// allEvents, with ChaosConfig.keepEvents, keeps every event (for a
	// replay), not only the last ones.
	allEvents []string

	timeline []porcupine.Annotation
	// window counts the messages delivered and lost since the timeline's
	// last window of windowTicks.
	window struct{ delivered, lost int }
}

// windowTicks is the width of the timeline's windows of message counts
// and commit indexes.
const windowTicks = 10

// RunChaos runs cfg once, on seed, and returns what it found; Run runs it
// over many seeds from a test. The same cfg and seed replay the same run.
func RunChaos(cfg ChaosConfig, seed uint64) *ChaosResult {
	cfg = cfg.withDefaults()
	cfg.IsolateLeaderRate = isolationRate(seed, cfg.IsolateLeaderRate)
	return runChaos(cfg, chaosFaults(cfg, seed))
}

// chaosFaults returns the faults seed chooses for a run of cfg (which
// has its defaults).
func chaosFaults(cfg ChaosConfig, seed uint64) SimConfig {
	fault := RandomSimConfig(seed)
	if cfg.Nodes != 0 {
		fault.Nodes = cfg.Nodes
	}
	// What the server does itself (compaction, membership, async
	// storage, lease reads) is its own business here.
	fault.Clients, fault.ChaosTicks, fault.LivenessTicks = cfg.Clients, cfg.ChaosTicks, cfg.LivenessTicks
	fault.ConfChangeRate, fault.StepDownOnRemoval, fault.CompactEvery, fault.SnapshotTimeout, fault.ForgetReports = 0, false, 0, 0, 0
	fault.LeaseReads, fault.Async, fault.ApplyDelay, fault.FreshLeaderCrashRate, fault.SlowDisk = false, false, 0, 0, 0
	if cfg.NoDuplicates {
		fault.DupRate = 0
	}
	fault.FreshLeaderCrashRate, fault.ForgetReports = cfg.FreshLeaderCrashRate, cfg.ForgetSnapshotReports
	fault.HoldReadyRate, fault.SnapshotWaitsApply = 0, false
	for _, q := range cfg.Queues {
		if !q.SlowDisk {
			continue
		}
		if slow := rand.New(rand.NewPCG(seed, 0x51d15c)); slow.IntN(2) == 0 {
			fault.SlowDisk = uint64(1 + slow.IntN(fault.Nodes))
		}
		break
	}
	return fault
}

// runChaos runs cfg (which has its defaults) once, with the faults of
// fault: its cluster size, PreVote, CheckQuorum, flow-control limits,
// network, crash, restart and transfer rates, SlowDisk,
// FreshLeaderCrashRate and ForgetReports; the rest is the servers'
// business.
func runChaos(cfg ChaosConfig, fault SimConfig) *ChaosResult {
	seed := fault.Seed
	r := &chaosRun{
		cfg:            cfg,
		fault:          fault,
		rnd:            rand.New(rand.NewPCG(seed, 0xc4a05)),
		opRnd:          rand.New(rand.NewPCG(seed, 0x0905)),
		laterRnd:       rand.New(rand.NewPCG(seed, 0x1a7e)),
		reconfRnd:      rand.New(rand.NewPCG(seed, 0xc0f)),
		leaderCrashRnd: rand.New(rand.NewPCG(seed, 0x1eade7)),
		forgetRnd:      rand.New(rand.NewPCG(seed, 0xf0497)),
		net:            NewNetwork(seed),
		pending:        map[uint64]*chaosOp{},
		leaders:        map[uint64]leadership{},
		committed:      map[uint64]entryRecord{},
		confAt:         map[uint64]confSeen{},
		appendedAt:     map[[2]uint64]string{},
		chaos:          true,
		isolation:      newLeaderIsolation(seed, cfg.IsolateLeaderRate, !cfg.SteadyClocks),
	}
	res := &ChaosResult{Seed: seed, Faults: fault, model: cfg.Model}
	if err := cfg.validate(); err != nil {
		r.violate("%v", err)
	} else {
		r.run()
	}
	res.Ticks = r.now
	for _, n := range r.nodes {
		cn := ChaosNode{ID: n.id, Down: n.rn == nil}
		if n.rn != nil {
			st := n.rn.Status()
			cn.State, cn.Term, cn.Commit, cn.Applied = st.RaftState, st.Term, st.Commit, st.Applied
			cn.Conf = confStateOf(st)
		}
		res.Nodes = append(res.Nodes, cn)
	}
	r.closeHistory()
	res.Ops = len(r.history)
	for _, a := range r.answered {
		if a {
			res.Answered++
		}
	}
	if len(r.violations) == 0 {
		res.Linearizable = porcupine.CheckOperations(cfg.Model, r.history)
		if !res.Linearizable {
			r.event("the clients' history is not linearizable")
		}
	}
	res.Violations, res.Events = r.violations, r.events
	res.history, res.timeline = r.history, r.timeline
	res.allEvents = r.allEvents
	return res
}

// event records an event: among the last ones, and in allEvents when
// kept.
func (r *chaosRun) event(format string, args ...any) {
	r.simLog.event(format, args...)
	if r.cfg.keepEvents {
		r.allEvents = append(r.allEvents, r.events[len(r.events)-1])
	}
}

// violate records a violation, on the timeline too.
func (r *chaosRun) violate(format string, args ...any) {
	r.simLog.violate(format, args...)
	if r.cfg.keepEvents {
		r.allEvents = append(r.allEvents, r.events[len(r.events)-1])
	}
	r.mark("violations", "violation", r.violations[len(r.violations)-1], "#f66")
}

// stamp returns a time for the history, after every earlier one: ticks
// are 1000 units apart.
func (r *chaosRun) stamp() int64 {
	r.clock = max(r.clock+1, r.now*1000)
	return r.clock
}

// run starts the nodes, runs the chaos phase, then the liveness phase. A
// server that panics is a finding like any other.
func (r *chaosRun) run() {
	defer func() {
		if p := recover(); p != nil {
			r.violate("panic: %v", p)
		}
	}()
	for i := 1; i <= r.fault.Nodes; i++ {
		r.peers = append(r.peers, raft.Peer{ID: uint64(i)})
	}
	for id := uint64(1); id <= uint64(r.fault.Nodes+r.cfg.Spares); id++ {
		n := &chaosNode{id: id, storage: raft.NewMemoryStorage()}
		r.nodes = append(r.nodes, n)
		r.start(n)
	}
	r.net.SetDropRate(r.fault.DropRate)
	r.net.SetDelay(r.fault.MaxDelay)
	r.net.SetDupRate(r.fault.DupRate)
	r.net.OnDrop = r.lost
	for i := 0; i < r.cfg.Clients; i++ {
		r.clients = append(r.clients, &chaosClient{id: i})
	}
	for ; r.now < int64(r.cfg.ChaosTicks) && len(r.violations) == 0; r.now++ {
		r.net.SetNow(r.now)
		r.chaosStep()
		r.tick()
	}
	if len(r.violations) == 0 {
		r.liveness()
	}
	for _, n := range r.nodes {
		r.closeSpan(n)
	}
}

// start starts n's server, at the beginning or after a crash, and checks
// that it recovered what it had persisted.
func (r *chaosRun) start(n *chaosNode) {
	env := &ServerEnv{ID: n.id, Storage: n.storage, Restarts: n.restarts, run: r,
		Rand: rand.New(rand.NewPCG(r.fault.Seed^0x5e4e4, n.id<<16|uint64(n.restarts)))}
	if n.id <= uint64(len(r.peers)) {
		env.Peers = r.peers
	}
	if n.env != nil {
		env.Durable = n.env.Durable
	}
	n.env = env
	srv, err := r.cfg.Start(n.env)
	if err == nil && (srv == nil || srv.RawNode() == nil) {
		err = errors.New("no Server or no RawNode")
	}
	if err != nil {
		r.violate("node %d: start: %v", n.id, err)
		return
	}
	n.srv, n.rn, n.log = srv, srv.RawNode(), nil
	n.restartAt = 0
	if ss, ok := srv.(StorageServer); ok {
		n.log = ss.Storage()
	}
	st := n.rn.BasicStatus()
	p := n.synced
	if st.Term < p.Term || (st.Term == p.Term && p.Vote != raft.None && st.Vote != p.Vote) {
		r.violate("node %d restarted at term %d vote %d, but its HandleReady had persisted term %d vote %d", n.id, st.Term, st.Vote, p.Term, p.Vote)
	}
	if pr := n.promised; st.Term < pr.term {
		r.violate("node %d restarted at term %d, but it had acknowledged or voted in term %d (the write it promised was lost)", n.id, st.Term, pr.term)
	} else if st.Term == pr.voteTerm && st.Vote != pr.vote {
		r.violate("node %d restarted in term %d with vote %d, but it had sent its vote in that term for %d", n.id, st.Term, st.Vote, pr.vote)
	}
	if pr := n.promised; n.log != nil && st.Term == pr.ackTerm {
		if last, err := n.log.LastIndex(); err == nil && last < pr.ackIndex {
			r.violate("node %d restarted in term %d with its log ending at %d, but it had acknowledged entries up to %d in that term (the write it promised was lost)", n.id, st.Term, last, pr.ackIndex)
		}
	}
	if st.Commit < p.Commit {
		r.violate("node %d restarted with commit %d, but its HandleReady had persisted commit %d (with MustSync)", n.id, st.Commit, p.Commit)
	}
	// What it restarted from is what later Readys are compared with: what
	// its storage holds (a RawNode just bootstrapped holds more, not
	// stored yet), or what it restarted with.
	n.persisted = pb.HardState{Term: st.Term, Vote: st.Vote, Commit: st.Commit}
	if n.log != nil {
		if hs, _, err := n.log.InitialState(); err == nil {
			n.persisted = hs
		}
	}
	n.synced = n.persisted
	n.commit, n.applied = st.Commit, st.Applied
	if n.restarts > 0 {
		r.event("node %d restarted (term %d commit %d applied %d)", n.id, st.Term, st.Commit, st.Applied)
	}
	if n.campaign {
		n.campaign = false
		if err := n.rn.Campaign(); err != nil {
			r.violate("node %d: campaign after restart: %v", n.id, err)
		}
	}
	r.observe(n)
}

// crash stops n's server: the messages due to it are stepped into its
// RawNode and their Ready is never handled, so what they changed and
// was not persisted is lost.
func (r *chaosRun) crash(n *chaosNode) {
	for _, m := range r.net.TakeFor(n.id) {
		_ = n.rn.Step(m)
	}
	if c, ok := n.srv.(io.Closer); ok {
		if err := c.Close(); err != nil {
			r.violate("node %d: close: %v", n.id, err)
		}
	}
	n.srv, n.rn, n.log = nil, nil, nil
	n.later = nil
	n.holding = false
	n.restarts++
	r.event("node %d crashed", n.id)
	r.closeSpan(n)
	n.span = nodeSpan{start: r.now, what: "down"}
}

func (r *chaosRun) running() []*chaosNode {
	var out []*chaosNode
	for _, n := range r.nodes {
		if n.srv != nil {
			out = append(out, n)
		}
	}
	return out
}

func (r *chaosRun) node(id uint64) *chaosNode {
	if id == 0 || id > uint64(len(r.nodes)) {
		return nil
	}
	return r.nodes[id-1]
}

// chaosStep injects this tick's faults.
func (r *chaosRun) chaosStep() {
	f := r.fault
	// One node has no network to partition.
	if r.rnd.Float64() < f.PartitionRate && len(r.nodes) > 1 {
		what := repartition(r.rnd, r.net, len(r.nodes))
		r.event("%s", what)
		r.mark("network", what, "", "#fd8")
	}
	r.isolateLeaderStep()
	if r.rnd.Float64() < f.CrashRate {
		if run := r.running(); len(run) > 0 {
			r.crash(run[r.rnd.IntN(len(run))])
		}
	}
	for _, n := range r.nodes {
		if n.srv == nil && ((n.restartAt != 0 && n.restartAt <= r.now) || r.rnd.Float64() < f.RestartRate) {
			r.start(n)
		}
	}
	if r.cfg.ReconfigureRate > 0 && r.reconfRnd.Float64() < r.cfg.ReconfigureRate {
		if run := r.running(); len(run) > 0 {
			n := run[r.reconfRnd.IntN(len(run))]
			if rc, ok := n.srv.(Reconfigurer); ok {
				ids := make([]uint64, len(r.nodes))
				for i := range ids {
					ids[i] = uint64(i + 1)
				}
				r.event("node %d asked to change the membership", n.id)
				rc.Reconfigure(r.reconfRnd, ids)
				if n.srv != nil {
					r.observe(n)
				}
			}
		}
	}
	if r.rnd.Float64() < f.TransferRate {
		for _, n := range r.running() {
			if n.rn.BasicStatus().RaftState == raft.StateLeader {
				to := uint64(1 + r.rnd.IntN(len(r.nodes)))
				r.event("leader %d asked to transfer to %d", n.id, to)
				n.rn.TransferLeader(to)
			}
		}
	}
}

// tick runs one tick: clients act, nodes tick, and Readys and due
// messages are handled until the tick is quiet.
func (r *chaosRun) tick() {
	r.clientsStep()
	for _, n := range r.running() {
		if r.stalled(n) {
			continue
		}
		n.rn.Tick()
		r.observe(n)
	}
	for round := 0; round < 1000 && len(r.violations) == 0; round++ {
		busy := false
		for _, n := range r.nodes {
			if n.srv != nil && !n.holding && n.rn.HasReady() {
				busy = true
				r.handleReady(n)
			}
		}
		if r.deliverDue() {
			busy = true
		}
		if r.runLater() {
			busy = true
		}
		if !busy {
			break
		}
	}
	for _, n := range r.running() {
		r.checkStoredLog(n)
		r.checkConf(n)
	}
	if (r.now+1)%windowTicks == 0 {
		r.closeWindow()
	}
}

// handleReady hands n's next Ready to its server, checking what it is
// asked to persist and apply.
func (r *chaosRun) handleReady(n *chaosNode) {
	rd := n.rn.Ready()
	if !raft.IsEmptyHardState(rd.HardState) {
		if v := hardStateRegression(n.id, n.persisted, rd.HardState); v != "" {
			r.violate("%s", v)
		}
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		n.applied = max(n.applied, rd.Snapshot.Metadata.Index)
		r.compareConf(n.id, "is handed a snapshot with", rd.Snapshot.Metadata.Index, rd.Snapshot.Metadata.ConfState)
	}
	for _, e := range rd.CommittedEntries {
		r.checkCommitted(n, e)
	}
	// With AsyncStorageWrites the server's threads persist and apply
	// later; what they made durable shows in what the node sends.
	async := false
	for _, m := range rd.Messages {
		async = async || m.To == raft.LocalAppendThread || m.To == raft.LocalApplyThread
	}
	n.async = n.async || async
	n.outbox = []pb.Message{}
	err := n.srv.HandleReady(rd)
	out := n.outbox
	n.outbox = nil
	if err != nil {
		r.deliver(n, out)
		r.violate("node %d: HandleReady: %v", n.id, err)
		return
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		n.persisted = rd.HardState
	}
	if rd.MustSync && !async {
		// A sync makes the earlier writes durable too.
		n.synced = n.persisted
	}
	if rd.SoftState != nil && rd.RaftState == raft.StateLeader {
		r.checkLeaderLog(n)
	}
	if k := len(rd.CommittedEntries); k > 0 && n.holding {
		n.held = rd.CommittedEntries[k-1].Index
	} else if k > 0 && !async {
		if applied := n.rn.BasicStatus().Applied; applied < rd.CommittedEntries[k-1].Index {
			r.violate("node %d: HandleReady returned without calling Advance (applied %d, handed entries up to %d)", n.id, applied, rd.CommittedEntries[k-1].Index)
		}
	}
	if rd.SoftState != nil && rd.RaftState == raft.StateLeader && r.maybeCrashFreshLeader(n, out) {
		return
	}
	r.deliver(n, out)
	r.observe(n)
}

// maybeCrashFreshLeader crashes n, which has just become leader, at once
// if FreshLeaderCrashRate says so, sending out (its first messages as
// leader) first or not; it reports whether n crashed.
func (r *chaosRun) maybeCrashFreshLeader(n *chaosNode, out []pb.Message) bool {
	if r.fault.FreshLeaderCrashRate <= 0 || !r.chaos || !n.hasLater() {
		return false
	}
	termPending := false
	if n.log != nil {
		hs, _, err := n.log.InitialState()
		termPending = err == nil && hs.Term < n.rn.BasicStatus().Term
	}
	c, ok := decideFreshLeaderCrash(r.leaderCrashRnd, r.fault.FreshLeaderCrashRate, termPending)
	if !ok {
		return false
	}
	if c.sendFirst {
		r.deliver(n, out)
	}
	r.event("node %d crashes as soon as it leads (its term durable: %v)", n.id, !termPending)
	r.crash(n)
	n.restartAt, n.campaign = r.now+c.restartIn, c.campaign
	return true
}

// laterDue reports whether n's server has ServerEnv.Later work due at
// now.
func (n *chaosNode) laterDue(now int64) bool {
	for _, q := range n.later {
		if len(q) > 0 && q[0].due <= now {
			return true
		}
	}
	return false
}

// hasLater reports whether n's server has ServerEnv.Later work pending.
func (n *chaosNode) hasLater() bool {
	for _, q := range n.later {
		if len(q) > 0 {
			return true
		}
	}
	return false
}

// checkCommitted checks a committed entry handed to n: in order, never
// twice, and the same on every node.
func (r *chaosRun) checkCommitted(n *chaosNode, e pb.Entry) {
	if e.Index <= n.applied {
		r.violate("node %d is handed committed entry %d again (applied %d): does HandleReady call Advance?", n.id, e.Index, n.applied)
	} else if e.Index != n.applied+1 {
		r.violate("node %d is handed committed entry %d after %d", n.id, e.Index, n.applied)
	}
	n.applied = e.Index
	rec := entryRecord{term: e.Term, data: string(e.Data), seenTerm: r.maxTerm}
	if want, ok := r.appendedAt[[2]uint64{e.Index, e.Term}]; ok && want != rec.data {
		r.violate("node %d is handed %q at index %d term %d, where a node reported appending %q", n.id, rec.data, e.Index, e.Term, want)
	}
	if prev, ok := r.committed[e.Index]; !ok {
		r.committed[e.Index] = rec
		r.noteConfChange(e)
	} else if prev.term != rec.term || prev.data != rec.data {
		r.violate("node %d committed term %d at index %d where another node committed term %d (different entries)", n.id, e.Term, e.Index, prev.term)
	}
}

// appended checks and records a server's report (ServerEnv.Appended)
// that data was appended at index in term.
func (r *chaosRun) appended(e *ServerEnv, index, term uint64, data []byte) {
	n := r.node(e.ID)
	if n == nil || n.env != e || n.srv == nil {
		return // a server of an earlier incarnation
	}
	at := [2]uint64{index, term}
	if prev, ok := r.appendedAt[at]; ok && prev != string(data) {
		r.violate("node %d reports %q appended at index %d term %d, where %q was reported", e.ID, data, index, term, prev)
	}
	r.appendedAt[at] = string(data)
	if rec, ok := r.committed[index]; ok && rec.term == term && rec.data != string(data) {
		r.violate("node %d reports %q appended at index %d term %d, where %q was committed", e.ID, data, index, term, rec.data)
	}
}

// observe checks n's role and commit index after a step, and draws its
// timeline.
func (r *chaosRun) observe(n *chaosNode) {
	st := n.rn.BasicStatus()
	r.maxTerm = max(r.maxTerm, st.Term)
	if st.RaftState == raft.StateLeader {
		l := leadership{id: n.id, incarnation: n.restarts}
		if prev, ok := r.leaders[st.Term]; !ok {
			r.leaders[st.Term] = l
			r.event("node %d leads term %d", n.id, st.Term)
		} else if prev.id != n.id {
			r.violate("two leaders in term %d: %d and %d", st.Term, prev.id, n.id)
		} else if prev.incarnation != l.incarnation {
			r.violate("node %d leads term %d a second time, after a restart (its vote was not persisted?)", n.id, st.Term)
		}
	}
	if st.Commit < n.commit {
		r.violate("node %d: commit went back from %d to %d", n.id, n.commit, st.Commit)
	}
	n.commit = max(n.commit, st.Commit)
	if sp := n.span; sp.what == "" || sp.what == "down" || sp.state != st.RaftState || sp.term != st.Term {
		r.closeSpan(n)
		what := fmt.Sprintf("%s t%d", strings.TrimPrefix(st.RaftState.String(), "State"), st.Term)
		n.span = nodeSpan{start: r.now, what: what, state: st.RaftState, term: st.Term}
	}
}

// send queues messages a node's server sends.
func (r *chaosRun) send(e *ServerEnv, msgs []pb.Message) {
	n := r.node(e.ID)
	if n == nil || n.env != e || n.srv == nil {
		return // a server of an earlier incarnation
	}
	for _, m := range msgs {
		// A follower forwards a proposal or a read request to the leader
		// as it came, from the node that made it.
		forwarded := m.Type == pb.MsgProp || m.Type == pb.MsgReadIndex
		if m.From != e.ID && !forwarded {
			r.violate("node %d sent a message from %d: %s", e.ID, m.From, raft.DescribeMessage(m, nil))
			return
		}
		if m.To == raft.LocalAppendThread || m.To == raft.LocalApplyThread {
			r.violate("node %d sent its storage work to the network: %s", e.ID, raft.DescribeMessage(m, nil))
			return
		}
	}
	if n.outbox != nil {
		n.outbox = append(n.outbox, msgs...)
		return
	}
	r.deliver(n, msgs)
}

// deliver hands messages n sent to the network.
func (r *chaosRun) deliver(n *chaosNode, msgs []pb.Message) {
	for _, m := range msgs {
		n.promised.note(m)
	}
	r.net.Send(msgs...)
}

// note records what m promises about its sender's durable state: an
// acknowledgement of entries or a vote answer leaves only once the
// sender's term is durable, and a vote request or a granted vote once the
// vote is.
func (p *promise) note(m pb.Message) {
	switch m.Type {
	case pb.MsgAppResp, pb.MsgVoteResp, pb.MsgVote:
	default:
		return
	}
	p.term = max(p.term, m.Term)
	vote := raft.None
	switch {
	case m.Type == pb.MsgVote:
		vote = m.From
	case m.Type == pb.MsgVoteResp && !m.Reject:
		vote = m.To
	}
	if vote != raft.None && m.Term >= p.voteTerm {
		p.voteTerm, p.vote = m.Term, vote
	}
	if m.Type == pb.MsgAppResp && !m.Reject {
		if m.Term > p.ackTerm {
			p.ackTerm, p.ackIndex = m.Term, 0
		}
		if m.Term == p.ackTerm {
			p.ackIndex = max(p.ackIndex, m.Index)
		}
	}
}

// later queues f on node id's queue, due after a delay drawn from the
// seed (as ChaosConfig.Queues says) and not before the work queued before
// it.
func (r *chaosRun) later(e *ServerEnv, queue string, f func()) {
	r.laterSlow(e, queue, 0, f)
}

// laterSlow is later for work that takes extra ticks longer in the chaos
// phase.
func (r *chaosRun) laterSlow(e *ServerEnv, queue string, extra int64, f func()) {
	n := r.node(e.ID)
	if n == nil || n.env != e || n.srv == nil {
		return // a server of an earlier incarnation
	}
	due := r.now
	if fault, ok := r.cfg.Queues[queue]; !ok {
		due += int64(r.laterRnd.IntN(maxLaterTicks + 1))
	} else if r.chaos {
		due += fault.delay(r.laterRnd, n.id == r.fault.SlowDisk) + extra
	}
	q := n.later[queue]
	if len(q) > 0 {
		due = max(due, q[len(q)-1].due)
	}
	if n.later == nil {
		n.later = map[string][]laterWork{}
	}
	n.later[queue] = append(q, laterWork{due: due, f: f})
}

// maxLaterTicks is the longest delay of a ServerEnv.Later function.
const maxLaterTicks = 3

// runLater runs the ServerEnv.Later work that is due, node by node and
// queue by queue in order (a run must replay), and reports whether it ran
// any.
func (r *chaosRun) runLater() bool {
	ran := false
	for _, n := range r.nodes {
		if !n.laterDue(r.now) {
			continue
		}
		for _, queue := range slices.Sorted(maps.Keys(n.later)) {
			for n.srv != nil && len(n.later[queue]) > 0 && n.later[queue][0].due <= r.now {
				w := n.later[queue][0]
				n.later[queue] = n.later[queue][1:]
				w.f()
				ran = true
				if n.srv != nil {
					r.observe(n)
				}
			}
		}
	}
	return ran
}

// deliverDue delivers the messages due now, and reports whether the
// network delivered any.
func (r *chaosRun) deliverDue() bool {
	due := r.net.Take()
	for _, m := range due {
		r.stepDelivered(m)
	}
	return len(due) > 0
}

// stepDelivered steps a message the network delivered into its
// recipient, or tells its sender it was lost if the recipient is down.
func (r *chaosRun) stepDelivered(m pb.Message) {
	to := r.node(m.To)
	if to == nil || to.srv == nil {
		r.lost(m)
		return
	}
	r.window.delivered++
	r.reportSnapshot(m, raft.SnapshotFinish)
	if err := to.rn.Step(m); err != nil && !errors.Is(err, raft.ErrProposalDropped) && !errors.Is(err, raft.ErrStepPeerNotFound) {
		r.violate("node %d refused %s: %v", to.id, raft.DescribeMessage(m, nil), err)
	}
	r.observe(to)
}

// lost tells the sender of a lost snapshot, as a transport does.
func (r *chaosRun) lost(m pb.Message) {
	r.window.lost++
	r.reportSnapshot(m, raft.SnapshotFailure)
}

func (r *chaosRun) reportSnapshot(m pb.Message, status raft.SnapshotStatus) {
	from := r.node(m.From)
	if m.Type != pb.MsgSnap || from == nil || from.srv == nil {
		return
	}
	if forgotten(r.forgetRnd, status, r.fault.ForgetReports) {
		r.event("the report of node %d's lost snapshot to %d is forgotten", m.From, m.To)
		return
	}
	from.rn.ReportSnapshot(m.To, status)
}

// checkLeaderLog checks, once a new leader's first Ready is handled, that
// its stored log holds every entry committed before its term (Leader
// Completeness): those first applied while no node had reached its term.
func (r *chaosRun) checkLeaderLog(n *chaosNode) {
	if n.log == nil {
		return
	}
	term := n.rn.BasicStatus().Term
	first, err1 := n.log.FirstIndex()
	last, err2 := n.log.LastIndex()
	if err1 != nil || err2 != nil {
		r.violate("node %d: storage: %v", n.id, errors.Join(err1, err2))
		return
	}
	for i := first; ; i++ {
		rec, ok := r.committed[i]
		if !ok {
			return // committed indexes are contiguous from 1
		}
		if rec.seenTerm >= term {
			continue // perhaps committed in its term or later
		}
		if i > last {
			r.violate("leader %d of term %d lacks committed entry %d (its stored log ends at %d)", n.id, term, i, last)
			return
		}
		if t, err := n.log.Term(i); err == nil && t != rec.term {
			r.violate("leader %d of term %d holds term %d at committed index %d (committed term %d)", n.id, term, t, i, rec.term)
			return
		}
	}
}

// checkStoredLog checks that n's stored log holds the committed entry at
// the last indexes up to the commit index it persisted.
func (r *chaosRun) checkStoredLog(n *chaosNode) {
	if n.log == nil {
		return
	}
	first, err := n.log.FirstIndex()
	if err != nil {
		r.violate("node %d: storage: %v", n.id, err)
		return
	}
	hi := n.persisted.Commit
	if n.async {
		hi = n.synced.Commit // what it restarted with: stored for sure
	}
	for i := max(first, hi-min(hi, 64)); i <= hi && i > 0; i++ {
		rec, ok := r.committed[i]
		if !ok {
			continue
		}
		if t, err := n.log.Term(i); err == nil && t != rec.term {
			r.violate("node %d stores term %d at committed index %d (committed term %d)", n.id, t, i, rec.term)
			return
		} else if errors.Is(err, raft.ErrUnavailable) {
			r.violate("node %d stores no entry at committed index %d, below the commit index %d it persisted", n.id, i, hi)
			return
		}
	}
}

// entryRecord is what the first node to be handed a committed index was
// handed there.
type entryRecord struct {
	term uint64
	data string
	// seenTerm is the highest term any node had when the entry was first
	// handed over: the term in which it was committed is no later, so
	// every leader of a later term must hold it (Leader Completeness).
	seenTerm uint64
}

// leadership is who led a term: a node, in one of its incarnations.
type leadership struct {
	id          uint64
	incarnation int
}

// hardStateRegression describes what is wrong with node id persisting hs
// after prev, or returns "".
func hardStateRegression(id uint64, prev, hs pb.HardState) string {
	switch {
	case hs.Term < prev.Term:
		return fmt.Sprintf("node %d: persisted term goes back from %d to %d", id, prev.Term, hs.Term)
	case hs.Term == prev.Term && prev.Vote != raft.None && hs.Vote != prev.Vote:
		return fmt.Sprintf("node %d: vote changed within term %d from %d to %d", id, hs.Term, prev.Vote, hs.Vote)
	case hs.Commit < prev.Commit:
		return fmt.Sprintf("node %d: persisted commit goes back from %d to %d", id, prev.Commit, hs.Commit)
	}
	return ""
}
