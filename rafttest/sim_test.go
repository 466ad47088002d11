package rafttest

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/raftcore/raft"
)

var (
	seedFlag      = flag.Uint64("seed", 0, "TestSim: replay this one seed, printing its events")
	simSeedsFlag  = flag.Int("sim.seeds", 0, "TestSim: number of seeds (default 300, 30 with -short)")
	soakFlag      = flag.Bool("soak", false, "run TestSimSoak")
	soakSeedsFlag = flag.Int("soak.seeds", 5000, "TestSimSoak: number of seeds")
	soakWALFlag   = flag.Bool("soak.wal", false, "TestSimSoak: run every node on a wal.Storage")
	soakPowerFlag = flag.Bool("soak.walpower", false, "TestSimSoak: run every node on a wal.Storage on a disk that loses unsynced writes at each crash")
	simLogFlag    = flag.Bool("sim.log", false, "TestSim with -seed: also print the nodes' own logs (to stderr)")
)

// simTotals sums up runs for the summary line.
type simTotals struct {
	seeds, ops, linearizable, violations int
	forwardedAppended, forwardedUnknown  int
}

func (s *simTotals) add(r *SimResult) {
	s.seeds++
	s.ops += r.Ops
	if r.Linearizable {
		s.linearizable++
	}
	s.violations += len(r.Violations)
	s.forwardedAppended += r.ForwardedAppended
	s.forwardedUnknown += r.ForwardedUnknown
}

func (s simTotals) String() string {
	return fmt.Sprintf("sim: seeds=%d ops=%d linearizable=%d/%d violations=%d forwarded: appended=%d unknown=%d",
		s.seeds, s.ops, s.linearizable, s.seeds, s.violations, s.forwardedAppended, s.forwardedUnknown)
}

// TestSim runs the chaos simulation over a range of seeds, each with its
// own configuration, checking every invariant at every step and the
// clients' history for linearizability. Replay one seed with
// go test ./rafttest -run 'TestSim$' -seed=N -v.
func TestSim(t *testing.T) {
	if *seedFlag != 0 {
		if *simLogFlag {
			simLogger = raft.NewSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
			defer func() { simLogger = raft.DiscardLogger }()
		}
		res := RunSim(RandomSimConfig(*seedFlag))
		for _, e := range res.Events {
			t.Log(e)
		}
		if res.Failed() {
			t.Fatal(res.Report())
		}
		t.Logf("%s: %d ops, %d completed, %d ticks", res.Config, res.Ops, res.Completed, res.Ticks)
		return
	}
	n := 300
	if testing.Short() {
		n = 30
	}
	if *simSeedsFlag > 0 {
		n = *simSeedsFlag
	}
	var tot simTotals
	for seed := uint64(1); seed <= uint64(n); seed++ {
		res := RunSim(RandomSimConfig(seed))
		tot.add(res)
		if res.Failed() {
			t.Fatal(res.Report())
		}
		if res.Completed != res.Ops {
			t.Fatalf("seed %d: %d of %d operations completed without a violation being reported", seed, res.Completed, res.Ops)
		}
	}
	if tot.ops < 10*n {
		t.Fatalf("too few operations to mean anything: %s", tot)
	}
	if tot.forwardedAppended == 0 {
		t.Fatalf("no follower reported where a forwarded proposal went: the check of those reports never ran: %s", tot)
	}
	t.Log(tot)
}

// TestSimSoak runs thousands of seeds (each seed picks its cluster size,
// PreVote, CheckQuorum, faults and limits) on every core (make soak).
func TestSimSoak(t *testing.T) {
	if !*soakFlag {
		t.Skip("soak runs with -soak (make soak)")
	}
	seeds := make(chan uint64)
	results := make(chan *SimResult)
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				cfg := RandomSimConfig(seed)
				if *soakWALFlag {
					cfg.WALDir = t.TempDir()
				}
				cfg.WALPowerLoss = *soakPowerFlag
				results <- RunSim(cfg)
				if cfg.WALDir != "" {
					os.RemoveAll(cfg.WALDir)
				}
			}
		}()
	}
	go func() {
		for seed := uint64(1); seed <= uint64(*soakSeedsFlag); seed++ {
			seeds <- 100000 + seed
		}
		close(seeds)
		wg.Wait()
		close(results)
	}()
	var tot simTotals
	var failed []*SimResult
	for r := range results {
		tot.add(r)
		if r.Failed() {
			failed = append(failed, r)
		}
	}
	fmt.Println(tot)
	for i, r := range failed {
		if i == 5 {
			t.Errorf("... and %d more failed seeds", len(failed)-5)
			break
		}
		t.Error(r.Report())
	}
}

// TestSimRegressionSeeds replays seeds that once found a bug, each with
// what it showed, so that the bug cannot come back unnoticed.
func TestSimRegressionSeeds(t *testing.T) {
	for _, tt := range []struct {
		name string
		seed uint64
	}{
		// AsyncStorageWrites: a follower got a second snapshot while the
		// first was queued for writing; the first one's write was
		// ignored as superseded, leaving the node's applied index below
		// its state machine's (which had installed it).
		{"async snapshot at 13 superseded by 22 while queued", 101248},
		{"async snapshot at 24 superseded by 32 while queued", 102313},
		{"async snapshot at 25 superseded by 30 while queued", 104417},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if res := RunSim(RandomSimConfig(tt.seed)); res.Failed() {
				t.Fatalf("%s(replay with -run 'TestSim$' -seed %d)", res.Report(), tt.seed)
			}
		})
	}
}

// TestSimOnWAL runs the simulation with every node on a wal.Storage: each
// restart recovers the node from its files, after snapshots, compactions
// and replaced suffixes written by real Raft traffic.
func TestSimOnWAL(t *testing.T) {
	runRestartingSeeds(t, 40, 5000, "restarts from disk", func(cfg *SimConfig) { cfg.WALDir = t.TempDir() })
}

// TestSimOnWALPowerLoss runs the simulation with every node's WAL on a
// simulated disk that keeps only what was synced: every crash is a power
// failure, losing the node's unsynced writes (the last perhaps torn), and
// the history must stay linearizable.
func TestSimOnWALPowerLoss(t *testing.T) {
	runRestartingSeeds(t, 30, 7000, "restarts after a power failure", func(cfg *SimConfig) { cfg.WALPowerLoss = true })
}

// runRestartingSeeds runs n seeds (8 with -short) from base+1, each
// configured by configure, fails on the first failed run, and requires at
// least one restart per seed on average, so that recovery is exercised.
func runRestartingSeeds(t *testing.T, n int, base uint64, what string, configure func(*SimConfig)) {
	t.Helper()
	if testing.Short() {
		n = 8
	}
	var tot simTotals
	restarts := 0
	for seed := uint64(1); seed <= uint64(n); seed++ {
		cfg := RandomSimConfig(base + seed)
		configure(&cfg)
		res := RunSim(cfg)
		tot.add(res)
		if res.Failed() {
			t.Fatal(res.Report())
		}
		for _, e := range res.Events {
			if strings.Contains(e, "restarted") {
				restarts++
			}
		}
	}
	if restarts < n {
		t.Fatalf("only %d %s in %d seeds: recovery was hardly exercised", restarts, what, n)
	}
	t.Logf("%s, %d %s", tot, restarts, what)
}

// The same seed replays the same run, network faults included.
func TestSimDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		a, b := RunSim(RandomSimConfig(seed)), RunSim(RandomSimConfig(seed))
		if len(a.Events) == 0 {
			t.Fatalf("seed %d: no events recorded", seed)
		}
		if strings.Join(a.Events, "\n") != strings.Join(b.Events, "\n") || a.Ops != b.Ops || a.Ticks != b.Ticks {
			t.Fatalf("seed %d ran differently twice:\n%s\n---\n%s", seed, strings.Join(a.Events, "\n"), strings.Join(b.Events, "\n"))
		}
	}
}

// TestSimSnapshotDuringApply runs seeds set up for a snapshot to arrive
// while a node still applies older entries: membership changes,
// frequent compaction, and servers that apply each Ready a few ticks
// after taking it (as beside raft.Node) or, with AsyncStorageWrites,
// install a snapshot only after the apply batches handed out before it.
// A conf change from those older entries applied on top of the
// snapshot's configuration shows as a node whose configuration no other
// node has (seed 200037 does, when ApplyConfChange takes such changes).
func TestSimSnapshotDuringApply(t *testing.T) {
	n := 40
	if testing.Short() {
		n = 10
	}
	var tot simTotals
	for seed := uint64(200001); seed <= uint64(200000+n); seed++ {
		cfg := RandomSimConfig(seed)
		cfg.CheckQuorum, cfg.ConfChangeRate, cfg.CompactEvery, cfg.SnapshotTimeout = true, 0.05, 5, 30
		if cfg.Async {
			cfg.SnapshotWaitsApply = true
		} else {
			cfg.HoldReadyRate, cfg.ApplyDelay = 1, 3
		}
		res := RunSim(cfg)
		tot.add(res)
		if res.Failed() {
			t.Fatalf("%s(replay with -run TestSimSnapshotDuringApply: the seed's configuration is changed as above)", res.Report())
		}
	}
	t.Log(tot)
}
