package rafttest

import (
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// Flags of Run, for go test: replay one seed, change how many seeds run,
// or write a picture of every run.
var (
	chaosSeedFlag  = flag.Uint64("rafttest.seed", 0, "rafttest.Run: run only this seed, logging every event of it")
	chaosSeedsFlag = flag.Int("rafttest.seeds", 0, "rafttest.Run: number of seeds to run (default ChaosConfig.Seeds)")
	chaosHTMLFlag  = flag.String("rafttest.html", "", "rafttest.Run: write a picture of every run (not only failed ones) to this directory")
)

// Server is one incarnation of a program's own server code on one node, as
// Run drives it in place of the server's event loop: Run owns time (it
// ticks the RawNode), the network (it steps into the RawNode what the
// network delivers, late, twice or never) and crashes (it drops the
// Server and starts a new one from what the node's storage holds).
//
// The Server keeps what the server's loop does with a Ready: HandleReady
// is meant to be the server's own Ready handling, unchanged, with its
// transport's send pointed at ServerEnv.Send. That is why the simulator
// hands the Server a Ready rather than asking it for what it persisted
// and applied: the code under test is the code that runs in production,
// including its mistakes (forgetting to persist the HardState, applying an
// entry twice after a restart, answering a read before ReadIndex), and
// the simulator checks what comes out of it.
//
// A Server is used from one goroutine at a time and must not start
// goroutines that touch its RawNode: everything happens in the simulator's
// steps, so that a seed replays exactly. A crash comes between two of
// those steps, never inside HandleReady: a synchronous server that sends
// a Ready's messages before persisting it (a vote or an acknowledgement
// leaving before the write) is not caught, since its HandleReady always
// gets to persist. (With AsyncStorageWrites the writes are ServerEnv.Later
// work a crash can overtake, and that mistake is caught.) If the Server is
// an io.Closer,
// Close is called then, to release what it holds (files, a storage), and
// must not make anything more durable.
//
// With AsyncStorageWrites (set in the Config before building the
// RawNode), HandleReady hands the MsgStorageAppend and MsgStorageApply
// messages to the server's storage threads, which it runs as
// ServerEnv.Later functions instead of goroutines: they persist or apply,
// then deliver the messages' Responses (stepping those addressed to the
// node, sending the others), and a crash loses what they had not done.
// HandleReady does not call Advance then.
type Server interface {
	// RawNode returns the node's RawNode, built by the server when it
	// started (see ServerEnv.Config). The simulator calls Tick, Step,
	// Ready, ReportSnapshot, TransferLeader and Status on it; it never
	// proposes through it.
	RawNode() *raft.RawNode
	// HandleReady handles one Ready as the server's loop does: persist
	// rd.Snapshot, rd.Entries and rd.HardState; send rd.Messages through
	// ServerEnv.Send; apply rd.Snapshot and rd.CommittedEntries and
	// answer the operations they complete (Op.Done); serve rd.ReadStates;
	// call Advance (or apply and advance later: ServerEnv.HoldReady).
	// Once it returns, what it persisted must survive a
	// crash if rd.MustSync (and with it what earlier Readys persisted); a
	// Ready without MustSync only moves the commit index, which a crash
	// may take back to the last synced one. (With AsyncStorageWrites, see
	// above: what a node acknowledged or voted must survive.) An error
	// stops the run and is reported as a violation.
	HandleReady(rd raft.Ready) error
	// Submit starts a client's operation on this node, as the server's
	// request handler does: propose it, or ask for a read index. The
	// server calls op.Done with the operation's output once it knows it,
	// typically while applying in HandleReady. The client gives up
	// after ChaosConfig.OpTimeout ticks; an operation whose answer never
	// came may still take effect later, and the history says so.
	Submit(op Op)
}

// StorageServer is a Server whose log the simulator may read: the
// storage its RawNode reads and its HandleReady persists to (env.Storage,
// or its own). Run then also checks that every new leader's log holds
// each entry committed before its term (Leader Completeness) and that
// every node's log holds the committed entry at each index up to the
// commit index it persisted (its storage never loses or replaces one).
// The simulator only reads it, between the steps it drives.
type StorageServer interface {
	Server
	Storage() raft.Storage
}

// Op is a client's operation handed to Server.Submit.
type Op struct {
	// ID is unique within a run: a server that puts it in the proposed
	// entry can tell, when applying, which operation it completes.
	ID uint64
	// Input is what ChaosConfig.NextOp returned.
	Input any
	// Client is the client that started the operation, 0 to
	// ChaosConfig.Clients-1. A client runs one operation at a time, so
	// the IDs of its operations increase: with ChaosConfig.Retry, a
	// server may remember the last ID applied per client to apply each
	// operation once.
	Client int
	// Done answers the client with the operation's output, for the
	// Model. Only the first call counts, and only while the client still
	// waits; Done is never nil.
	Done func(output any)
}

// ServerEnv is what ChaosConfig.Start gets to start a node's server: who
// it is, its durable storage, and the simulated network.
type ServerEnv struct {
	// ID is the node's ID, 1 to the number of nodes.
	ID uint64
	// Peers are the initial members: a server whose storage is empty
	// (LastIndex is 0) bootstraps its RawNode with them. A spare node
	// (ChaosConfig.Spares) has none: it starts empty and waits to be
	// added.
	Peers []raft.Peer
	// Storage is the node's own MemoryStorage. It survives the node's
	// crashes: everything written to it is durable. A server with a
	// storage of its own (a WAL in a directory per ID) may ignore it.
	Storage *raft.MemoryStorage
	// Restarts counts the node's earlier crashes: 0 on its first start.
	Restarts int
	// Durable is what the node's previous incarnation left in its
	// ServerEnv's Durable (nil at the first start): a server keeps there
	// what its disk would hold besides Storage, e.g. a durable state
	// machine or a storage of its own. It survives the node's crashes
	// (only what was written to it, so write there only what the server
	// makes durable) and nothing else: every run starts without it.
	Durable any
	// Rand is a random source drawn from the seed, the node and its
	// restarts, for the server's own random choices (how much log to
	// keep when compacting, which path a read takes): a server that
	// draws from it, and from no other, replays with the seed.
	Rand *rand.Rand

	run *chaosRun
}

// Config returns the raft.Config for the node's RawNode: ID, Storage
// (ServerEnv.Storage), tick counts, PreVote and CheckQuorum as the seed
// chose, and a RandomSource drawn from the seed, so that the run replays.
// Set Applied (to what the state machine holds) and change other fields
// as the server does, but keep RandomSource.
func (e *ServerEnv) Config() *raft.Config {
	c := e.run.fault
	return &raft.Config{
		ID:              e.ID,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         e.Storage,
		MaxSizePerMsg:   c.MaxSizePerMsg,
		MaxInflightMsgs: c.MaxInflightMsgs,
		PreVote:         c.PreVote,
		CheckQuorum:     c.CheckQuorum,
		Logger:          simLogger,
		RandomSource:    rand.NewPCG(c.Seed, e.ID<<16|uint64(e.Restarts)),
	}
}

// Later runs f at a later step of the simulation, on the simulator's
// goroutine: the work a server hands to a thread of its own, such as the
// append and apply threads of AsyncStorageWrites. Functions given the same
// queue run in the order given, each up to a few ticks after it was
// handed over (the seed draws the delays); queues are independent of each
// other. A crash of the node drops what has not run yet, so a write made
// by a Later function is lost if the crash comes first, as a write still
// in a storage thread's hands is. Later (like Send) does nothing when
// called from ChaosConfig.Start, before the server is running.
func (e *ServerEnv) Later(queue string, f func()) {
	e.run.later(e, queue, f)
}

// Send hands messages to the simulated network, which delivers them to
// their recipients' RawNodes later, perhaps twice, perhaps never. Every
// message must be from this node. Call it from HandleReady after
// persisting, as a transport is.
func (e *ServerEnv) Send(msgs ...pb.Message) {
	e.run.send(e, msgs)
}

// HoldReady tells the simulator that HandleReady returns with its Ready
// persisted and sent but not yet applied nor advanced: the server applies
// it and calls Advance later, in a function handed to Later, then calls
// ReleaseReady, as a server whose apply loop runs beside raft.Node (or
// beside a goroutine that goes on stepping into its RawNode) does. Until
// then the node gets no Ready, while the simulator goes on ticking it and
// stepping into it what the network delivers: a snapshot among that may
// replace its configuration before the held Ready's conf changes are
// applied. Not with AsyncStorageWrites.
func (e *ServerEnv) HoldReady() {
	e.run.holdReady(e, true)
}

// ReleaseReady tells the simulator that the Ready HoldReady held is
// applied and advanced: the node gets Readys again.
func (e *ServerEnv) ReleaseReady() {
	e.run.holdReady(e, false)
}

// Hurry runs at once, in order, the first n functions waiting on queue
// (fewer if fewer wait), as a thread that waits for another thread's
// work before going on: say, an append thread that installs a snapshot
// only once the apply thread has applied the batches handed to it
// before. Call it from a function of another queue.
func (e *ServerEnv) Hurry(queue string, n int) {
	e.run.hurry(e, queue, n)
}

// Appended tells the simulator where the node's RawNode reported a
// proposal appended: the Index and Term of ProposeWithResult's result, or
// of a ForwardedOutcome that is not Unknown, with the data proposed. Run
// checks that the entry committed at that index, if it is of that term,
// carries that data, and that no two reports for one index and term
// differ: a server that answers its clients from those reports relies on
// both.
func (e *ServerEnv) Appended(index, term uint64, data []byte) {
	e.run.appended(e, index, term, data)
}

// ChaosConfig is a chaos test of a program's own server: how to start it,
// the clients' operations and the model their history must be
// linearizable against.
type ChaosConfig struct {
	// Start starts the server of one node: at the beginning of a run, and
	// again after each of the node's crashes, from what env.Storage (or
	// the server's own storage) holds. It typically builds a RawNode
	// from env.Config(), bootstraps it with env.Peers if the storage is
	// empty, and restores its state machine from the storage's snapshot.
	Start func(env *ServerEnv) (Server, error)

	// Model is the sequential specification the clients' history is
	// checked against (KVModel for a key-value store).
	Model porcupine.Model
	// NextOp returns the Input of a client's next operation, drawing
	// from r only (not from other randomness), so that a seed replays.
	NextOp func(r *rand.Rand) any
	// Unanswered returns the Output to record for an operation whose
	// answer never came (the client gave up, or the node crashed), and
	// whether to keep it in the history. An operation that changes
	// nothing (a read) is best left out (keep false); one that may have
	// taken effect must be kept (keep true), with an output the Model
	// accepts in any state (KVOutput{Unknown: true} with KVModel): it is
	// checked as if it returned at the end of time.
	Unanswered func(input any) (output any, keep bool)

	// Nodes is the cluster size; 0 lets each seed choose 3, 5 or 7.
	Nodes int
	// Clients is how many clients run operations, one at a time each
	// (default 3).
	Clients int
	// ChaosTicks is how long faults are injected (default 300). Then
	// comes the liveness phase: the network heals (no more cuts, losses,
	// delays or duplicates), the nodes that are down start again (the
	// others keep running), and each client must have, within
	// LivenessTicks (default 400), an answer to an operation it starts in
	// that phase (it starts new ones until one is answered; an operation
	// still pending from the chaos phase is given up at its timeout,
	// unless Retry).
	ChaosTicks, LivenessTicks int
	// OpTimeout is how many ticks a client waits for an answer before it
	// gives up on an operation and starts another (default 20).
	OpTimeout int
	// Retry makes a client that times out submit the same operation
	// again (the same Op.ID and Input) to a random running node, until
	// it is answered, as the client of a server that applies each
	// operation once does; the history keeps it as one operation, called
	// when first submitted. The liveness phase then requires the
	// operations pending when it began to be answered too (a client
	// starts no other before).
	Retry bool
	// Seeds is how many seeds Run runs (default 20; the flag
	// -rafttest.seeds overrides it).
	Seeds int
	// NoDuplicates keeps the network from delivering a message twice, for
	// a server whose transport never does (one send per message over
	// TCP, no resending): such a server may apply a proposal each time it
	// is committed, and a duplicated proposal would be committed twice.
	// Messages are still lost, late and reordered.
	NoDuplicates bool

	// Spares are nodes beyond the initial ones (IDs Nodes+1 to
	// Nodes+Spares) that start with empty storage and no Peers: they
	// take part once the servers add them to the cluster.
	Spares int
	// ReconfigureRate is the per-tick probability that a random running
	// node whose server is a Reconfigurer is asked to change the
	// membership.
	ReconfigureRate float64

	// Queues sets, by queue name, how long the functions handed to
	// ServerEnv.Later wait in the chaos phase: the faults of the server's
	// own threads (a slow disk for the append thread, long batches for
	// the apply thread). After the chaos phase they wait no longer than
	// the work ahead of them. Functions of other queues wait 0 to 3 ticks
	// throughout.
	Queues map[string]QueueFaults
	// FreshLeaderCrashRate is the probability that a node that has just
	// become leader while ServerEnv.Later work of its own is pending (its
	// first writes as leader) crashes at once, its first messages as
	// leader sent or not, and restarts one or two ticks later, half the
	// time calling Campaign at once as a server that wants its leadership
	// back quickly does. With a rate above 0, a new leader of a
	// StorageServer whose stored term is behind (it won the election
	// before its term was durable) crashes so always, and campaigns at
	// once: a correct server is never there.
	FreshLeaderCrashRate float64
	// IsolateLeaderRate is the per-tick probability, in the chaos phase,
	// that the current leader is cut off from the other nodes, its
	// clock stalled (see SteadyClocks) and half the clients' operations
	// still sent to it: for at least two election timeouts, and until
	// the others have elected a leader and 40 to 80 ticks more (at most
	// 150 ticks). They commit writes while it still believes it leads,
	// which catches a server whose leader answers reads from its own
	// state without ReadIndex. 0 lets each seed choose 0.01, 0.02 or
	// 0.03.
	IsolateLeaderRate float64
	// SteadyClocks keeps an isolated leader's clock ticking. Otherwise it
	// stalls while isolated (a paused process, a starved ticker), so that
	// with CheckQuorum too the leader believes it still leads while the
	// others elect: set it for a server whose reads rely on the leader's
	// lease (Config.ReadOnlyOption ReadOnlyLeaseBased), which is safe only
	// while clocks keep pace.
	SteadyClocks bool
	// ForgetSnapshotReports is the probability that the network does
	// not tell the sender of a lost snapshot (ReportSnapshot with
	// SnapshotFailure), as a transport that loses track of one: only
	// the sender's Config.SnapshotTimeout then gets the follower out of
	// StateSnapshot.
	ForgetSnapshotReports float64

	// keepEvents keeps every event of a run in ChaosResult.allEvents.
	keepEvents bool
}

// Reconfigurer is a Server that changes the cluster's membership the way
// its operators ask it to, through its own code: Run calls Reconfigure on
// a running node now and then (ChaosConfig.ReconfigureRate), with the IDs
// of every node, spares included, and a random source drawn from the
// seed; the server picks a change (add a spare as a learner, promote one,
// remove a voter, ...) and proposes it as it would. Run checks the same
// invariants throughout; a removed node's server should refuse its
// clients' operations (they time out and go elsewhere).
type Reconfigurer interface {
	Server
	Reconfigure(r *rand.Rand, nodes []uint64)
}

func (c ChaosConfig) withDefaults() ChaosConfig {
	if c.Clients == 0 {
		c.Clients = 3
	}
	if c.ChaosTicks == 0 {
		c.ChaosTicks = 300
	}
	if c.LivenessTicks == 0 {
		c.LivenessTicks = 400
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 20
	}
	if c.Seeds == 0 {
		c.Seeds = 20
	}
	return c
}

func (c ChaosConfig) validate() error {
	switch {
	case c.Start == nil:
		return fmt.Errorf("rafttest: ChaosConfig.Start is nil")
	case c.Model.Step == nil && c.Model.StepContext == nil:
		return fmt.Errorf("rafttest: ChaosConfig.Model has no Step")
	case c.NextOp == nil:
		return fmt.Errorf("rafttest: ChaosConfig.NextOp is nil")
	case c.Unanswered == nil:
		return fmt.Errorf("rafttest: ChaosConfig.Unanswered is nil (an unanswered write may have taken effect: say how to record it)")
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"Nodes", c.Nodes}, {"Clients", c.Clients}, {"ChaosTicks", c.ChaosTicks}, {"LivenessTicks", c.LivenessTicks},
		{"OpTimeout", c.OpTimeout}, {"Seeds", c.Seeds}, {"Spares", c.Spares},
	} {
		if f.v < 0 {
			return fmt.Errorf("rafttest: ChaosConfig.%s is %d, below 0", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"ReconfigureRate", c.ReconfigureRate}, {"FreshLeaderCrashRate", c.FreshLeaderCrashRate},
		{"ForgetSnapshotReports", c.ForgetSnapshotReports}, {"IsolateLeaderRate", c.IsolateLeaderRate},
	} {
		if f.v < 0 || math.IsNaN(f.v) {
			return fmt.Errorf("rafttest: ChaosConfig.%s is %v, below 0", f.name, f.v)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Queues)) {
		if q := c.Queues[name]; q.MaxDelay < 0 || q.StallTicks < 0 || q.StallRate < 0 || math.IsNaN(q.StallRate) {
			return fmt.Errorf("rafttest: ChaosConfig.Queues[%q] has a negative delay or rate", name)
		}
	}
	return nil
}

// Run chaos-tests a program's server code from a test: it runs cfg over
// seeds 1 to cfg.Seeds (or the -rafttest.seeds flag), each seed choosing
// the cluster size (unless cfg.Nodes), PreVote and CheckQuorum and the
// faults: messages delayed, reordered, duplicated and lost, partitions,
// the leader cut off from the others with its clock stalled
// (IsolateLeaderRate), crashes and restarts, leader transfers. It checks after every step
// that there is at most one leader per term, that no node's term, vote or
// commit goes back (across restarts too: what HandleReady persisted with
// MustSync must survive, and a node restarts in at least the term it
// acknowledged entries or voted in, with the vote it sent and, for a
// StorageServer, the entries it acknowledged in that term), that every
// node is handed the same entry at each committed index and no entry
// twice, and that no server panics; at the end, that
// the cluster recovers once the faults stop and that the clients'
// history is linearizable against cfg.Model.
//
// The first failing seed fails t with a report: the violations, the
// seed's faults, the last events and the command that replays it
// (-rafttest.seed=N runs that seed alone and logs every event of it, from
// the first tick, with the test's -v). A picture
// of the failed run, the clients' operations beside the nodes' roles,
// crashes and partitions, is written to an HTML file whose path the
// report gives (-rafttest.html=DIR writes one for every run). The first
// seed runs twice: a run that does not replay fails the test.
func Run(t testing.TB, cfg ChaosConfig) {
	t.Helper()
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	seeds := make([]uint64, 0, cfg.Seeds)
	switch {
	case *chaosSeedFlag != 0:
		seeds = append(seeds, *chaosSeedFlag)
	default:
		n := cfg.Seeds
		if *chaosSeedsFlag > 0 {
			n = *chaosSeedsFlag
		}
		for s := 1; s <= n; s++ {
			seeds = append(seeds, uint64(s))
		}
	}
	// The replay command runs in the directory of the test that called
	// Run.
	cd := ""
	if _, file, _, ok := runtime.Caller(1); ok {
		cd = "cd " + filepath.Dir(file) + " && "
	}
	ops := 0
	// A replay keeps every event, not only the last ones.
	cfg.keepEvents = *chaosSeedFlag != 0
	for i, seed := range seeds {
		res := RunChaos(cfg, seed)
		ops += res.Ops
		if i == 0 && !res.sameRun(RunChaos(cfg, seed)) {
			t.Fatalf("rafttest: seed %d ran differently twice, so no seed would replay: does the server build its RawNode from ServerEnv.Config (keeping its RandomSource), NextOp draw only from its r, and nothing start goroutines or read the clock?", seed)
		}
		if *chaosSeedFlag != 0 {
			for _, e := range res.allEvents {
				t.Log(e)
			}
		}
		var picture string
		if res.Failed() || *chaosHTMLFlag != "" {
			picture = writePicture(t, res)
		}
		if res.Failed() {
			rep := res.Report()
			rep += fmt.Sprintf("replay: %sgo test -run '^%s$' -rafttest.seed=%d -v\n", cd, regexp.QuoteMeta(t.Name()), seed)
			if picture != "" {
				rep += "picture of the run: " + picture + "\n"
			}
			t.Fatal(rep)
		}
	}
	if *chaosSeedFlag == 0 {
		t.Logf("rafttest: %d seeds, %d client operations, no violation", len(seeds), ops)
	}
}

// writePicture writes res's HTML picture to -rafttest.html or a new
// temporary directory (kept after the test) and returns its path, or ""
// if it could not.
func writePicture(t testing.TB, res *ChaosResult) string {
	dir := *chaosHTMLFlag
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "rafttest-"); err != nil {
			t.Logf("rafttest: no picture: %v", err)
			return ""
		}
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	path := filepath.Join(dir, fmt.Sprintf("%s-seed%d.html", name, res.Seed))
	f, err := os.Create(path)
	if err == nil {
		err = res.WriteHTML(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Logf("rafttest: no picture: %v", err)
		return ""
	}
	return path
}

// ChaosResult is what one run of RunChaos found.
type ChaosResult struct {
	// Seed is the run's seed; Faults the configuration it chose (only
	// its cluster size, PreVote, CheckQuorum, flow-control and fault
	// fields apply; SlowDisk is the slow node of ChaosConfig.Queues, if
	// the seed chose one).
	Seed   uint64
	Faults SimConfig
	// Ops is the number of client operations; Answered how many got an
	// answer.
	Ops, Answered int
	// Linearizable is the verdict on the history (false when a violation
	// stopped the run before the check).
	Linearizable bool
	// Violations lists every broken invariant; empty on success.
	Violations []string
	// Events are the last things that happened (up to 60), for
	// diagnosis.
	Events []string
	// Ticks is the virtual time the run took.
	Ticks int64
	// Nodes is each node at the end, spares included.
	Nodes []ChaosNode

	model    porcupine.Model
	history  []porcupine.Operation
	timeline []porcupine.Annotation
	// allEvents is every event, with ChaosConfig.keepEvents.
	allEvents []string
}

// ChaosNode is a node at the end of a run: down, or its role, term,
// commit and applied indexes and the configuration it knows.
type ChaosNode struct {
	ID                    uint64
	Down                  bool
	State                 raft.StateType
	Term, Commit, Applied uint64
	Conf                  pb.ConfState
}

func (n ChaosNode) String() string {
	if n.Down {
		return fmt.Sprintf("%d: down", n.ID)
	}
	return fmt.Sprintf("%d: %s term %d commit %d applied %d %s", n.ID, n.State, n.Term, n.Commit, n.Applied, n.Conf.Describe())
}

// sameRun reports whether r and o went the same way, as runs of one
// seed must.
func (r *ChaosResult) sameRun(o *ChaosResult) bool {
	// The operations are compared by value: an input or output may hold
	// pointers, new ones in every run.
	return r.Ticks == o.Ticks && r.Ops == o.Ops && r.Answered == o.Answered &&
		slices.Equal(r.Events, o.Events) && slices.Equal(r.Violations, o.Violations) &&
		reflect.DeepEqual(r.history, o.history)
}

// Failed reports whether the run found a problem.
func (r *ChaosResult) Failed() bool { return len(r.Violations) > 0 || !r.Linearizable }

// Report renders the result for a test failure: the seed and its faults,
// the violations and the last events.
func (r *ChaosResult) Report() string {
	var b strings.Builder
	f := r.Faults
	fmt.Fprintf(&b, "rafttest: seed %d failed: nodes=%d prevote=%v checkquorum=%v maxsize=%d inflight=%d drop=%.2f dup=%.2f delay=%d partition=%.2f crash=%.2f restart=%.2f transfer=%.2f",
		r.Seed, f.Nodes, f.PreVote, f.CheckQuorum, f.MaxSizePerMsg, f.MaxInflightMsgs, f.DropRate, f.DupRate, f.MaxDelay, f.PartitionRate, f.CrashRate, f.RestartRate, f.TransferRate)
	if f.SlowDisk != 0 {
		fmt.Fprintf(&b, " slowdisk=%d", f.SlowDisk)
	}
	if f.FreshLeaderCrashRate != 0 {
		fmt.Fprintf(&b, " leadercrash=%.2f", f.FreshLeaderCrashRate)
	}
	b.WriteString("\n")
	if !r.Linearizable && len(r.Violations) == 0 {
		b.WriteString("the clients' history is not linearizable\n")
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "violation: %s\n", v)
	}
	fmt.Fprintf(&b, "%d operations, %d answered, %d ticks\n", r.Ops, r.Answered, r.Ticks)
	b.WriteString("last events:\n")
	for _, e := range r.Events {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}
