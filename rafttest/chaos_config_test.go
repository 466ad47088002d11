package rafttest_test

import (
	"flag"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/raftcore/raft/rafttest"
)

// ptrInputs is the map server for clients whose inputs are pointers.
type ptrInputs struct{ rafttest.Server }

func (p ptrInputs) Submit(op rafttest.Op) {
	op.Input = *op.Input.(*rafttest.KVInput)
	p.Server.Submit(op)
}

// A deterministic server whose operations' inputs are pointers replays:
// Run compares two runs' histories by the values, not the addresses.
func TestRunPointerInputs(t *testing.T) {
	cfg := mapChaosConfig(func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		s, err := startMap(env)
		return ptrInputs{s}, err
	})
	next := cfg.NextOp
	cfg.NextOp = func(r *rand.Rand) any { in := next(r).(rafttest.KVInput); return &in }
	cfg.Model.Partition = func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(*rafttest.KVInput).Key
			byKey[k] = append(byKey[k], op)
		}
		return slices.Collect(maps.Values(byKey))
	}
	step := cfg.Model.Step
	cfg.Model.Step = func(s, in, out any) (bool, any) { return step(s, *in.(*rafttest.KVInput), out) }
	cfg.Model.DescribeOperation = nil
	cfg.Unanswered = func(in any) (any, bool) { return rafttest.KVUnanswered(*in.(*rafttest.KVInput)) }
	cfg.Seeds = 1
	rafttest.Run(t, cfg)
}

// Negative counts and rates are refused with an error naming the field,
// before any run.
func TestRunRejectsNegativeConfig(t *testing.T) {
	for _, tt := range []struct {
		field string
		set   func(*rafttest.ChaosConfig)
	}{
		{"Seeds", func(c *rafttest.ChaosConfig) { c.Seeds = -1 }},
		{"Clients", func(c *rafttest.ChaosConfig) { c.Clients = -1 }},
		{"ChaosTicks", func(c *rafttest.ChaosConfig) { c.ChaosTicks = -5 }},
		{"LivenessTicks", func(c *rafttest.ChaosConfig) { c.LivenessTicks = -1 }},
		{"OpTimeout", func(c *rafttest.ChaosConfig) { c.OpTimeout = -20 }},
		{"Nodes", func(c *rafttest.ChaosConfig) { c.Nodes = -3 }},
		{"Spares", func(c *rafttest.ChaosConfig) { c.Spares = -1 }},
		{"ReconfigureRate", func(c *rafttest.ChaosConfig) { c.ReconfigureRate = -0.1 }},
		{"FreshLeaderCrashRate", func(c *rafttest.ChaosConfig) { c.FreshLeaderCrashRate = -1 }},
		{"ForgetSnapshotReports", func(c *rafttest.ChaosConfig) { c.ForgetSnapshotReports = -0.5 }},
		{"IsolateLeaderRate", func(c *rafttest.ChaosConfig) { c.IsolateLeaderRate = -0.01 }},
		{"Queues", func(c *rafttest.ChaosConfig) { c.Queues = map[string]rafttest.QueueFaults{"apply": {StallRate: -1}} }},
	} {
		t.Run(tt.field, func(t *testing.T) {
			// A server that answers everything at once, wrongly: a
			// configuration that ran no client would pass it.
			cfg := mapChaosConfig(rvAckAll)
			tt.set(&cfg)
			tb := &fatalTB{name: "TestX"}
			runAside(tb, cfg)
			if !strings.Contains(tb.failed, "rafttest: ChaosConfig."+tt.field) {
				t.Fatalf("Run did not refuse a negative %s: %q", tt.field, tb.failed)
			}
			if res := rafttest.RunChaos(cfg, 1); !strings.Contains(strings.Join(res.Violations, "\n"), "ChaosConfig."+tt.field) {
				t.Fatalf("RunChaos did not refuse a negative %s: %v", tt.field, res.Violations)
			}
		})
	}
}

// ackAll answers every operation at once with nothing found.
type ackAll struct{ rafttest.Server }

func (a ackAll) Submit(op rafttest.Op) { op.Done(rafttest.KVOutput{}) }

func rvAckAll(env *rafttest.ServerEnv) (rafttest.Server, error) {
	s, err := startMap(env)
	return ackAll{s}, err
}

// A replay (-rafttest.seed) logs every event of the run, from its first
// tick, not only the last ones a report shows.
func TestRunSeedFlagLogsEveryEvent(t *testing.T) {
	if err := flag.Set("rafttest.seed", "7"); err != nil {
		t.Fatal(err)
	}
	defer flag.Set("rafttest.seed", "0")
	cfg := counterConfig(counterBugs{})
	tb := &logTB{fatalTB: fatalTB{name: "TestX"}}
	runAside(tb, cfg)
	res := rafttest.RunChaos(cfg, 7)
	if len(res.Events) < 60 || !strings.HasPrefix(res.Events[0], "t=") {
		t.Fatalf("seed 7 has only %d events: no test of more", len(res.Events))
	}
	if tb.logs <= len(res.Events) || tb.failed != "" {
		t.Fatalf("logged %d events, the report keeps %d; failed %q", tb.logs, len(res.Events), tb.failed)
	}
}
