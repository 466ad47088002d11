package rafttest

import (
	"fmt"
	"math/rand/v2"
	"strings"
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
	// before or after writes handed out after them (one in
	// 1/applyStallRate stalls for applyStallTicks more), and a crash loses
	// them too. ApplyDelay bounds the wait of held Readys too
	// (HoldReadyRate).
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
	// HoldReadyRate (without Async) is the probability that a server
	// persists and sends a Ready at once but applies it and calls Advance
	// up to three ticks later (ServerEnv.HoldReady), as a server whose
	// apply loop runs beside raft.Node does: meanwhile the node steps
	// what the network delivers and ticks, a snapshot perhaps among it.
	// SnapshotWaitsApply (Async) makes the append thread install
	// a snapshot in the state machine only once the apply thread has
	// applied the batches handed to it before, in full (conf changes
	// included, although the node already has the snapshot's
	// configuration), instead of at once (the apply thread then skips
	// what the snapshot covers).
	HoldReadyRate      float64
	SnapshotWaitsApply bool
	// ReuseReadyMessages (without Async) sets the nodes'
	// Config.ReuseReadyMessages: the servers send (copy) a Ready's
	// messages before Advance, as the option requires.
	ReuseReadyMessages bool
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
	if cfg.Async {
		cfg.SnapshotWaitsApply = r.IntN(2) == 0
	} else if r.IntN(2) == 0 {
		cfg.HoldReadyRate = []float64{0.1, 0.3, 1}[r.IntN(3)]
		cfg.ApplyDelay = r.IntN(8)
	}
	// From the seed's parity, not drawn: a run differs from earlier
	// versions' only in the memory its messages occupy.
	cfg.ReuseReadyMessages = !cfg.Async && seed%2 == 1
	return cfg
}

func (c SimConfig) String() string {
	return fmt.Sprintf("seed=%d nodes=%d prevote=%v checkquorum=%v maxsize=%d inflight=%d clients=%d drop=%.2f dup=%.2f delay=%d partition=%.2f crash=%.2f compact=%d snaptimeout=%d forget=%.1f transfer=%.2f confchange=%.2f stepdown=%v leasereads=%v async=%v applydelay=%d leadercrash=%.1f slowdisk=%d holdready=%.1f snapwaitsapply=%v reusemsgs=%v walpowerloss=%v",
		c.Seed, c.Nodes, c.PreVote, c.CheckQuorum, c.MaxSizePerMsg, c.MaxInflightMsgs, c.Clients,
		c.DropRate, c.DupRate, c.MaxDelay, c.PartitionRate, c.CrashRate, c.CompactEvery, c.SnapshotTimeout, c.ForgetReports, c.TransferRate, c.ConfChangeRate, c.StepDownOnRemoval, c.LeaseReads, c.Async,
		c.ApplyDelay, c.FreshLeaderCrashRate, c.SlowDisk, c.HoldReadyRate, c.SnapshotWaitsApply, c.ReuseReadyMessages, c.WALPowerLoss)
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
	// ForwardedAppended and ForwardedUnknown count the proposals
	// followers forwarded whose entry they reported appended (each checked
	// against what was applied there) or gave up on.
	ForwardedAppended, ForwardedUnknown int
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
