package rafttest

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/wal"
)

// Sim is the built-in chaos simulation: a replicated key-value store
// (simServer) whose clients read and write a few keys, run by RunChaos's
// machinery under the faults of a SimConfig. It holds what the servers of
// one run share: the configuration, the counts of forwarded proposals'
// outcomes, and each node's latest server. Use RunSim; the type is
// exported for its documentation.
type Sim struct {
	cfg SimConfig
	// forwardedAppended and forwardedUnknown count the followers'
	// reports on proposals they forwarded (SimResult).
	forwardedAppended, forwardedUnknown int
	// servers is each node's latest server.
	servers map[uint64]*simServer
	// nextLeave is the first tick a leader may propose to leave an
	// explicit joint configuration again (after the chaos phase).
	nextLeave int64
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
	s := &Sim{cfg: cfg, servers: map[uint64]*simServer{}}
	cc := ChaosConfig{
		Start:      s.start,
		Model:      KVModel(),
		NextOp:     s.nextOp,
		Unanswered: KVUnanswered,
		Nodes:      cfg.Nodes,
		Clients:    cfg.Clients,
		ChaosTicks: cfg.ChaosTicks, LivenessTicks: cfg.LivenessTicks,
		Retry: true,
		// Run asks a random node; only a leader changes the membership.
		ReconfigureRate: math.Min(1, cfg.ConfChangeRate*float64(cfg.Nodes)),
		SteadyClocks:    cfg.LeaseReads,
	}
	if cfg.Seed%2 == 0 {
		// On half the seeds, cut the current leader off now and then,
		// its clock stalled unless its reads rely on a lease: a deposed
		// leader answering reads is caught. (On every seed, the other
		// faults' share of the operations would shrink.)
		cc.IsolateLeaderRate = isolationRate(cfg.Seed, 0)
	}
	if cfg.Async {
		cc.Queues = map[string]QueueFaults{"append": cfg.appendQueue(), "apply": cfg.applyQueue()}
	} else if cfg.HoldReadyRate > 0 {
		cc.Queues = map[string]QueueFaults{"apply": cfg.applyQueue()}
	}
	res := runChaos(cc.withDefaults(), cfg)
	for _, id := range slices.Sorted(maps.Keys(s.servers)) {
		if err := s.servers[id].closeAtEnd(); err != nil {
			res.Violations = append(res.Violations, fmt.Sprintf("node %d: close storage: %v", id, err))
		}
	}
	if len(res.Violations) == 0 && !res.Linearizable {
		res.Violations = append(res.Violations, fmt.Sprintf("client history is not linearizable (%d operations)", res.Ops))
	}
	out := &SimResult{
		Config: cfg, Ops: res.Ops, Completed: res.Answered, Linearizable: res.Linearizable,
		Violations: res.Violations, Events: res.Events, Ticks: res.Ticks,
		ForwardedAppended: s.forwardedAppended, ForwardedUnknown: s.forwardedUnknown,
	}
	for _, n := range res.Nodes {
		out.Nodes = append(out.Nodes, n.String())
	}
	return out
}

// nextOp is a client's next operation: a read or a write of one of
// cfg.Keys keys. Values are never empty, so a read of "" found nothing.
func (s *Sim) nextOp(r *rand.Rand) any {
	key := fmt.Sprintf("k%d", r.IntN(s.cfg.Keys))
	if r.IntN(2) == 0 {
		return KVInput{Op: KVGet, Key: key}
	}
	return KVInput{Op: KVPut, Key: key, Value: fmt.Sprint(1 + r.Uint32())}
}

// start starts node env.ID's server, from its durable state machine and
// storage after a crash.
func (s *Sim) start(env *ServerEnv) (Server, error) {
	d, _ := env.Durable.(*simDurable)
	if d == nil {
		d = &simDurable{sm: newKVState()}
		env.Durable = d
	}
	srv := &simServer{sim: s, env: env, durable: d, reads: map[string]*simRead{}, waiting: map[uint64]func(any){}}
	if err := srv.open(); err != nil {
		return nil, err
	}
	s.servers[env.ID] = srv
	return srv, nil
}

// closeAtEnd closes the storage of a server still running at the end of
// the run (a crashed one's was closed, or lost with its disk).
func (s *simServer) closeAtEnd() error {
	if s.closed {
		return nil
	}
	if w, ok := s.storage.(*wal.Storage); ok {
		return w.Close()
	}
	return nil
}
