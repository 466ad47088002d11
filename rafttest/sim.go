package rafttest

import (
	"fmt"
	"math/rand/v2"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal/crashfs"
)

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
	// forwarded maps the ForwardID of each proposal the running RawNode
	// forwarded to its data (see takeForwarded).
	forwarded map[uint64]string
}

type simWrite struct {
	m   pb.Message
	due int64
}

// Sim is a deterministic chaos simulation of a cluster with clients. Use
// RunSim; the type is exported for its documentation.
type Sim struct {
	simLog
	cfg   SimConfig
	rnd   *rand.Rand
	clock int64 // orders history events within a tick
	nodes []*simNode
	peers []raft.Peer // the initial members
	// net carries the messages between nodes, with the faults of the
	// chaos phase.
	net *Network
	// lost counts the messages the network has lost.
	lost int

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
	// proposed maps where leaders reported appending a client's proposal
	// (ProposeWithResult) to what was proposed.
	proposed  map[[2]uint64]string // (index, term) -> data
	lastIndex uint64               // highest index in committed
	// forwardedAppended and forwardedUnknown count the followers'
	// reports on proposals they forwarded (SimResult).
	forwardedAppended, forwardedUnknown int
	// chaos is false in the final, fault-free phase.
	chaos bool
}

// simLog is a simulation's clock and what it found: the violations, and
// the last simEventLog events for diagnosis.
type simLog struct {
	now        int64
	violations []string
	events     []string
}

const simEventLog = 60

// simLogger is the nodes' logger (replaced when debugging).
var simLogger = raft.DiscardLogger

func (s *simLog) event(format string, args ...any) {
	e := fmt.Sprintf("t=%d ", s.now) + fmt.Sprintf(format, args...)
	if len(s.events) == simEventLog {
		copy(s.events, s.events[1:])
		s.events = s.events[:simEventLog-1]
	}
	s.events = append(s.events, e)
}

func (s *simLog) violate(format string, args ...any) {
	v := fmt.Sprintf("t=%d ", s.now) + fmt.Sprintf(format, args...)
	s.violations = append(s.violations, v)
	s.event("VIOLATION %s", v)
}

// RunSim runs one simulation and returns what it found.
func RunSim(cfg SimConfig) *SimResult {
	s := &Sim{
		cfg:       cfg,
		rnd:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed*0x9e3779b97f4a7c15+1)),
		net:       NewNetwork(cfg.Seed),
		done:      map[[2]uint64]string{},
		leaders:   map[uint64]leadership{},
		committed: map[uint64]entryRecord{},
		proposed:  map[[2]uint64]string{},
		readers:   map[string]*simClient{},
		chaos:     true,
	}
	s.net.SetDropRate(cfg.DropRate)
	s.net.SetDelay(cfg.MaxDelay)
	s.net.SetDupRate(cfg.DupRate)
	s.net.OnDrop = s.netLost
	res := &SimResult{Config: cfg}
	if err := s.start(); err != nil {
		s.violate("start: %v", err)
	}
	for i := 0; i < cfg.Clients; i++ {
		s.clients = append(s.clients, &simClient{id: i})
	}
	s.run()
	res.Ticks = s.now
	res.ForwardedAppended, res.ForwardedUnknown = s.forwardedAppended, s.forwardedUnknown
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
		s.net.SetNow(s.now)
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
			s.takeForwarded(n)
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
	s.net.Send(rd.Messages...)
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
			n.writes = s.enqueue(n, n.writes, m, s.cfg.appendQueue())
		case raft.LocalApplyThread:
			n.applies = s.enqueue(n, n.applies, m, s.cfg.applyQueue())
		default:
			peers = append(peers, m)
		}
	}
	// A leader whose own term is not durable yet is the window where a
	// crash does the most harm; a correct node is never in it.
	termPending := n.persisted.Term < n.rn.BasicStatus().Term
	if becameLeader && s.chaos && len(n.writes) > 0 {
		if c, ok := decideFreshLeaderCrash(s.rnd, s.cfg.FreshLeaderCrashRate, termPending); ok {
			if c.sendFirst {
				s.net.Send(peers...)
			}
			s.crash(n)
			n.restartAt = s.now + c.restartIn
			n.campaignOnRestart = c.campaign
			return
		}
	}
	s.net.Send(peers...)
	s.maybeCompact(n)
	s.checkNode(n)
}

// applyStallRate is the probability that an apply batch (with ApplyDelay)
// stalls for applyStallTicks: long enough for a partition to heal and a
// snapshot to overtake it, while the append thread goes on.
const (
	applyStallRate  = 0.05
	applyStallTicks = 40
)

// appendQueue is how the nodes' append threads (Async) are delayed: up to
// MaxDelay, longer on the slow disk.
func (c SimConfig) appendQueue() QueueFaults {
	return QueueFaults{MaxDelay: c.MaxDelay, SlowDisk: true}
}

// applyQueue is how the nodes' apply threads (Async) are delayed: up to
// ApplyDelay, with a long batch now and then.
func (c SimConfig) applyQueue() QueueFaults {
	q := QueueFaults{MaxDelay: c.ApplyDelay}
	if c.ApplyDelay > 0 {
		q.StallRate, q.StallTicks = applyStallRate, applyStallTicks
	}
	return q
}

// enqueue adds m to one of n's storage threads' queue, delayed as fault
// says in the chaos phase, but not before the work queued ahead of it.
func (s *Sim) enqueue(n *simNode, q []simWrite, m pb.Message, fault QueueFaults) []simWrite {
	due := s.now
	if s.chaos {
		due += fault.delay(s.rnd, n.id == s.cfg.SlowDisk)
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
		s.net.Send(peers...)
	}
	n.writes = n.writes[done:]
	return done > 0
}
