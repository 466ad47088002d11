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
}

// asyncBugs are mistakes an asyncMapServer can be told to make.
type asyncBugs struct {
	// ackEarly lets the acknowledgements and votes leave as soon as the
	// Ready is handled, before the write that they promise.
	ackEarly bool
	// skipHardState writes the entries but not the term, vote and commit.
	skipHardState bool
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
		s.mapServer = mapServer{rn: rn, env: env, data: map[string]string{}, applied: map[uint64]bool{}, waiting: map[uint64]func(any){}}
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
			s.env.Later("append", func() {
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
			s.env.Later("apply", func() {
				s.apply(m.Entries)
				s.deliver(m.Responses)
			})
		default:
			s.env.Send(m)
		}
	}
	return nil
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
