package rafttest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/rafttest"
)

// asyncMapServer is mapServer with AsyncStorageWrites: its append thread
// persists, then delivers the write's responses; its apply thread applies,
// then delivers its responses. Both are ServerEnv.Later queues.
type asyncMapServer struct {
	mapServer
	bugs asyncBugs
	// waited, if set, is told how many ticks each function handed to
	// ServerEnv.Later at tick handed waited.
	waited func(queue string, handed, wait int64)
}

// asyncBugs are mistakes an asyncMapServer can be told to make.
type asyncBugs struct {
	// ackEarly lets the acknowledgements and votes leave as soon as the
	// Ready is handled, before the write that they promise.
	ackEarly bool
	// skipHardState writes the entries but not the term, vote and commit.
	skipHardState bool
	// voteEarly lets its vote requests leave as soon as the Ready is
	// handled, before the write of the term and vote they carry.
	voteEarly bool
}

func startAsyncMap(bugs asyncBugs) func(*rafttest.ServerEnv) (rafttest.Server, error) {
	return func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		cfg := env.Config()
		cfg.AsyncStorageWrites = true
		rn, err := raft.NewRawNode(cfg) // Applied 0: the map is rebuilt from the log
		if last, _ := env.Storage.LastIndex(); err == nil && last == 0 {
			err = rn.Bootstrap(env.Peers)
		}
		s := &asyncMapServer{bugs: bugs}
		s.mapServer = mapServer{rn: rn, env: env, data: map[string]string{}, applied: map[uint64]any{}, waiting: map[uint64]func(any){}}
		return s, err
	}
}

func (s *asyncMapServer) HandleReady(rd raft.Ready) error {
	for _, m := range rd.Messages {
		switch m.To {
		case raft.LocalAppendThread:
			resps := m.Responses
			if s.bugs.ackEarly {
				s.deliver(peersOnly(resps))
				resps = selfOnly(resps, s.env.ID)
			}
			if s.bugs.voteEarly {
				var votes []pb.Message
				votes, resps = splitVoteRequests(resps)
				s.deliver(votes)
			}
			s.later("append", func() {
				hs := pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
				if s.bugs.skipHardState {
					hs = pb.HardState{}
				}
				var snap pb.Snapshot
				if m.Snapshot != nil {
					snap = *m.Snapshot
				}
				if err := s.env.Storage.Save(hs, m.Entries, snap); err != nil {
					panic(fmt.Sprintf("append thread: %v", err))
				}
				s.deliver(resps)
			})
		case raft.LocalApplyThread:
			s.later("apply", func() {
				s.apply(m.Entries)
				s.deliver(m.Responses)
			})
		default:
			s.env.Send(m)
		}
	}
	return nil
}

// later hands f to the queue, telling s.waited how long it waited.
func (s *asyncMapServer) later(queue string, f func()) {
	if s.waited == nil {
		s.env.Later(queue, f)
		return
	}
	handed := s.env.NowForTest()
	s.env.Later(queue, func() {
		s.waited(queue, handed, s.env.NowForTest()-handed)
		f()
	})
}

// splitVoteRequests splits ms into the vote requests and the others.
func splitVoteRequests(ms []pb.Message) (votes, others []pb.Message) {
	for _, m := range ms {
		if m.Type == pb.MsgVote || m.Type == pb.MsgPreVote {
			votes = append(votes, m)
		} else {
			others = append(others, m)
		}
	}
	return votes, others
}

// Storage lets Run check the stored log.
func (s *asyncMapServer) Storage() raft.Storage { return s.env.Storage }

// deliver steps the responses addressed to this node and sends the others.
func (s *asyncMapServer) deliver(resps []pb.Message) {
	for _, r := range resps {
		if r.To == s.env.ID {
			_ = s.rn.Step(r)
		} else {
			s.env.Send(r)
		}
	}
}

func peersOnly(ms []pb.Message) (out []pb.Message) {
	for _, m := range ms {
		if m.To != m.From && m.From != raft.LocalAppendThread {
			out = append(out, m)
		}
	}
	return out
}

func selfOnly(ms []pb.Message, id uint64) (out []pb.Message) {
	for _, m := range ms {
		if m.To == id {
			out = append(out, m)
		}
	}
	return out
}

func asyncMapConfig(bugs asyncBugs) rafttest.ChaosConfig {
	return mapChaosConfig(startAsyncMap(bugs))
}

// A server with AsyncStorageWrites, its storage threads run as
// ServerEnv.Later queues, passes.
func TestRunAsyncStorageServer(t *testing.T) {
	rafttest.Run(t, asyncMapConfig(asyncBugs{}))
}

// Broken ones are caught. One that lets its acknowledgements and votes
// leave before the write they promise comes back from a crash without
// entries it acknowledged; one that does not write its HardState comes
// back in an earlier term than it acknowledged entries in: its
// acknowledgements, not its Readys, show what its append thread had to
// make durable.
func TestRunCatchesBrokenAsyncServers(t *testing.T) {
	for _, tt := range []struct {
		name string
		bugs asyncBugs
		want string
	}{
		{"acknowledges before the write", asyncBugs{ackEarly: true}, "but it had acknowledged entries up to"},
		{"does not persist its HardState", asyncBugs{skipHardState: true}, "but it had acknowledged or voted in term"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := asyncMapConfig(tt.bugs)
			for seed := uint64(1); seed <= 20; seed++ {
				res := rafttest.RunChaos(cfg, seed)
				if !res.Failed() {
					continue
				}
				report := strings.Join(res.Violations, "; ")
				if !strings.Contains(report, tt.want) {
					t.Fatalf("seed %d failed without %q: %s", seed, tt.want, report)
				}
				return
			}
			t.Fatal("20 seeds passed")
		})
	}
}

// Later and Send called from Start, before the server runs, do nothing
// (as documented): the work of an incarnation that is not running yet is
// not run.
func TestLaterFromStartIsDropped(t *testing.T) {
	cfg := asyncMapConfig(asyncBugs{})
	start := cfg.Start
	ran := 0
	cfg.Start = func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		env.Later("append", func() { ran++ })
		return start(env)
	}
	if res := rafttest.RunChaos(cfg, 1); res.Failed() {
		t.Fatal(res.Report())
	}
	if ran != 0 {
		t.Fatalf("%d functions handed to Later from Start ran", ran)
	}
}

// The functions of a queue with QueueFaults wait as those say in the
// chaos phase: up to MaxDelay ticks, slowDiskTicks (3) or more on the
// seed's slow node, StallTicks more now and then.
func TestRunQueueFaults(t *testing.T) {
	cfg := asyncMapConfig(asyncBugs{})
	cfg.Queues = map[string]rafttest.QueueFaults{
		"append": {MaxDelay: 2, SlowDisk: true},
		"apply":  {MaxDelay: 1, StallRate: 0.05, StallTicks: 40},
	}
	type wait struct {
		node  uint64
		queue string
		ticks int64
	}
	var waits []wait
	start := cfg.Start
	cfg.Start = func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		srv, err := start(env)
		srv.(*asyncMapServer).waited = func(queue string, handed, ticks int64) {
			if handed < 300 { // the chaos phase (ChaosTicks)
				waits = append(waits, wait{env.ID, queue, ticks})
			}
		}
		return srv, err
	}
	for seed := uint64(1); seed <= 10; seed++ {
		waits = nil
		res := rafttest.RunChaos(cfg, seed)
		if res.Failed() {
			t.Fatal(res.Report())
		}
		if res.Faults.SlowDisk == 0 {
			continue // no slow node on this seed
		}
		slow, stalls := 0, 0
		for _, w := range waits {
			switch {
			case w.queue == "append" && w.node == res.Faults.SlowDisk:
				if w.ticks < 3 || w.ticks > 2+2*3 {
					t.Fatalf("seed %d: a write on the slow disk of node %d waited %d ticks, not 3 to 8", seed, w.node, w.ticks)
				}
				slow++
			case w.queue == "append":
				if w.ticks > 2 {
					t.Fatalf("seed %d: a write on node %d (not the slow one, %d) waited %d ticks, more than MaxDelay", seed, w.node, res.Faults.SlowDisk, w.ticks)
				}
			case w.ticks >= 40:
				stalls++
			}
		}
		if slow == 0 || stalls == 0 {
			t.Fatalf("seed %d: %d writes on the slow disk, %d stalled applies", seed, slow, stalls)
		}
		t.Logf("seed %d: slow node %d wrote %d times; %d applies stalled", seed, res.Faults.SlowDisk, slow, stalls)
		return
	}
	t.Fatal("no seed chose a slow node")
}

// With FreshLeaderCrashRate a new leader whose first writes are pending
// dies at once: a correct server passes, and one whose vote requests leave
// before its term and vote are durable is caught, coming back in an
// earlier term than it campaigned in (without such crashes, only 4 of the
// first 40 seeds of five nodes catch it).
func TestRunFreshLeaderCrashes(t *testing.T) {
	for _, tt := range []struct {
		name string
		bugs asyncBugs
		want string // "": passes
	}{
		{name: "correct", bugs: asyncBugs{}},
		{name: "vote requests before the write", bugs: asyncBugs{voteEarly: true}, want: "but it had acknowledged or voted in term"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := asyncMapConfig(tt.bugs)
			cfg.Nodes = 5
			cfg.Queues = map[string]rafttest.QueueFaults{"append": {MaxDelay: 3}}
			cfg.FreshLeaderCrashRate = 0.5
			for seed := uint64(1); seed <= 10; seed++ {
				res := rafttest.RunChaos(cfg, seed)
				switch {
				case tt.want == "" && res.Failed():
					t.Fatal(res.Report())
				case tt.want != "" && res.Failed():
					if rep := res.Report(); !strings.Contains(rep, tt.want) || !strings.Contains(rep, "leadercrash=0.50") {
						t.Fatalf("the report does not say %q with the crash rate:\n%s", tt.want, rep)
					}
					t.Logf("seed %d caught it: %s", seed, strings.Join(res.Violations, "; "))
					return
				}
			}
			if tt.want != "" {
				t.Fatal("10 seeds passed")
			}
		})
	}
}
