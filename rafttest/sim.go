package rafttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// SimConfig describes one run of the chaos simulation. Everything random
// in a run comes from Seed, so a run replays exactly from its config.
type SimConfig struct {
	Seed  uint64
	Nodes int // voters, IDs 1..Nodes

	PreVote, CheckQuorum bool
	// MaxSizePerMsg and MaxInflightMsgs are small in some runs to exercise
	// flow control.
	MaxSizePerMsg   uint64
	MaxInflightMsgs int

	// ChaosTicks is how long faults are injected.
	ChaosTicks int
	// Clients issue one operation at a time; Keys is the key space.
	Clients, Keys int

	// Network faults: the probability a message is lost or duplicated, and
	// the largest delivery delay in ticks (delays reorder messages).
	DropRate, DupRate float64
	MaxDelay          int
	// PartitionRate is the per-tick probability that the partition
	// changes (heal, split, isolate a node, or cut links one way).
	PartitionRate float64
	// CrashRate is the per-tick probability that a running node crashes,
	// RestartRate that a crashed one restarts.
	CrashRate, RestartRate float64
	// CompactEvery makes nodes snapshot and compact their log every that
	// many applied entries (0: never), so laggards need snapshots.
	CompactEvery uint64
	// SnapshotTimeout is the nodes' Config.SnapshotTimeout; ForgetReports
	// is the probability that the transport does not report a lost
	// snapshot (ReportSnapshot), which only that timeout recovers from.
	SnapshotTimeout int
	ForgetReports   float64
	// TransferRate is the per-tick probability that the leader is asked to
	// hand leadership to a random node.
	TransferRate float64
	// ConfChangeRate is the per-tick probability that the leader is asked
	// to change the membership: add a learner, promote one, remove or
	// demote a voter, or replace one through a joint configuration (with
	// automatic or explicit leave). StepDownOnRemoval is the nodes'
	// setting.
	ConfChangeRate    float64
	StepDownOnRemoval bool
	// LeaseReads makes the nodes answer read-index requests from the
	// leader's lease (ReadOnlyLeaseBased, with CheckQuorum).
	LeaseReads bool
	// Async runs the nodes with AsyncStorageWrites: their writes complete
	// up to MaxDelay ticks later, in order, and a crash loses the writes
	// not yet complete. The apply thread is independent of the append
	// thread: its batches complete up to ApplyDelay ticks later, in order,
	// before or after writes handed out after them, and a crash loses
	// them too.
	Async      bool
	ApplyDelay int
	// FreshLeaderCrashRate (Async) is the probability that a node that
	// has just become leader while writes of its own are still pending
	// crashes at once, and restarts within two ticks (calling Campaign at
	// once, half the time, as servers that want their leadership back
	// quickly do). SlowDisk, when not
	// zero, is a node whose writes (Async) each take up to slowDiskTicks
	// longer: a degraded disk.
	FreshLeaderCrashRate float64
	SlowDisk             uint64
	// WALDir, when set, gives every node a durable wal.Storage in a
	// directory of its own under it instead of a MemoryStorage; a restart
	// then closes the storage and opens it again, recovering the node from
	// its files. The writes are not synced (NoSync): the simulated crashes
	// stop the node, not the machine.
	WALDir string
	// WALPowerLoss gives every node a wal.Storage on a simulated disk of
	// its own (crashfs) that keeps only what was synced, instead of
	// WALDir, and the WAL syncs for real: a crash is a power failure that
	// loses the node's unsynced writes, the last of them perhaps torn.
	WALPowerLoss bool

	// LivenessTicks bounds the final phase: after healing everything, a
	// leader must emerge and every client operation complete within it.
	LivenessTicks int
}

// RandomSimConfig derives a configuration from seed: cluster size, PreVote
// and CheckQuorum, flow-control limits and fault rates all vary.
func RandomSimConfig(seed uint64) SimConfig {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	cfg := SimConfig{
		Seed:            seed,
		Nodes:           []int{3, 3, 5, 5, 7}[r.IntN(5)],
		PreVote:         r.IntN(2) == 0,
		CheckQuorum:     r.IntN(2) == 0,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		ChaosTicks:      300,
		Clients:         3 + r.IntN(3),
		Keys:            3,
		DropRate:        []float64{0, 0.02, 0.1, 0.2}[r.IntN(4)],
		DupRate:         []float64{0, 0.02, 0.05}[r.IntN(3)],
		MaxDelay:        r.IntN(4),
		PartitionRate:   []float64{0, 0.02, 0.05, 0.2}[r.IntN(4)],
		CrashRate:       []float64{0, 0.01, 0.03}[r.IntN(3)],
		RestartRate:     0.1,
		TransferRate:    []float64{0, 0.01}[r.IntN(2)],
		LivenessTicks:   400,
	}
	if r.IntN(2) == 0 && cfg.CheckQuorum {
		// Removed nodes keep running (nobody shuts them down here), which
		// is only safe for the cluster's availability with CheckQuorum:
		// without it their elections disrupt it (Raft thesis §4.2.3).
		cfg.ConfChangeRate = []float64{0.02, 0.05}[r.IntN(2)]
		cfg.StepDownOnRemoval = r.IntN(2) == 0
	}
	if r.IntN(3) == 0 {
		cfg.MaxSizePerMsg = 1 // one entry per append
		cfg.MaxInflightMsgs = 1 + r.IntN(4)
	}
	if cfg.CheckQuorum && r.IntN(2) == 0 {
		cfg.LeaseReads = true
	}
	cfg.Async = r.IntN(3) == 0
	if r.IntN(2) == 0 {
		cfg.CompactEvery = uint64(5 + r.IntN(20))
		cfg.SnapshotTimeout = 20 + r.IntN(40)
		cfg.ForgetReports = []float64{0, 0.5}[r.IntN(2)]
	}
	// Drawn last, so that the fields above keep the values earlier
	// versions gave each seed.
	if cfg.Async {
		cfg.ApplyDelay = r.IntN(8)
		cfg.FreshLeaderCrashRate = []float64{0, 0.2, 0.5}[r.IntN(3)]
		if r.IntN(2) == 0 {
			cfg.SlowDisk = uint64(1 + r.IntN(cfg.Nodes))
		}
	}
	return cfg
}

func (c SimConfig) String() string {
	return fmt.Sprintf("seed=%d nodes=%d prevote=%v checkquorum=%v maxsize=%d inflight=%d clients=%d drop=%.2f dup=%.2f delay=%d partition=%.2f crash=%.2f compact=%d snaptimeout=%d forget=%.1f transfer=%.2f confchange=%.2f stepdown=%v leasereads=%v async=%v applydelay=%d leadercrash=%.1f slowdisk=%d walpowerloss=%v",
		c.Seed, c.Nodes, c.PreVote, c.CheckQuorum, c.MaxSizePerMsg, c.MaxInflightMsgs, c.Clients,
		c.DropRate, c.DupRate, c.MaxDelay, c.PartitionRate, c.CrashRate, c.CompactEvery, c.SnapshotTimeout, c.ForgetReports, c.TransferRate, c.ConfChangeRate, c.StepDownOnRemoval, c.LeaseReads, c.Async,
		c.ApplyDelay, c.FreshLeaderCrashRate, c.SlowDisk, c.WALPowerLoss)
}

// SimResult is what a run found.
type SimResult struct {
	Config SimConfig
	// Ops is the number of client operations in the history; Completed how
	// many of them returned.
	Ops, Completed int
	// Linearizable is the verdict on the history (false if a violation
	// stopped the run before the check).
	Linearizable bool
	// Violations lists every broken invariant; empty on success.
	Violations []string
	// Events are the last things that happened, for diagnosis.
	Events []string
	// Ticks is the virtual time the run took.
	Ticks int64
	// Nodes describes each node at the end.
	Nodes []string
}

// Failed reports whether the run found a problem.
func (r *SimResult) Failed() bool { return len(r.Violations) > 0 || !r.Linearizable }

// Report renders the result for a test failure: the seed and config to
// replay it, the violations and the last events.
func (r *SimResult) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "simulation failed: %s\n", r.Config)
	fmt.Fprintf(&b, "replay: go test ./rafttest -run 'TestSim$' -seed=%d -v\n", r.Config.Seed)
	if !r.Linearizable && len(r.Violations) == 0 {
		b.WriteString("history not linearizable\n")
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "violation: %s\n", v)
	}
	b.WriteString("nodes at the end:\n")
	for _, n := range r.Nodes {
		fmt.Fprintf(&b, "  %s\n", n)
	}
	b.WriteString("last events:\n")
	for _, e := range r.Events {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

// simMsg is a message in flight, delivered at tick due.
type simMsg struct {
	m   pb.Message
	due int64
}

// kvState is a node's state machine: a key-value map with per-client
// deduplication. It is durable: it survives crashes, together with the
// configuration it has applied.
type kvState struct {
	Applied uint64            `json:"applied"`
	Data    map[string]string `json:"data"`
	// LastSeq is the last operation applied per client; retries of it (or
	// of older ones) are skipped.
	LastSeq   map[int]uint64 `json:"lastSeq"`
	ConfState pb.ConfState   `json:"confState"`
}

func newKVState() *kvState {
	return &kvState{Data: map[string]string{}, LastSeq: map[int]uint64{}}
}

func (s *kvState) encode() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

func decodeKVState(b []byte) (*kvState, error) {
	s := newKVState()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, err
	}
	if s.Data == nil {
		s.Data = map[string]string{}
	}
	if s.LastSeq == nil {
		s.LastSeq = map[int]uint64{}
	}
	return s, nil
}

// simOp is a client operation, as proposed and applied.
type simOp struct {
	Client int    `json:"c"`
	Seq    uint64 `json:"s"`
	Get    bool   `json:"g,omitempty"`
	Key    string `json:"k"`
	Value  string `json:"v,omitempty"`
}

// simStorage is what a simulated node persists to: a MemoryStorage or a
// wal.Storage.
type simStorage interface {
	raft.Storage
	Append([]pb.Entry) error
	SetHardState(pb.HardState) error
	ApplySnapshot(pb.Snapshot) error
	CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error)
	Compact(compactIndex uint64) error
}

// simNode is one node: storage and state machine are durable; the RawNode
// is nil while crashed.
type simNode struct {
	id      uint64
	storage simStorage
	rn      *raft.RawNode
	config  raft.Config
	sm      *kvState
	// persisted is the last hard state written to storage.
	persisted pb.HardState
	// commit is the highest commit index the node reported.
	commit uint64
	// writes are the MsgStorageAppend messages not yet complete (Async),
	// in order, with the tick each completes at; applies the same for
	// MsgStorageApply.
	writes  []simWrite
	applies []simWrite
	// incarnation counts the node's restarts; restartAt, when not zero,
	// is the tick of a restart already decided.
	incarnation int
	restartAt   int64
	// disk holds the node's WAL with WALPowerLoss.
	disk *crashfs.FS
	// campaignOnRestart makes the next restart call Campaign at once.
	campaignOnRestart bool
	// removed is set while the node is out of the latest configuration
	// (it keeps running: membership changes run with CheckQuorum).
	removed bool
}

type simWrite struct {
	m   pb.Message
	due int64
}

// simClient issues operations one at a time and retries them until they
// are applied.
type simClient struct {
	id      int
	seq     uint64
	pending *simPending
}

type simPending struct {
	op       simOp
	hist     int   // index in Sim.history
	deadline int64 // tick to retry at
	// A Get may be served through ReadIndex instead of the log: ctx is
	// the context of the latest attempt, node the node asked, and index
	// the read index it answered (0 while waiting).
	viaReadIndex bool
	attempt      int
	ctx          string
	node         uint64
	index        uint64
}

// histOp is an operation in the history checked for linearizability.
type histOp struct {
	op     simOp
	call   int64
	ret    int64 // 0 while pending
	output string
}

// entryRecord is what the first node to apply an index applied there.
type entryRecord struct {
	term uint64
	data string
	// seenTerm is the highest term any node had when the entry was first
	// applied: the term in which it was committed is no later, so every
	// leader of a later term must hold it (Leader Completeness).
	seenTerm uint64
}

// leadership is who led a term: a node, in one of its incarnations.
type leadership struct {
	id          uint64
	incarnation int
}

// Sim is a deterministic chaos simulation of a cluster with clients. Use
// RunSim; the type is exported for its documentation.
type Sim struct {
	cfg   SimConfig
	rnd   *rand.Rand
	now   int64
	clock int64 // orders history events within a tick
	nodes []*simNode
	peers []raft.Peer // the initial members
	queue []simMsg
	// blocked links drop every message.
	blocked map[link]bool

	clients []*simClient
	history []histOp
	// readers maps a pending read-index context to its client.
	readers map[string]*simClient
	// done records the result of each (client, seq) once applied.
	done map[[2]uint64]string

	// confIndex and conf are the latest configuration any node applied.
	confIndex uint64
	conf      pb.ConfState

	leaders   map[uint64]leadership // term -> leader
	maxTerm   uint64                // highest term any node has reached
	committed map[uint64]entryRecord
	lastIndex uint64 // highest index in committed
	// chaos is false in the final, fault-free phase.
	chaos bool

	violations []string
	events     []string
}

const simEventLog = 60

// simLogger is the nodes' logger (replaced when debugging).
var simLogger = raft.DiscardLogger

func (s *Sim) event(format string, args ...any) {
	e := fmt.Sprintf("t=%d ", s.now) + fmt.Sprintf(format, args...)
	if len(s.events) == simEventLog {
		copy(s.events, s.events[1:])
		s.events = s.events[:simEventLog-1]
	}
	s.events = append(s.events, e)
}

func (s *Sim) violate(format string, args ...any) {
	v := fmt.Sprintf("t=%d ", s.now) + fmt.Sprintf(format, args...)
	s.violations = append(s.violations, v)
	s.event("VIOLATION %s", v)
}

// RunSim runs one simulation and returns what it found.
func RunSim(cfg SimConfig) *SimResult {
	s := &Sim{
		cfg:       cfg,
		rnd:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed*0x9e3779b97f4a7c15+1)),
		blocked:   map[link]bool{},
		done:      map[[2]uint64]string{},
		leaders:   map[uint64]leadership{},
		committed: map[uint64]entryRecord{},
		readers:   map[string]*simClient{},
		chaos:     true,
	}
	res := &SimResult{Config: cfg}
	if err := s.start(); err != nil {
		s.violate("start: %v", err)
	}
	for i := 0; i < cfg.Clients; i++ {
		s.clients = append(s.clients, &simClient{id: i})
	}
	s.run()
	res.Ticks = s.now
	res.Ops = len(s.history)
	for _, h := range s.history {
		if h.ret != 0 {
			res.Completed++
		}
	}
	if len(s.violations) == 0 {
		res.Linearizable = checkLinearizable(s.history)
		if !res.Linearizable {
			s.violate("client history is not linearizable (%d operations)", len(s.history))
		}
	}
	s.closeStorages()
	res.Violations = s.violations
	res.Events = s.events
	for _, n := range s.nodes {
		if n.rn == nil {
			res.Nodes = append(res.Nodes, fmt.Sprintf("node %d: crashed, applied %d", n.id, n.sm.Applied))
			continue
		}
		st := n.rn.Status()
		res.Nodes = append(res.Nodes, fmt.Sprintf("node %d: %s term %d vote %d lead %d commit %d applied %d config %s",
			n.id, st.RaftState, st.Term, st.Vote, st.Lead, st.Commit, st.Applied, st.Config))
	}
	return res
}

// run runs the chaos phase and then the liveness phase. A node that
// panics is a finding like any other: it is reported with the seed.
func (s *Sim) run() {
	defer func() {
		if p := recover(); p != nil {
			s.violate("panic at tick %d: %v", s.now, p)
		}
	}()
	for s.now = 0; s.now < int64(s.cfg.ChaosTicks) && len(s.violations) == 0; s.now++ {
		s.chaosStep()
		s.runTick()
	}
	if len(s.violations) == 0 {
		s.liveness()
	}
}

func (s *Sim) start() error {
	peers := make([]raft.Peer, s.cfg.Nodes)
	for i := range peers {
		peers[i] = raft.Peer{ID: uint64(i + 1)}
	}
	s.peers = peers
	for _, p := range peers {
		n := &simNode{id: p.ID, sm: newKVState()}
		if err := s.openStorage(n); err != nil {
			return err
		}
		n.config = raft.Config{
			ID:                 p.ID,
			ElectionTick:       10,
			HeartbeatTick:      1,
			Storage:            n.storage,
			MaxSizePerMsg:      s.cfg.MaxSizePerMsg,
			MaxInflightMsgs:    s.cfg.MaxInflightMsgs,
			PreVote:            s.cfg.PreVote,
			CheckQuorum:        s.cfg.CheckQuorum,
			SnapshotTimeout:    s.cfg.SnapshotTimeout,
			StepDownOnRemoval:  s.cfg.StepDownOnRemoval,
			AsyncStorageWrites: s.cfg.Async,
			ReadOnlyOption:     map[bool]raft.ReadOnlyOption{false: raft.ReadOnlySafe, true: raft.ReadOnlyLeaseBased}[s.cfg.LeaseReads],
			Logger:             simLogger,
			RandomSource:       rand.NewPCG(s.cfg.Seed, p.ID),
		}
		rn, err := raft.NewRawNode(&n.config)
		if err != nil {
			return err
		}
		if err := rn.Bootstrap(peers); err != nil {
			return err
		}
		n.rn = rn
		s.nodes = append(s.nodes, n)
	}
	return nil
}

func (s *Sim) node(id uint64) *simNode {
	if id == 0 || id > uint64(len(s.nodes)) {
		return nil
	}
	return s.nodes[id-1]
}

func (s *Sim) running() []*simNode {
	var out []*simNode
	for _, n := range s.nodes {
		if n.rn != nil {
			out = append(out, n)
		}
	}
	return out
}

// chaosStep injects this tick's faults.
func (s *Sim) chaosStep() {
	cfg := s.cfg
	if s.rnd.Float64() < cfg.PartitionRate {
		s.repartition()
	}
	if s.rnd.Float64() < cfg.CrashRate {
		if run := s.running(); len(run) > 0 {
			s.crash(run[s.rnd.IntN(len(run))])
		}
	}
	for _, n := range s.nodes {
		if n.rn == nil && ((n.restartAt != 0 && n.restartAt <= s.now) || s.rnd.Float64() < cfg.RestartRate) {
			s.restart(n)
		}
	}
	if s.rnd.Float64() < cfg.ConfChangeRate {
		s.changeMembership()
	}
	if s.rnd.Float64() < cfg.TransferRate {
		for _, n := range s.running() {
			if n.rn.BasicStatus().RaftState == raft.StateLeader {
				to := uint64(1 + s.rnd.IntN(len(s.nodes)))
				s.event("leader %d asked to transfer to %d", n.id, to)
				n.rn.TransferLeader(to)
			}
		}
	}
}

// leader returns the running leader of the highest term, or nil.
func (s *Sim) leader() *simNode {
	var best *simNode
	var term uint64
	for _, n := range s.running() {
		st := n.rn.BasicStatus()
		if st.RaftState == raft.StateLeader && st.Term >= term {
			best, term = n, st.Term
		}
	}
	return best
}

// changeMembership asks the leader for a random membership change that
// fits its configuration. The leader may still refuse it (one is pending),
// which the log records as an empty entry.
func (s *Sim) changeMembership() {
	l := s.leader()
	if l == nil {
		return
	}
	cs := l.sm.ConfState
	in := func(set []uint64, id uint64) bool { return slices.Contains(set, id) }
	var voters, learners, others []uint64
	for id := uint64(1); id <= uint64(len(s.nodes)); id++ {
		switch {
		case in(cs.Voters, id):
			voters = append(voters, id)
		case in(cs.Learners, id) || in(cs.LearnersNext, id):
			learners = append(learners, id)
		case !in(cs.VotersOutgoing, id):
			others = append(others, id)
		}
	}
	pick := func(set []uint64) uint64 { return set[s.rnd.IntN(len(set))] }
	var cc pb.ConfChangeI
	switch {
	case len(cs.VotersOutgoing) > 0:
		if cs.AutoLeave {
			return // the leader leaves on its own
		}
		cc = pb.ConfChangeV2{}
	default:
		switch op := s.rnd.IntN(5); {
		case op == 0 && len(others) > 0:
			cc = pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: pick(others)}
		case op == 1 && len(learners) > 0:
			cc = pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: pick(learners)}
		case op == 2 && len(voters) > 2:
			cc = pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: pick(voters)}
		case op == 3 && len(voters) > 2:
			cc = pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeAddLearnerNode, NodeID: pick(voters)}}}
		case op == 4 && len(voters) > 1 && len(others)+len(learners) > 0:
			add := pick(append(append([]uint64{}, others...), learners...))
			cc = pb.ConfChangeV2{
				Transition: []pb.ConfChangeTransition{pb.ConfChangeTransitionAuto, pb.ConfChangeTransitionJointImplicit, pb.ConfChangeTransitionJointExplicit}[s.rnd.IntN(3)],
				Changes: []pb.ConfChangeSingle{
					{Type: pb.ConfChangeAddNode, NodeID: add},
					{Type: pb.ConfChangeRemoveNode, NodeID: pick(voters)},
				},
			}
		default:
			return
		}
	}
	s.event("leader %d proposes %v (config %s)", l.id, describeCC(cc), raft.DescribeConfState(cs))
	if err := l.rn.ProposeConfChange(cc); err != nil && !errors.Is(err, raft.ErrProposalDropped) {
		s.violate("node %d: proposing a conf change: %v", l.id, err)
	}
}

// membershipChanged marks the nodes out of the latest configuration as
// removed, and starts re-added nodes that are down, as an operator would.
func (s *Sim) membershipChanged() {
	cs := s.conf
	for _, n := range s.nodes {
		member := slices.Contains(cs.Voters, n.id) || slices.Contains(cs.VotersOutgoing, n.id) ||
			slices.Contains(cs.Learners, n.id) || slices.Contains(cs.LearnersNext, n.id)
		switch {
		case !member && !n.removed:
			n.removed = true
		case member && n.removed:
			n.removed = false
			s.event("node %d is a member again", n.id)
			if n.rn == nil {
				s.restart(n) // the operator starts it again
			}
		}
	}
}

// leaveExplicitJoint asks the leader to leave an explicit joint
// configuration, as an application that entered one must.
func (s *Sim) leaveExplicitJoint() {
	l := s.leader()
	if l == nil || len(l.sm.ConfState.VotersOutgoing) == 0 || l.sm.ConfState.AutoLeave {
		return
	}
	s.event("leader %d proposes leaving the joint config", l.id)
	if err := l.rn.ProposeConfChange(pb.ConfChangeV2{}); err != nil && !errors.Is(err, raft.ErrProposalDropped) {
		s.violate("node %d: proposing to leave joint: %v", l.id, err)
	}
}

func describeCC(cc pb.ConfChangeI) string {
	v2 := cc.AsV2()
	if v2.LeaveJoint() {
		return "leave-joint"
	}
	return pb.ConfChangesToString(v2.Changes) + " " + v2.Transition.String()
}

func (s *Sim) repartition() {
	s.blocked = map[link]bool{}
	ids := make([]uint64, len(s.nodes))
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	switch s.rnd.IntN(4) {
	case 0:
		s.event("network healed")
	case 1:
		s.rnd.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		k := 1 + s.rnd.IntN(len(ids)-1)
		a, b := ids[:k], ids[k:]
		for _, x := range a {
			for _, y := range b {
				s.blocked[link{x, y}] = true
				s.blocked[link{y, x}] = true
			}
		}
		s.event("partition %v | %v", a, b)
	case 2:
		x := ids[s.rnd.IntN(len(ids))]
		for _, y := range ids {
			if y != x {
				s.blocked[link{x, y}] = true
				s.blocked[link{y, x}] = true
			}
		}
		s.event("node %d isolated", x)
	case 3:
		var cuts []string
		for i := 0; i < 1+s.rnd.IntN(len(ids)); i++ {
			x, y := ids[s.rnd.IntN(len(ids))], ids[s.rnd.IntN(len(ids))]
			if x != y {
				s.blocked[link{x, y}] = true
				cuts = append(cuts, fmt.Sprintf("%d->%d", x, y))
			}
		}
		s.event("one-way cuts %v", cuts)
	}
}

// crash stops n. To lose unpersisted state, it first steps the messages
// due to it without handling the resulting Ready.
func (s *Sim) crash(n *simNode) {
	kept := s.queue[:0]
	for _, sm := range s.queue {
		if sm.m.To == n.id && sm.due <= s.now && !s.blocked[link{sm.m.From, sm.m.To}] {
			_ = n.rn.Step(sm.m)
			continue
		}
		kept = append(kept, sm)
	}
	s.queue = kept
	lost := n.rn.HasReady() || len(n.writes) > 0 || len(n.applies) > 0
	n.rn = nil
	n.writes = nil
	n.applies = nil
	if n.disk != nil {
		n.disk.Crash(crashfs.TearWrites, s.rnd.Uint64())
	}
	s.event("node %d crashed (unpersisted state lost: %v)", n.id, lost)
}

// openStorage gives n its storage: a fresh MemoryStorage, or its WAL
// directory opened (again).
func (s *Sim) openStorage(n *simNode) error {
	if s.cfg.WALDir == "" && !s.cfg.WALPowerLoss {
		n.storage = raft.NewMemoryStorage()
		return nil
	}
	opts := wal.Options{SegmentSize: 16 << 10, CacheSize: 4 << 10, NoSync: true}
	dir := filepath.Join(s.cfg.WALDir, fmt.Sprint("node-", n.id))
	if s.cfg.WALPowerLoss {
		// The storage a power failure left is not closed: its files are
		// gone with the machine.
		if n.disk == nil {
			n.disk = crashfs.New()
		}
		opts.NoSync, opts.FS, dir = false, n.disk, "/wal"
	} else if w, ok := n.storage.(*wal.Storage); ok {
		if err := w.Close(); err != nil {
			return err
		}
	}
	w, err := wal.Open(dir, opts)
	if err != nil {
		return err
	}
	n.storage = w
	n.config.Storage = w
	return nil
}

func (s *Sim) closeStorages() {
	for _, n := range s.nodes {
		if n.disk != nil && n.rn == nil {
			continue // lost in a power failure
		}
		if w, ok := n.storage.(*wal.Storage); ok {
			if err := w.Close(); err != nil {
				s.violate("node %d: close storage: %v", n.id, err)
			}
		}
	}
}

// restart rebuilds n from its storage and durable state machine.
func (s *Sim) restart(n *simNode) {
	if s.cfg.WALDir != "" || s.cfg.WALPowerLoss {
		if err := s.openStorage(n); err != nil {
			s.violate("node %d: reopen storage: %v", n.id, err)
			return
		}
	}
	if w, ok := n.storage.(*wal.Storage); ok && s.cfg.WALPowerLoss {
		// A power failure loses a commit index written since the last
		// sync: Raft does not need it durable.
		n.persisted.Commit = min(n.persisted.Commit, w.HardState().Commit)
	}
	snap, err := n.storage.Snapshot()
	if err != nil {
		s.violate("node %d: reading snapshot: %v", n.id, err)
		return
	}
	if n.sm.Applied > snap.Metadata.Index {
		// The state machine and its configuration are durable together:
		// record them as a snapshot, as a server that snapshots on
		// shutdown would.
		if _, err := n.storage.CreateSnapshot(n.sm.Applied, &n.sm.ConfState, n.sm.encode()); err != nil {
			s.violate("node %d: snapshot at restart: %v", n.id, err)
			return
		}
	}
	cfg := n.config
	cfg.Applied = n.sm.Applied
	rn, err := raft.NewRawNode(&cfg)
	if err != nil {
		s.violate("node %d: restart: %v", n.id, err)
		return
	}
	if last, _ := n.storage.LastIndex(); last == 0 && n.id <= uint64(len(s.peers)) {
		// It crashed before persisting its bootstrap: bootstrap again, as
		// a server does when it finds its storage empty.
		if err := rn.Bootstrap(s.peers); err != nil {
			s.violate("node %d: bootstrap after restart: %v", n.id, err)
			return
		}
	}
	n.rn = rn
	n.incarnation++
	n.restartAt = 0
	if n.campaignOnRestart {
		n.campaignOnRestart = false
		if err := rn.Campaign(); err != nil {
			s.violate("node %d: campaign after restart: %v", n.id, err)
		}
	}
	st := rn.BasicStatus()
	if st.Commit < n.persisted.Commit {
		s.violate("node %d: commit went back from %d to %d across a restart", n.id, n.persisted.Commit, st.Commit)
	}
	n.commit = st.Commit // what was not persisted is gone
	s.event("node %d restarted (term %d commit %d applied %d)", n.id, st.Term, st.Commit, n.sm.Applied)
}

// runTick runs one tick: clients act, nodes tick, and Readys and due
// messages are handled until the tick is quiet.
func (s *Sim) runTick() {
	s.clientsStep()
	for _, n := range s.running() {
		n.rn.Tick()
	}
	for round := 0; round < 1000; round++ {
		busy := false
		for _, n := range s.nodes {
			if n.rn != nil && n.rn.HasReady() {
				busy = true
				s.handleReady(n)
			}
			if n.rn != nil && s.completeWrites(n) {
				busy = true
			}
			if n.rn != nil && s.completeApplies(n) {
				busy = true
			}
		}

		if s.deliverDue() {
			busy = true
		}
		if !busy || len(s.violations) > 0 {
			break
		}
	}
	s.checkTick()
}

// deliverDue delivers the messages due now, and reports whether any were.
func (s *Sim) deliverDue() bool {
	var due []simMsg
	kept := s.queue[:0]
	for _, m := range s.queue {
		if m.due <= s.now {
			due = append(due, m)
		} else {
			kept = append(kept, m)
		}
	}
	s.queue = kept
	for _, sm := range due {
		m := sm.m
		from, to := s.node(m.From), s.node(m.To)
		lost := to == nil || to.rn == nil || s.blocked[link{m.From, m.To}]
		if m.Type == pb.MsgSnap && from != nil && from.rn != nil {
			// The transport tells the leader how sending went, unless it
			// is one that forgets to.
			status := raft.SnapshotFinish
			if lost {
				status = raft.SnapshotFailure
			}
			if !lost || s.rnd.Float64() >= s.cfg.ForgetReports {
				from.rn.ReportSnapshot(m.To, status)
			}
		}
		if lost {
			continue
		}
		// A dropped proposal and a response from a node that has left the
		// configuration are normal; any other refusal is a bug.
		if err := to.rn.Step(m); err != nil && !errors.Is(err, raft.ErrProposalDropped) && !errors.Is(err, raft.ErrStepPeerNotFound) {
			s.violate("node %d refused %s: %v", to.id, raft.DescribeMessage(m, nil), err)
		}
		s.checkNode(to)
	}
	return len(due) > 0
}

// send puts messages on the network with its faults.
func (s *Sim) send(msgs []pb.Message) {
	for _, m := range msgs {
		if s.chaos && s.rnd.Float64() < s.cfg.DropRate {
			continue
		}
		delay := 0
		if s.chaos && s.cfg.MaxDelay > 0 {
			delay = s.rnd.IntN(s.cfg.MaxDelay + 1)
		}
		s.queue = append(s.queue, simMsg{m: m, due: s.now + int64(delay)})
		if s.chaos && s.rnd.Float64() < s.cfg.DupRate {
			s.queue = append(s.queue, simMsg{m: m, due: s.now + int64(s.rnd.IntN(s.cfg.MaxDelay+2))})
		}
	}
}

// handleReady follows the Ready contract and checks what the node writes.
func (s *Sim) handleReady(n *simNode) {
	if s.cfg.Async {
		s.handleReadyAsync(n)
		return
	}
	rd := n.rn.Ready()
	if rd.SoftState != nil && rd.RaftState == raft.StateLeader {
		s.newLeader(n)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		s.installSnapshot(n, rd.Snapshot)
	}
	if len(rd.Entries) > 0 {
		if first := rd.Entries[0].Index; first <= n.persisted.Commit {
			s.violate("node %d overwrites committed entries: writes from %d, commit %d", n.id, first, n.persisted.Commit)
		}
		if err := n.storage.Append(rd.Entries); err != nil {
			s.violate("node %d: append: %v", n.id, err)
			return
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		s.checkHardState(n, rd.HardState)
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			s.violate("node %d: set hard state: %v", n.id, err)
		}
		n.persisted = rd.HardState
	}
	s.send(rd.Messages)
	s.takeReadStates(n, rd)
	for _, e := range rd.CommittedEntries {
		s.apply(n, e)
	}
	n.rn.Advance(rd)
	s.maybeCompact(n)
	s.checkNode(n)
}

// takeReadStates gives the read states in rd to the clients waiting.
func (s *Sim) takeReadStates(n *simNode, rd raft.Ready) {
	for _, rs := range rd.ReadStates {
		c, ok := s.readers[string(rs.RequestCtx)]
		switch {
		case !ok:
			// An answer to an attempt the client gave up on.
		case c.pending == nil || c.pending.ctx != string(rs.RequestCtx) || c.pending.node != n.id:
			s.violate("node %d: read state for %q, which it was not asked", n.id, rs.RequestCtx)
		default:
			c.pending.index = rs.Index
		}
	}
}

// handleReadyAsync handles a Ready with AsyncStorageWrites: writes and
// applies are queued to complete later, each queue in order; other
// messages are sent.
func (s *Sim) handleReadyAsync(n *simNode) {
	rd := n.rn.Ready()
	becameLeader := rd.SoftState != nil && rd.RaftState == raft.StateLeader
	if becameLeader {
		s.newLeader(n)
	}
	s.takeReadStates(n, rd)
	var peers []pb.Message
	for _, m := range rd.Messages {
		switch m.To {
		case raft.LocalAppendThread:
			minDelay, maxDelay := 0, s.cfg.MaxDelay
			if n.id == s.cfg.SlowDisk {
				minDelay, maxDelay = slowDiskTicks, maxDelay+2*slowDiskTicks
			}
			n.writes = s.enqueue(n.writes, m, minDelay, maxDelay)
		case raft.LocalApplyThread:
			n.applies = s.enqueue(n.applies, m, 0, s.cfg.ApplyDelay)
		default:
			peers = append(peers, m)
		}
	}
	// A leader whose own term is not durable yet is the window where a
	// crash does the most harm; a correct node is never in it.
	termPending := n.persisted.Term < rd.HardState.Term || n.persisted.Term < n.rn.BasicStatus().Term
	if becameLeader && s.chaos && len(n.writes) > 0 && (termPending || s.rnd.Float64() < s.cfg.FreshLeaderCrashRate) {
		// A new leader whose own writes (its term and vote among them,
		// perhaps) are not durable yet dies at once, before or after
		// sending its first appends, and comes back soon.
		if !termPending && s.rnd.IntN(2) == 0 {
			s.send(peers)
		}
		s.crash(n)
		n.restartAt = s.now + 1 + int64(s.rnd.IntN(2))
		n.campaignOnRestart = termPending || s.rnd.IntN(2) == 0
		return
	}
	s.send(peers)
	s.maybeCompact(n)
	s.checkNode(n)
}

// slowDiskTicks is the least a write on the slow disk takes.
const slowDiskTicks = 3

// enqueue adds m to a storage thread's queue, due minDelay to maxDelay
// ticks from now but not before the work queued ahead of it.
func (s *Sim) enqueue(q []simWrite, m pb.Message, minDelay, maxDelay int) []simWrite {
	due := s.now
	if s.chaos && maxDelay > 0 {
		due += int64(minDelay + s.rnd.IntN(maxDelay-minDelay+1))
	}
	if k := len(q); k > 0 && q[k-1].due > due {
		due = q[k-1].due // in order
	}
	return append(q, simWrite{m: m, due: due})
}

// completeApplies runs n's queued apply batches that are due, in order,
// and steps their responses. Entries a snapshot installed meanwhile (by
// the append thread) already covers are skipped, as a server's apply
// thread skips what its state machine holds. It reports whether it did
// anything.
func (s *Sim) completeApplies(n *simNode) bool {
	done := 0
	for _, w := range n.applies {
		if w.due > s.now || n.rn == nil {
			break
		}
		done++
		for _, e := range w.m.Entries {
			if e.Index > n.sm.Applied {
				s.apply(n, e)
			}
		}
		for _, resp := range w.m.Responses {
			if err := n.rn.Step(resp); err != nil {
				s.violate("node %d refused its apply response: %v", n.id, err)
			}
		}
		s.maybeCompact(n)
		s.checkNode(n)
	}
	n.applies = n.applies[done:]
	return done > 0
}

// completeWrites finishes n's queued writes that are due, in order, and
// delivers their responses. It reports whether it did anything.
func (s *Sim) completeWrites(n *simNode) bool {
	done := 0
	for _, w := range n.writes {
		if w.due > s.now || n.rn == nil {
			break
		}
		done++
		m := w.m
		if m.Snapshot != nil {
			s.installSnapshot(n, *m.Snapshot)
		}
		if len(m.Entries) > 0 {
			if first := m.Entries[0].Index; first <= n.persisted.Commit {
				s.violate("node %d overwrites committed entries: writes from %d, commit %d", n.id, first, n.persisted.Commit)
			}
			if err := n.storage.Append(m.Entries); err != nil {
				s.violate("node %d: append: %v", n.id, err)
			}
		}
		if hs := (pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}); !raft.IsEmptyHardState(hs) {
			s.checkHardState(n, hs)
			if err := n.storage.SetHardState(hs); err != nil {
				s.violate("node %d: set hard state: %v", n.id, err)
			}
			n.persisted = hs
		}
		var peers []pb.Message
		for _, resp := range m.Responses {
			if resp.To == n.id {
				if err := n.rn.Step(resp); err != nil {
					s.violate("node %d refused its own write's response %s: %v", n.id, raft.DescribeMessage(resp, nil), err)
				}
			} else {
				peers = append(peers, resp)
			}
		}
		s.send(peers)
	}
	n.writes = n.writes[done:]
	return done > 0
}

func (s *Sim) installSnapshot(n *simNode, snap pb.Snapshot) {
	rec, ok := s.committed[snap.Metadata.Index]
	if ok && rec.term != snap.Metadata.Term {
		s.violate("node %d: snapshot at %d has term %d, committed term is %d", n.id, snap.Metadata.Index, snap.Metadata.Term, rec.term)
	}
	if err := n.storage.ApplySnapshot(snap); err != nil {
		s.violate("node %d: apply snapshot: %v", n.id, err)
		return
	}
	sm, err := decodeKVState(snap.Data)
	if err != nil {
		s.violate("node %d: snapshot data: %v", n.id, err)
		return
	}
	if sm.Applied != snap.Metadata.Index {
		s.violate("node %d: snapshot at %d holds state applied to %d", n.id, snap.Metadata.Index, sm.Applied)
	}
	if snap.Metadata.Index < n.sm.Applied {
		s.violate("node %d: snapshot at %d is behind applied %d", n.id, snap.Metadata.Index, n.sm.Applied)
	}
	sm.ConfState = snap.Metadata.ConfState
	n.sm = sm
	s.event("node %d installed snapshot at %d", n.id, snap.Metadata.Index)
}

// maybeCompact snapshots and compacts n's log every CompactEvery entries.
func (s *Sim) maybeCompact(n *simNode) {
	every := s.cfg.CompactEvery
	if every == 0 || !s.chaos {
		return
	}
	snap, err := n.storage.Snapshot()
	if err != nil {
		return
	}
	if n.sm.Applied < snap.Metadata.Index+every {
		return
	}
	if _, err := n.storage.CreateSnapshot(n.sm.Applied, &n.sm.ConfState, n.sm.encode()); err != nil {
		s.violate("node %d: create snapshot: %v", n.id, err)
		return
	}
	// Keep a few entries so that slightly behind followers need no
	// snapshot.
	keep := uint64(s.rnd.IntN(4))
	if n.sm.Applied > keep+1 {
		if err := n.storage.Compact(n.sm.Applied - keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
			s.violate("node %d: compact: %v", n.id, err)
		}
	}
}

// apply applies one committed entry to n's state machine and checks that
// every node applies the same entry at each index.
func (s *Sim) apply(n *simNode, e pb.Entry) {
	if e.Index != n.sm.Applied+1 {
		s.violate("node %d applies index %d after %d", n.id, e.Index, n.sm.Applied)
	}
	rec := entryRecord{term: e.Term, data: string(e.Data), seenTerm: s.maxTerm}
	if prev, ok := s.committed[e.Index]; ok {
		if prev.term != rec.term || prev.data != rec.data {
			s.violate("node %d applied term %d at index %d where another node applied term %d", n.id, e.Term, e.Index, prev.term)
		}
	} else {
		s.committed[e.Index] = rec
		s.lastIndex = max(s.lastIndex, e.Index)
	}
	n.sm.Applied = e.Index
	switch e.Type {
	case pb.EntryConfChange, pb.EntryConfChangeV2:
		cc, err := pb.UnmarshalConfChange(e)
		if err != nil {
			s.violate("node %d: conf change at %d: %v", n.id, e.Index, err)
			return
		}
		n.sm.ConfState = *n.rn.ApplyConfChange(cc)
		if e.Index > s.confIndex {
			s.confIndex, s.conf = e.Index, n.sm.ConfState
			s.membershipChanged()
		}
		return
	}
	if len(e.Data) == 0 {
		return
	}
	var op simOp
	if err := json.Unmarshal(e.Data, &op); err != nil {
		s.violate("node %d: entry %d: %v", n.id, e.Index, err)
		return
	}
	var out string
	if op.Seq <= n.sm.LastSeq[op.Client] {
		return // a retry of an operation already applied
	}
	n.sm.LastSeq[op.Client] = op.Seq
	if op.Get {
		out = n.sm.Data[op.Key]
	} else {
		n.sm.Data[op.Key] = op.Value
	}
	key := [2]uint64{uint64(op.Client), op.Seq}
	if _, ok := s.done[key]; !ok {
		s.done[key] = out
	}
}

// newLeader records n as the leader of its term and checks that it is the
// only one and that its log holds every committed entry (Leader
// Completeness).
func (s *Sim) newLeader(n *simNode) {
	st := n.rn.BasicStatus()
	if prev, ok := s.leaders[st.Term]; ok {
		if prev.id != n.id {
			s.violate("two leaders in term %d: %d and %d", st.Term, prev.id, n.id)
			return
		}
		if prev.incarnation != n.incarnation {
			// Its first leadership was lost in a crash: two leaderships
			// of one term may put different entries under one index and
			// term (Log Matching breaks).
			s.violate("node %d leads term %d a second time, after a restart", n.id, st.Term)
			return
		}
	}
	s.leaders[st.Term] = leadership{id: n.id, incarnation: n.incarnation}
	s.event("node %d leads term %d", n.id, st.Term)
	first, _ := n.storage.FirstIndex()
	last, _ := n.storage.LastIndex()
	for i := first; i <= s.lastIndex; i++ {
		rec, ok := s.committed[i]
		if !ok || rec.seenTerm >= st.Term {
			// A leader of an older term than the commit's may lack it.
			continue
		}
		if i > last {
			s.violate("leader %d of term %d lacks committed entry %d (last index %d)", n.id, st.Term, i, last)
			return
		}
		if t, err := n.storage.Term(i); err == nil && t != rec.term {
			s.violate("leader %d of term %d has term %d at committed index %d (committed term %d)", n.id, st.Term, t, i, rec.term)
			return
		}
	}
}

// checkHardState checks a hard state about to be persisted against the
// last one: term and commit never go back, a vote is never changed
// within a term.
func (s *Sim) checkHardState(n *simNode, hs pb.HardState) {
	p := n.persisted
	switch {
	case hs.Term < p.Term:
		s.violate("node %d: persisted term goes back from %d to %d", n.id, p.Term, hs.Term)
	case hs.Term == p.Term && p.Vote != raft.None && hs.Vote != p.Vote:
		s.violate("node %d: vote changed within term %d from %d to %d", n.id, hs.Term, p.Vote, hs.Vote)
	case hs.Commit < p.Commit:
		s.violate("node %d: persisted commit goes back from %d to %d", n.id, p.Commit, hs.Commit)
	}
}

// checkNode checks n's leader and commit index after a step.
func (s *Sim) checkNode(n *simNode) {
	if n.rn == nil {
		return
	}
	st := n.rn.BasicStatus()
	s.maxTerm = max(s.maxTerm, st.Term)
	if st.RaftState == raft.StateLeader {
		if prev, ok := s.leaders[st.Term]; ok && prev.id != n.id {
			s.violate("two leaders in term %d: %d and %d", st.Term, prev.id, n.id)
		}
		if _, ok := s.leaders[st.Term]; !ok {
			s.leaders[st.Term] = leadership{id: n.id, incarnation: n.incarnation}
		}
	}
	if st.Commit < n.commit {
		s.violate("node %d: commit went back from %d to %d", n.id, n.commit, st.Commit)
	}
	n.commit = max(n.commit, st.Commit)
	if st.Applied < n.sm.Applied && st.Applied != 0 {
		s.violate("node %d: reports applied %d below its state machine's %d", n.id, st.Applied, n.sm.Applied)
	}
}

// checkTick checks, at the end of a tick, that the recent committed
// entries of every running node are the ones that were applied.
func (s *Sim) checkTick() {
	for _, n := range s.running() {
		first, _ := n.storage.FirstIndex()
		// What the storage itself claims committed: with Async the node may
		// know more than it has written yet.
		hi := min(n.persisted.Commit, s.lastIndex)
		lo := max(first, hi-min(hi, 64))
		for i := lo; i <= hi && i > 0; i++ {
			rec, ok := s.committed[i]
			if !ok {
				continue
			}
			if t, err := n.storage.Term(i); err == nil && t != rec.term {
				s.violate("node %d holds term %d at committed index %d (committed term %d)", n.id, t, i, rec.term)
				return
			}
		}
	}
}

// clientsStep lets every client complete, retry or start an operation.
func (s *Sim) clientsStep() {
	for _, c := range s.clients {
		if p := c.pending; p != nil && p.viaReadIndex {
			if n := s.node(p.node); p.index > 0 && n.rn != nil && n.sm.Applied >= p.index {
				s.clock++
				h := &s.history[p.hist]
				h.ret, h.output = s.clock, n.sm.Data[p.op.Key]
				delete(s.readers, p.ctx)
				c.pending = nil
			} else if s.now >= p.deadline {
				delete(s.readers, p.ctx)
				s.submit(c, p)
			}
			continue
		}
		if p := c.pending; p != nil {
			if out, ok := s.done[[2]uint64{uint64(c.id), p.op.Seq}]; ok {
				s.clock++
				h := &s.history[p.hist]
				h.ret, h.output = s.clock, out
				c.pending = nil
			} else if s.now >= p.deadline {
				s.submit(c, p)
			}
			continue
		}
		if !s.chaos {
			continue // the liveness phase issues its own operations
		}
		s.newOp(c)
	}
}

func (s *Sim) newOp(c *simClient) {
	c.seq++
	op := simOp{Client: c.id, Seq: c.seq, Key: fmt.Sprintf("k%d", s.rnd.IntN(s.cfg.Keys))}
	if s.rnd.IntN(2) == 0 {
		op.Get = true
	} else {
		op.Value = fmt.Sprintf("%d.%d", c.id, c.seq)
	}
	s.clock++
	s.history = append(s.history, histOp{op: op, call: s.clock})
	c.pending = &simPending{op: op, hist: len(s.history) - 1, viaReadIndex: op.Get && s.rnd.IntN(4) != 0}
	s.submit(c, c.pending)
}

// submit proposes p's operation through a random running node, and sets
// when to retry.
func (s *Sim) submit(c *simClient, p *simPending) {
	p.deadline = s.now + 15 + int64(s.rnd.IntN(10))
	run := s.running()
	if len(run) == 0 {
		return
	}
	n := run[s.rnd.IntN(len(run))]
	if p.viaReadIndex {
		// A linearizable read without the log: ask for a read index, and
		// read the state machine once it has applied that far.
		p.attempt++
		p.ctx = fmt.Sprintf("read %d.%d.%d", c.id, p.op.Seq, p.attempt)
		p.node, p.index = n.id, 0
		s.readers[p.ctx] = c

		n.rn.ReadIndex([]byte(p.ctx))
		return
	}
	data, err := json.Marshal(p.op)
	if err != nil {
		panic(err)
	}
	switch err := n.rn.Propose(data); {
	case errors.Is(err, raft.ErrProposalDropped):
		// Refused at once (no leader known, or not a member): a client
		// tries another node at the next tick.
		p.deadline = s.now + 1
	case err != nil:
		s.violate("node %d: propose: %v", n.id, err)
	}
}

// liveness heals everything and requires a leader and the completion of
// every client operation, old and new, within LivenessTicks.
func (s *Sim) liveness() {
	s.chaos = false
	s.blocked = map[link]bool{}
	s.event("liveness phase: network healed, every member restarted")
	for _, n := range s.nodes {
		if n.rn == nil {
			s.restart(n)
		}
	}
	for _, c := range s.clients {
		if c.pending == nil {
			s.newOp(c)
		}
	}
	// First every operation still pending completes; then one new
	// operation per client must complete too, each phase within the
	// bound.
	for round := 0; round < 2 && len(s.violations) == 0; round++ {
		if round == 1 {
			for _, c := range s.clients {
				s.newOp(c)
			}
		}
		start := s.now
		for ; s.now < start+int64(s.cfg.LivenessTicks) && len(s.violations) == 0 && !s.allDone(); s.now++ {
			if (s.now-start)%10 == 0 {
				s.leaveExplicitJoint()
			}
			s.runTick()
		}
		if !s.allDone() {
			break
		}
	}
	if s.allDone() {
		return
	}
	if len(s.violations) == 0 {
		var waiting []string
		for _, c := range s.clients {
			if c.pending != nil {
				waiting = append(waiting, fmt.Sprintf("client %d op %d", c.id, c.pending.op.Seq))
			}
		}
		leaders := []uint64{}
		for _, n := range s.running() {
			if n.rn.BasicStatus().RaftState == raft.StateLeader {
				leaders = append(leaders, n.id)
			}
		}
		s.violate("liveness: after %d fault-free ticks, leaders %v, still waiting: %v", s.cfg.LivenessTicks, leaders, waiting)
	}
}

func (s *Sim) allDone() bool {
	for _, c := range s.clients {
		if c.pending != nil {
			return false
		}
	}
	return true
}
