package rafttest_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/invariants"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/rafttest"
	"github.com/raftcore/raft/tracker"
)

// counterBugs are mistakes a counterServer can be told to make, each one
// a server would make.
type counterBugs struct {
	// forgetApplied restarts the node from its last snapshot, with
	// Applied 0, although its counters are durable (and the operations
	// it applied are remembered in memory only): the entries after the
	// snapshot are applied a second time on top of them.
	forgetApplied bool
	// localReads answers a read from the node's own counter at once,
	// without ReadIndex: stale on a follower or a deposed leader.
	localReads bool
	// skipHardState persists entries but not the HardState.
	skipHardState bool
	// skipAdvance never calls Advance.
	skipAdvance bool
	// applyDuplicates applies an operation each time it is committed: a
	// proposal the network delivered twice is applied twice.
	applyDuplicates bool
	// keepConflicting stores only the entries past its last index: an
	// entry a new leader sent to replace one is not stored.
	keepConflicting bool
	// loseTail loses, at each restart, the stored entries past the
	// stored commit index, as a log that acknowledges entries before
	// syncing them does.
	loseTail bool
	// unsyncedCommit is not a mistake: a HardState handed in a Ready
	// without MustSync (only the commit index moved) is kept in memory
	// until the next Ready that must sync, as a server that writes it
	// without syncing has it; a crash loses it. The counters are in
	// memory too: a restart rebuilds them from the log's snapshot and
	// the committed entries after it, so the commit index it restarts
	// with is the last synced one.
	unsyncedCommit bool
	// leaseReads is not a mistake either, as long as clocks keep pace:
	// reads are served by the leader's lease (ReadOnlyLeaseBased, with
	// CheckQuorum).
	leaseReads bool
}

// counterInput is an operation on one of the replicated counters: add
// Delta, or read (Delta 0).
type counterInput struct {
	Key   string
	Delta int
}

// counterUnknown is the output of an addition whose answer never came.
const counterUnknown = -1

// counterModel is the counters' sequential specification: an addition
// returns the new value, a read the current one. Each key is checked on
// its own.
var counterModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(counterInput).Key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range []string{"a", "b", "c"} {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		v, in, out := state.(int), input.(counterInput), output.(int)
		if in.Delta == 0 {
			return out == v, v
		}
		return out == counterUnknown || out == v+in.Delta, v + in.Delta
	},
	DescribeOperation: func(input, output any) string {
		if in := input.(counterInput); in.Delta != 0 {
			return fmt.Sprintf("add(%s, %d) -> %d", in.Key, in.Delta, output)
		}
		return fmt.Sprintf("get(%s) -> %d", input.(counterInput).Key, output)
	},
}

// counterDisk is what survives a node's crash besides its MemoryStorage:
// the counters are durable, written with the index they were applied at
// and the configuration.
type counterDisk struct {
	state   counterState
	applied uint64
	conf    pb.ConfState
	// log is the node's log with counterBugs.loseTail (nil otherwise).
	log *raft.MemoryStorage
}

// dropTail returns a copy of ms without the entries past its commit
// index.
func dropTail(ms *raft.MemoryStorage) (*raft.MemoryStorage, error) {
	out := raft.NewMemoryStorage()
	hs, _, err := ms.InitialState()
	if err != nil {
		return nil, err
	}
	snap, err := ms.Snapshot()
	if err == nil && !raft.IsEmptySnap(snap) {
		err = out.ApplySnapshot(snap)
	}
	first, _ := ms.FirstIndex()
	if err == nil && hs.Commit >= first {
		var ents []pb.Entry
		if ents, err = ms.Entries(first, hs.Commit+1, math.MaxUint64); err == nil {
			err = out.Append(ents)
		}
	}
	if err == nil {
		err = out.SetHardState(hs)
	}
	return out, err
}

// counterState is the state machine, as its snapshots hold it: the
// counters, and the operations applied (the network may deliver a
// forwarded proposal twice, and the log then holds it twice).
type counterState struct {
	Counters map[string]int
	Applied  map[uint64]bool
}

func (c counterState) encode() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}

// counterCompactEvery is how many entries a counterServer applies between
// snapshots, after which it compacts its log.
const counterCompactEvery = 10

// counterServer replicates a counter. Additions go through the log; reads
// through ReadIndex.
type counterServer struct {
	bugs    counterBugs
	rn      *raft.RawNode
	env     *rafttest.ServerEnv
	disk    *counterDisk
	waiting map[uint64]func(any)
	// reads wait for the read index of their context, then for the
	// counter to be applied that far.
	reads map[string]*counterRead
	// unsynced is the HardState not yet written (unsyncedCommit).
	unsynced pb.HardState
}

type counterRead struct {
	done  func(any)
	key   string
	index uint64 // 0 while its read index is not known
}

type counterEntry struct {
	ID    uint64
	Key   string
	Delta int
}

// counterConfig returns a ChaosConfig for counter servers with bugs.
func counterConfig(bugs counterBugs) rafttest.ChaosConfig {
	return rafttest.ChaosConfig{
		Start: func(env *rafttest.ServerEnv) (rafttest.Server, error) {
			if env.Durable == nil {
				env.Durable = &counterDisk{state: counterState{Counters: map[string]int{}, Applied: map[uint64]bool{}}}
			}
			s := &counterServer{bugs: bugs, env: env, disk: env.Durable.(*counterDisk), waiting: map[uint64]func(any){}, reads: map[string]*counterRead{}}
			if bugs.loseTail {
				if s.disk.log == nil {
					s.disk.log = env.Storage
				} else {
					var err error
					if s.disk.log, err = dropTail(s.disk.log); err != nil {
						return nil, err
					}
				}
				env.Storage = s.disk.log
			}
			cfg := env.Config()
			if bugs.leaseReads {
				cfg.ReadOnlyOption, cfg.CheckQuorum = raft.ReadOnlyLeaseBased, true
			}
			snap, err := env.Storage.Snapshot()
			if err != nil {
				return nil, err
			}
			if bugs.unsyncedCommit {
				s.disk.state = counterState{Counters: map[string]int{}, Applied: map[uint64]bool{}}
				if !raft.IsEmptySnap(snap) {
					if err := json.Unmarshal(snap.Data, &s.disk.state); err != nil {
						return nil, err
					}
				}
				s.disk.applied, s.disk.conf = snap.Metadata.Index, snap.Metadata.ConfState
			}
			if !bugs.forgetApplied && s.disk.applied > snap.Metadata.Index {
				// The counter is durable with its configuration: record
				// them as a snapshot (as a server that snapshots on
				// shutdown does), which the node restarts from.
				if _, err := env.Storage.CreateSnapshot(s.disk.applied, &s.disk.conf, s.disk.state.encode()); err != nil {
					return nil, err
				}
			}
			if bugs.forgetApplied {
				s.disk.state.Applied = map[uint64]bool{}
			} else {
				// Always: the storage's first index may be behind its
				// snapshot (CreateSnapshot does not compact).
				cfg.Applied = s.disk.applied
			}
			rn, err := raft.NewRawNode(cfg)
			if err != nil {
				return nil, err
			}
			if last, _ := env.Storage.LastIndex(); last == 0 {
				if err := rn.Bootstrap(env.Peers); err != nil {
					return nil, err
				}
			}
			s.rn = rn
			return s, nil
		},
		Model: counterModel,
		NextOp: func(r *rand.Rand) any {
			key := []string{"a", "b", "c"}[r.IntN(3)]
			if r.IntN(2) == 0 {
				return counterInput{Key: key}
			}
			return counterInput{Key: key, Delta: 1 + r.IntN(5)}
		},
		Unanswered: func(input any) (any, bool) {
			return counterUnknown, input.(counterInput).Delta != 0
		},
	}
}

func (s *counterServer) RawNode() *raft.RawNode { return s.rn }

func (s *counterServer) Storage() raft.Storage { return s.env.Storage }

func (s *counterServer) Submit(op rafttest.Op) {
	in := op.Input.(counterInput)
	if in.Delta == 0 && s.bugs.localReads {
		op.Done(s.disk.state.Counters[in.Key])
		return
	}
	if in.Delta == 0 {
		ctx := fmt.Sprint("read ", op.ID)
		s.reads[ctx] = &counterRead{done: op.Done, key: in.Key}
		s.rn.ReadIndex([]byte(ctx))
		return
	}
	data, err := json.Marshal(counterEntry{ID: op.ID, Key: in.Key, Delta: in.Delta})
	if err != nil {
		panic(err)
	}
	s.waiting[op.ID] = op.Done
	_ = s.rn.Propose(data)
}

func (s *counterServer) HandleReady(rd raft.Ready) error {
	hs := rd.HardState
	if s.bugs.skipHardState {
		hs = pb.HardState{}
	}
	if s.bugs.unsyncedCommit {
		if !raft.IsEmptyHardState(hs) {
			s.unsynced, hs = hs, pb.HardState{}
		}
		if rd.MustSync {
			s.unsynced, hs = pb.HardState{}, s.unsynced
		}
	}
	ents := rd.Entries
	if s.bugs.keepConflicting && len(ents) > 0 {
		last, _ := s.env.Storage.LastIndex()
		ents = ents[min(len(ents), int(last+1-min(last+1, ents[0].Index))):]
	}
	if err := s.env.Storage.Save(hs, ents, rd.Snapshot); err != nil {
		return err
	}
	s.env.Send(rd.Messages...)
	if !raft.IsEmptySnap(rd.Snapshot) {
		s.disk.state = counterState{}
		if err := json.Unmarshal(rd.Snapshot.Data, &s.disk.state); err != nil {
			return err
		}
		s.disk.applied, s.disk.conf = rd.Snapshot.Metadata.Index, rd.Snapshot.Metadata.ConfState
	}
	for _, e := range rd.CommittedEntries {
		if err := s.apply(e); err != nil {
			return err
		}
	}
	for _, rs := range rd.ReadStates {
		if r := s.reads[string(rs.RequestCtx)]; r != nil {
			r.index = rs.Index
		}
	}
	// In the order of the contexts, not the map's: a run must replay.
	for _, ctx := range slices.Sorted(maps.Keys(s.reads)) {
		if r := s.reads[ctx]; r.index != 0 && s.disk.applied >= r.index {
			r.done(s.disk.state.Counters[r.key])
			delete(s.reads, ctx)
		}
	}
	if !s.bugs.skipAdvance {
		s.rn.Advance(rd)
	}
	return s.maybeCompact()
}

// maybeCompact snapshots the counter every counterCompactEvery entries and
// compacts the log behind it, so that lagging nodes get snapshots.
func (s *counterServer) maybeCompact() error {
	snap, err := s.env.Storage.Snapshot()
	if err != nil || s.disk.applied < snap.Metadata.Index+counterCompactEvery {
		return err
	}
	if _, err := s.env.Storage.CreateSnapshot(s.disk.applied, &s.disk.conf, s.disk.state.encode()); err != nil {
		return err
	}
	return s.env.Storage.Compact(s.disk.applied - 2)
}

func (s *counterServer) apply(e pb.Entry) error {
	defer func() { s.disk.applied = e.Index }()
	if cc, err := pb.UnmarshalConfChange(e); err == nil {
		s.disk.conf = *s.rn.ApplyConfChange(cc)
		return nil
	}
	if len(e.Data) == 0 {
		return nil
	}
	var ce counterEntry
	if err := json.Unmarshal(e.Data, &ce); err != nil {
		return fmt.Errorf("entry %d: %v", e.Index, err)
	}
	if s.disk.state.Applied[ce.ID] && !s.bugs.applyDuplicates {
		return nil // a duplicate of a proposal
	}
	s.disk.state.Applied[ce.ID] = true
	s.disk.state.Counters[ce.Key] += ce.Delta
	if done := s.waiting[ce.ID]; done != nil {
		done(s.disk.state.Counters[ce.Key])
		delete(s.waiting, ce.ID)
	}
	return nil
}

// A correct server passes: additions through the log, reads through
// ReadIndex, a durable state machine restarted from its applied index.
func TestRunCorrectServer(t *testing.T) {
	rafttest.Run(t, counterConfig(counterBugs{}))
}

// A server that syncs only the Readys with MustSync passes: the commit
// index a crash takes back to the last synced one is learned again.
func TestRunAcceptsAnUnsyncedCommitIndex(t *testing.T) {
	rafttest.Run(t, counterConfig(counterBugs{unsyncedCommit: true}))
}

// The example's map server passes, with the built-in KVModel, on three
// keys.
func TestRunMapServer(t *testing.T) {
	rafttest.Run(t, mapChaosConfig(startMap))
}

// mapChaosConfig runs the servers start starts with clients that read and
// write three keys.
func mapChaosConfig(start func(*rafttest.ServerEnv) (rafttest.Server, error)) rafttest.ChaosConfig {
	return rafttest.ChaosConfig{
		Start: start,
		Model: rafttest.KVModel(),
		NextOp: func(r *rand.Rand) any {
			key := fmt.Sprint("k", r.IntN(3))
			if r.IntN(2) == 0 {
				return rafttest.KVInput{Op: rafttest.KVGet, Key: key}
			}
			return rafttest.KVInput{Op: rafttest.KVPut, Key: key, Value: fmt.Sprint(r.Uint32())}
		},
		Unanswered: rafttest.KVUnanswered,
	}
}

// Each broken server is caught: some seed out of the first 20 fails, and
// the failure names what broke.
func TestRunCatchesBrokenServers(t *testing.T) {
	for _, tt := range []struct {
		name string
		bugs counterBugs
		want string // in the first failing seed's report
		// orInvariant: or the core's invariant panic, with that tag.
		orInvariant bool
	}{
		{name: "applies entries twice after a restart", bugs: counterBugs{forgetApplied: true}, want: "not linearizable"},
		{name: "answers reads without ReadIndex", bugs: counterBugs{localReads: true}, want: "not linearizable"},
		{name: "does not persist its HardState", bugs: counterBugs{skipHardState: true}, want: "restarted at term"},
		{name: "never calls Advance", bugs: counterBugs{skipAdvance: true}, want: "without calling Advance"},
		{name: "applies a duplicated proposal twice", bugs: counterBugs{applyDuplicates: true}, want: "not linearizable"},
		// Built with the invariants tag, the core's own check of what
		// storage holds may stop the node first, naming the invariant.
		{name: "does not replace conflicting entries", bugs: counterBugs{keepConflicting: true}, want: "at committed index", orInvariant: true},
		{name: "loses acknowledged entries at a restart", bugs: counterBugs{loseTail: true}, want: "but it had acknowledged entries up to"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := counterConfig(tt.bugs)
			caught := 0
			var first *rafttest.ChaosResult
			for seed := uint64(1); seed <= 20; seed++ {
				res := rafttest.RunChaos(cfg, seed)
				if res.Failed() {
					caught++
					if first == nil {
						first = res
					}
				}
			}
			if first == nil {
				t.Fatalf("no seed out of 20 caught it")
			}
			rep := first.Report()
			named := strings.Contains(rep, tt.want) || (tt.orInvariant && invariants.Enabled && strings.Contains(rep, "raft: invariant:"))
			if !strings.Contains(rep, fmt.Sprintf("seed %d failed", first.Seed)) || !named {
				t.Fatalf("the report does not say %q with its seed:\n%s", tt.want, rep)
			}
			t.Logf("%d of 20 seeds caught it; seed %d: %s", caught, first.Seed, strings.Join(first.Violations, "; "))
		})
	}
}

// With NoDuplicates the network delivers no message twice, so a server
// whose transport never does may apply a proposal each time it is
// committed.
func TestRunNoDuplicates(t *testing.T) {
	cfg := counterConfig(counterBugs{applyDuplicates: true})
	cfg.NoDuplicates = true
	for seed := uint64(1); seed <= 20; seed++ {
		if res := rafttest.RunChaos(cfg, seed); res.Failed() || res.Faults.DupRate != 0 {
			t.Fatalf("dup rate %v: %s", res.Faults.DupRate, res.Report())
		}
	}
}

// A one-node cluster runs too: crashes and restarts, no partitions.
func TestRunOneNode(t *testing.T) {
	cfg := counterConfig(counterBugs{})
	cfg.Nodes = 1
	rafttest.Run(t, cfg)
}

// fatalTB records Run's failure in place of a real test.
type fatalTB struct {
	testing.TB
	name   string
	failed string
}

func (f *fatalTB) Helper()             {}
func (f *fatalTB) Name() string        { return f.name }
func (f *fatalTB) Log(args ...any)     {}
func (f *fatalTB) Logf(string, ...any) {}
func (f *fatalTB) Fatalf(s string, args ...any) {
	f.Fatal(fmt.Sprintf(s, args...))
}
func (f *fatalTB) Fatal(args ...any) {
	f.failed = fmt.Sprint(args...)
	runtime.Goexit()
}

// runAside runs Run on tb in a goroutine of its own, which tb's Fatal
// ends.
func runAside(tb testing.TB, cfg rafttest.ChaosConfig) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		rafttest.Run(tb, cfg)
	}()
	<-done
}

// Run fails the test on a broken server with the seed, the command that
// replays it and the path of the run's picture, an HTML page that shows
// the nodes' timelines and the clients' operations.
func TestRunReportsReplayAndPicture(t *testing.T) {
	tb := &fatalTB{name: "TestMyServer/stale_reads"}
	runAside(tb, counterConfig(counterBugs{localReads: true}))
	if tb.failed == "" {
		t.Fatal("Run passed a server that answers reads from its own state")
	}
	replay := regexp.MustCompile(`replay: cd \S+/rafttest && go test -run '\^TestMyServer/stale_reads\$' -rafttest.seed=(\d+) -v`)
	if !replay.MatchString(tb.failed) {
		t.Fatalf("no replay command in the report:\n%s", tb.failed)
	}
	m := regexp.MustCompile(`picture of the run: (\S+\.html)`).FindStringSubmatch(tb.failed)
	if m == nil {
		t.Fatalf("no picture in the report:\n%s", tb.failed)
	}
	defer os.RemoveAll(filepath.Dir(m[1]))
	html, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	checkPicture(t, string(html), 3)
}

// checkPicture checks the structure of a run's HTML picture: a page with
// porcupine's history and the timeline rows of every node and of the
// network.
func checkPicture(t *testing.T, html string, nodes int) {
	t.Helper()
	for _, want := range []string{"<html", "</html>", `"Tag":"network"`, "Leader t", "get(", "add("} {
		if !strings.Contains(html, want) {
			t.Errorf("the picture lacks %q", want)
		}
	}
	for id := 1; id <= nodes; id++ {
		for _, want := range []string{fmt.Sprintf(`"Tag":"node %d"`, id), fmt.Sprintf(`"Tag":"node %d log"`, id)} {
			if !strings.Contains(html, want) {
				t.Errorf("the picture lacks node %d's row (%s)", id, want)
			}
		}
	}
	if !regexp.MustCompile(`"Tag":"messages","Start":\d+,"End":\d+,"Description":"\d+/\d+ lost"`).MatchString(html) {
		t.Error("the picture lacks the row of messages")
	}
}

// WriteHTML renders a known run: seed 1 of the correct counter server.
func TestChaosResultWriteHTML(t *testing.T) {
	res := rafttest.RunChaos(counterConfig(counterBugs{}), 1)
	if res.Failed() {
		t.Fatal(res.Report())
	}
	var b strings.Builder
	if err := res.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	checkPicture(t, b.String(), res.Faults.Nodes)
	if !strings.Contains(b.String(), `"Description":"down"`) && !strings.Contains(strings.Join(res.Events, "\n"), "crashed") {
		return
	}
	if !strings.Contains(b.String(), `"Description":"down"`) {
		t.Error("a node crashed, and the picture does not show it down")
	}
}

// The same configuration and seed replay the same run.
func TestRunChaosDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		a, b := rafttest.RunChaos(counterConfig(counterBugs{}), seed), rafttest.RunChaos(counterConfig(counterBugs{}), seed)
		if strings.Join(a.Events, "\n") != strings.Join(b.Events, "\n") || a.Ops != b.Ops || a.Ticks != b.Ticks {
			t.Fatalf("seed %d ran differently twice:\n%s\n---\n%s", seed, strings.Join(a.Events, "\n"), strings.Join(b.Events, "\n"))
		}
	}
}

// A server may not send as another node.
func TestRunChaosChecksSender(t *testing.T) {
	cfg := counterConfig(counterBugs{})
	start := cfg.Start
	cfg.Start = func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		s, err := start(env)
		return forger{s, env}, err
	}
	res := rafttest.RunChaos(cfg, 1)
	if !strings.Contains(strings.Join(res.Violations, "\n"), "sent a message from") {
		t.Fatalf("a forged sender went unnoticed:\n%s", res.Report())
	}
}

// forger sends its messages as from the next node.
type forger struct {
	rafttest.Server
	env *rafttest.ServerEnv
}

func (f forger) HandleReady(rd raft.Ready) error {
	for i := range rd.Messages {
		rd.Messages[i].From = rd.Messages[i].From%uint64(len(f.env.Peers)) + 1
	}
	return f.Server.HandleReady(rd)
}

// A server that panics is reported like any other violation, with the
// seed, instead of crashing the test binary.
func TestRunChaosReportsPanic(t *testing.T) {
	cfg := counterConfig(counterBugs{})
	start := cfg.Start
	cfg.Start = func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		s, err := start(env)
		return panicker{s}, err
	}
	res := rafttest.RunChaos(cfg, 1)
	if !res.Failed() || !strings.Contains(res.Report(), "panic: the state machine is broken") {
		t.Fatalf("a panicking server went unreported:\n%s", res.Report())
	}
}

// panicker panics on its first committed entry.
type panicker struct{ rafttest.Server }

func (p panicker) HandleReady(rd raft.Ready) error {
	if len(rd.CommittedEntries) > 0 {
		panic("the state machine is broken")
	}
	return p.Server.HandleReady(rd)
}

// -rafttest.seed runs that seed alone and logs its events.
func TestRunSeedFlag(t *testing.T) {
	if err := flag.Set("rafttest.seed", "7"); err != nil {
		t.Fatal(err)
	}
	defer flag.Set("rafttest.seed", "0")
	var seeds []uint64
	cfg := counterConfig(counterBugs{})
	start := cfg.Start
	cfg.Start = func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		if env.ID == 1 && env.Restarts == 0 {
			seeds = append(seeds, 0)
		}
		return start(env)
	}
	tb := &logTB{fatalTB: fatalTB{name: "TestX"}}
	runAside(tb, cfg)
	if len(seeds) != 2 { // the seed, and again to check that it replays
		t.Fatalf("-rafttest.seed=7 made %d runs, not 2", len(seeds))
	}
	if tb.logs == 0 || tb.failed != "" {
		t.Fatalf("logged %d events, failed %q", tb.logs, tb.failed)
	}
}

// logTB counts Log calls.
type logTB struct {
	fatalTB
	logs int
}

func (l *logTB) Log(args ...any) { l.logs++ }

// A server that is an io.Closer is closed at each of its crashes.
func TestRunChaosClosesCrashedServers(t *testing.T) {
	cfg := counterConfig(counterBugs{})
	start := cfg.Start
	closed := 0
	cfg.Start = func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		s, err := start(env)
		return closer{s, &closed}, err
	}
	res := rafttest.RunChaos(cfg, 1)
	crashes := strings.Count(strings.Join(res.Events, "\n"), "crashed")
	if res.Failed() || crashes == 0 || closed < crashes {
		t.Fatalf("%d crashes in the last events, %d closes (failed %v)", crashes, closed, res.Failed())
	}
}

type closer struct {
	rafttest.Server
	closed *int
}

func (c closer) Close() error {
	*c.closed++
	return nil
}

// A server whose runs do not replay (its RawNode draws its election
// timeouts from the global source) fails Run at once.
func TestRunRequiresReplay(t *testing.T) {
	cfg := counterConfig(counterBugs{})
	cfg.Start = func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		c := env.Config()
		c.RandomSource = nil
		rn, err := raft.NewRawNode(c)
		if last, _ := env.Storage.LastIndex(); err == nil && last == 0 {
			err = rn.Bootstrap(env.Peers)
		}
		return &mapServer{rn: rn, env: env, data: map[string]string{}, applied: map[uint64]any{}, waiting: map[uint64]func(any){}}, err
	}
	cfg.Model, cfg.NextOp, cfg.Unanswered = rafttest.KVModel(), func(r *rand.Rand) any { return rafttest.KVInput{Op: rafttest.KVGet, Key: "x"} }, rafttest.KVUnanswered
	tb := &fatalTB{name: "TestX"}
	runAside(tb, cfg)
	if !strings.Contains(tb.failed, "ran differently twice") {
		t.Fatalf("a run that does not replay went unnoticed: %q", tb.failed)
	}
}

// snapshotWatcher is a server that measures how long, while it leads, a
// follower stays in StateSnapshot: until its snapshot is reported sent
// or lost, or SnapshotTimeout.
type snapshotWatcher struct {
	rafttest.StorageServer
	env     *rafttest.ServerEnv
	since   map[uint64]int64
	longest *int64
}

func (w *snapshotWatcher) HandleReady(rd raft.Ready) error {
	now, st := w.env.NowForTest(), w.RawNode().Status()
	for id, pr := range st.Progress {
		if pr.State != tracker.StateSnapshot {
			delete(w.since, id)
			continue
		}
		if _, ok := w.since[id]; !ok {
			w.since[id] = now
		}
		*w.longest = max(*w.longest, now-w.since[id])
	}
	if st.RaftState != raft.StateLeader {
		clear(w.since)
	}
	return w.StorageServer.HandleReady(rd)
}

// With ForgetSnapshotReports the network does not tell a leader that its
// snapshot was lost, so the follower stays in StateSnapshot (until the
// leadership changes, or the default SnapshotTimeout of 500 ticks) for
// longer than a message takes; when every report comes, no follower stays
// there for more than a few ticks.
func TestRunForgetSnapshotReports(t *testing.T) {
	for _, tt := range []struct {
		forget   float64
		stuckFor func(ticks int64) bool
	}{
		{forget: 1, stuckFor: func(ticks int64) bool { return ticks >= 10 }},
		{forget: 0, stuckFor: func(ticks int64) bool { return ticks <= 4 }},
	} {
		cfg := counterConfig(counterBugs{})
		cfg.ForgetSnapshotReports = tt.forget
		var longest int64
		start := cfg.Start
		cfg.Start = func(env *rafttest.ServerEnv) (rafttest.Server, error) {
			srv, err := start(env)
			if err != nil {
				return nil, err
			}
			return &snapshotWatcher{StorageServer: srv.(rafttest.StorageServer), env: env, since: map[uint64]int64{}, longest: &longest}, nil
		}
		// Thirty seeds: the leader isolations of some seeds change the
		// leadership before a forgotten report shows.
		for seed := uint64(1); seed <= 30; seed++ {
			if res := rafttest.RunChaos(cfg, seed); res.Failed() {
				t.Fatal(res.Report())
			}
		}
		if !tt.stuckFor(longest) {
			t.Fatalf("forget=%v: a follower stayed in StateSnapshot for up to %d ticks", tt.forget, longest)
		}
		t.Logf("forget=%v: a follower stayed in StateSnapshot for up to %d ticks", tt.forget, longest)
	}
}

// With Retry a client submits an operation that timed out again, with
// the same ID and client, until it is answered: every operation of a
// server that applies each ID once is answered.
func TestRunRetry(t *testing.T) {
	cfg := mapChaosConfig(startMap)
	cfg.Retry = true
	client := map[uint64]int{} // operation ID -> its client
	clients := map[int]bool{}
	resubmitted := 0
	start := cfg.Start
	cfg.Start = func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		srv, err := start(env)
		return submitWatcher{srv, func(op rafttest.Op) {
			if c, ok := client[op.ID]; ok {
				resubmitted++
				if c != op.Client {
					t.Fatalf("operation %d submitted again by client %d, first by %d", op.ID, op.Client, c)
				}
			}
			client[op.ID] = op.Client
			clients[op.Client] = true
		}}, err
	}
	for seed := uint64(1); seed <= 5; seed++ {
		clear(client)
		res := rafttest.RunChaos(cfg, seed)
		if res.Failed() {
			t.Fatal(res.Report())
		}
		if res.Answered != res.Ops {
			t.Fatalf("seed %d: %d of %d operations answered", seed, res.Answered, res.Ops)
		}
	}
	if resubmitted == 0 || len(clients) != 3 {
		t.Fatalf("%d operations submitted again, by clients %v (of 3)", resubmitted, clients)
	}
}

// submitWatcher is a server that shows each operation submitted to
// watch.
type submitWatcher struct {
	rafttest.Server
	watch func(rafttest.Op)
}

func (w submitWatcher) Submit(op rafttest.Op) {
	w.watch(op)
	w.Server.Submit(op)
}

// ServerEnv.Rand replays with the seed and differs between nodes and
// incarnations.
func TestServerEnvRand(t *testing.T) {
	draws := func() map[string]uint64 {
		got := map[string]uint64{}
		cfg := counterConfig(counterBugs{})
		start := cfg.Start
		cfg.Start = func(env *rafttest.ServerEnv) (rafttest.Server, error) {
			got[fmt.Sprintf("node %d restart %d", env.ID, env.Restarts)] = env.Rand.Uint64()
			return start(env)
		}
		if res := rafttest.RunChaos(cfg, 3); res.Failed() {
			t.Fatal(res.Report())
		}
		return got
	}
	a, b := draws(), draws()
	if !maps.Equal(a, b) {
		t.Fatalf("the same seed drew differently: %v, then %v", a, b)
	}
	seen := map[uint64]string{}
	for who, v := range a {
		if other, ok := seen[v]; ok {
			t.Fatalf("%s and %s drew the same", who, other)
		}
		seen[v] = who
	}
	if len(a) <= 3 {
		t.Fatalf("no restart on seed 3: %v", a)
	}
}

// reportingMap is a mapServer that proposes with ProposeWithResult and
// tells Run where each proposal went (ServerEnv.Appended), skew indexes
// off.
type reportingMap struct {
	*mapServer
	skew uint64
}

func (s reportingMap) Submit(op rafttest.Op) {
	data, _ := json.Marshal(mapEntry{ID: op.ID, In: op.Input.(rafttest.KVInput)})
	s.waiting[op.ID] = op.Done
	if res, err := s.rn.ProposeWithResult(data); err == nil && !res.Forwarded {
		s.env.Appended(res.Index+s.skew, res.Term, data)
	}
}

// Where a server says its proposals went (ServerEnv.Appended) is checked
// against what is committed there: true reports pass, reports one index
// off are caught.
func TestRunChecksAppendedReports(t *testing.T) {
	for _, tt := range []struct {
		skew uint64
		want string // "": passes
	}{
		{skew: 0},
		{skew: 1, want: "appending"},
	} {
		cfg := mapChaosConfig(func(env *rafttest.ServerEnv) (rafttest.Server, error) {
			srv, err := startMap(env)
			return reportingMap{srv.(*mapServer), tt.skew}, err
		})
		caught := false
		for seed := uint64(1); seed <= 5 && !caught; seed++ {
			res := rafttest.RunChaos(cfg, seed)
			switch rep := res.Report(); {
			case res.Failed() && (tt.want == "" || !strings.Contains(rep, tt.want)):
				t.Fatalf("skew %d: %s", tt.skew, rep)
			case res.Failed():
				caught = true
				t.Logf("skew %d caught: %s", tt.skew, strings.Join(res.Violations, "; "))
			}
		}
		if tt.want != "" && !caught {
			t.Fatalf("skew %d: 5 seeds passed", tt.skew)
		}
	}
}
