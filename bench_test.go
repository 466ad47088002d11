package raft

import (
	"runtime"
	"testing"

	pb "github.com/raftcore/raft/raftpb"
)

// benchNode is a node driven by a lean Ready loop for benchmarks: persist
// to MemoryStorage, collect messages, count applied entries, compact now
// and then so memory stays flat.
type benchNode struct {
	rn      *RawNode
	s       *MemoryStorage
	applied uint64
	// compacted is the index the storage was last compacted to.
	compacted uint64
	out       []pb.Message
}

func newBenchNode(tb testing.TB, id uint64, peers []Peer, opts ...func(*Config)) *benchNode {
	s := NewMemoryStorage()
	cfg := testConfig(id, s)
	cfg.MaxSizePerMsg = 1 << 20
	cfg.MaxInflightMsgs = 4096
	for _, o := range opts {
		o(cfg)
	}
	rn, err := NewRawNode(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := rn.Bootstrap(peers); err != nil {
		tb.Fatal(err)
	}
	return &benchNode{rn: rn, s: s}
}

// pump handles every pending Ready, appending outgoing messages to n.out.
func (n *benchNode) pump(tb testing.TB) bool {
	busy := false
	for n.rn.HasReady() {
		busy = true
		rd := n.rn.Ready()
		if err := n.s.Append(rd.Entries); err != nil {
			tb.Fatal(err)
		}
		if !IsEmptyHardState(rd.HardState) {
			_ = n.s.SetHardState(rd.HardState)
		}
		n.out = append(n.out, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			if e.Type == pb.EntryConfChange {
				cc, err := pb.UnmarshalConfChange(e)
				if err != nil {
					tb.Fatal(err)
				}
				n.rn.ApplyConfChange(cc)
			}
			n.applied = e.Index
		}
		n.rn.Advance(rd)
		if n.applied >= n.compacted+8192 {
			if err := n.s.Compact(n.applied); err != nil {
				tb.Fatal(err)
			}
			n.compacted = n.applied
		}
	}
	return busy
}

// benchCluster is a cluster of benchNodes on an in-memory network, run in
// one goroutine: messages are delivered as values, or marshaled and
// unmarshaled as a transport would (into one reused buffer on the sending
// side; the receiver gets a fresh message, which it may keep).
type benchCluster struct {
	nodes   []*benchNode // nodes[i] has ID i+1
	marshal bool
	buf     []byte
	data    []byte
}

// newBenchCluster builds a cluster of voters nodes whose node 1 leads.
func newBenchCluster(tb testing.TB, voters int, marshal bool, opts ...func(*Config)) *benchCluster {
	peers := make([]Peer, voters)
	for i := range peers {
		peers[i] = Peer{ID: uint64(i + 1)}
	}
	c := &benchCluster{marshal: marshal, data: make([]byte, 128)}
	for _, p := range peers {
		c.nodes = append(c.nodes, newBenchNode(tb, p.ID, peers, opts...))
	}
	c.settle(tb)
	if err := c.nodes[0].rn.Campaign(); err != nil {
		tb.Fatal(err)
	}
	c.settle(tb)
	if c.nodes[0].rn.BasicStatus().RaftState != StateLeader {
		tb.Fatal("node 1 did not become leader")
	}
	return c
}

// settle runs Ready loops and delivers messages until nothing moves.
func (c *benchCluster) settle(tb testing.TB) {
	for {
		busy := false
		for _, n := range c.nodes {
			if n.pump(tb) {
				busy = true
			}
		}
		for _, n := range c.nodes {
			msgs := n.out
			n.out = n.out[:0]
			for i := range msgs {
				busy = true
				m := msgs[i]
				if c.marshal {
					m = c.wire(tb, &msgs[i])
				}
				if err := c.nodes[m.To-1].rn.Step(m); err != nil {
					tb.Fatal(err)
				}
			}
			clear(msgs)
		}
		if !busy {
			return
		}
	}
}

// wire returns m as the receiving end of a transport would see it.
func (c *benchCluster) wire(tb testing.TB, m *pb.Message) pb.Message {
	size := m.Size()
	if cap(c.buf) < size {
		c.buf = make([]byte, size)
	}
	b := c.buf[:size]
	if _, err := m.MarshalTo(b); err != nil {
		tb.Fatal(err)
	}
	var out pb.Message
	if err := out.Unmarshal(b); err != nil {
		tb.Fatal(err)
	}
	return out
}

// round proposes batch entries on the leader (node 1) and settles: every
// node has applied them when it returns.
func (c *benchCluster) round(tb testing.TB, batch int) {
	leader := c.nodes[0].rn
	for j := 0; j < batch; j++ {
		if err := leader.Propose(c.data); err != nil {
			tb.Fatal(err)
		}
	}
	c.settle(tb)
}

// benchWorkload is one of the loops whose cost per committed entry the
// benchmarks report and TestAllocsPerEntry bounds.
type benchWorkload struct {
	name    string
	voters  int
	batch   int // proposals per Ready (per round)
	marshal bool
	// reuse sets Config.ReuseReadyMessages (the harness copies a Ready's
	// messages out before Advance).
	reuse bool
}

var benchWorkloads = []benchWorkload{
	{"SingleVoter/batch=1", 1, 1, false, false},
	{"SingleVoter/batch=64", 1, 64, false, false},
	{"ThreeVoters/value/batch=1", 3, 1, false, false},
	{"ThreeVoters/value/batch=64", 3, 64, false, false},
	{"ThreeVoters/marshaled/batch=1", 3, 1, true, false},
	{"ThreeVoters/marshaled/batch=64", 3, 64, true, false},
	{"ThreeVoters/value/batch=1/reuse", 3, 1, false, true},
	{"ThreeVoters/marshaled/batch=1/reuse", 3, 1, true, true},
}

// options returns the config options of w.
func (w benchWorkload) options() []func(*Config) {
	if w.reuse {
		return []func(*Config){withReuseReadyMessages}
	}
	return nil
}

// BenchmarkRawNode measures the propose -> Ready -> persist -> send ->
// Advance -> apply loop on MemoryStorage, per committed entry (b.N counts
// entries), of one voter and of three voters in one goroutine (every
// node's work and the delivery of every message included). allocs/entry
// is the exact allocation count per committed entry; cpu-ns/entry is the
// process's CPU time per entry, steadier than ns/op on a loaded machine.
func BenchmarkRawNode(b *testing.B) {
	for _, w := range benchWorkloads {
		b.Run(w.name, func(b *testing.B) {
			c := newBenchCluster(b, w.voters, w.marshal, w.options()...)
			// Warm up, so that the internal buffers have grown.
			for i := 0; i < 4; i++ {
				c.round(b, w.batch)
			}
			var before, after runtime.MemStats
			b.ReportAllocs()
			b.ResetTimer()
			runtime.ReadMemStats(&before)
			cpuStart := processCPUNanos()
			entries := 0
			for entries < b.N {
				c.round(b, w.batch)
				entries += w.batch
			}
			cpu := processCPUNanos() - cpuStart
			runtime.ReadMemStats(&after)
			b.StopTimer()
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(entries), "allocs/entry")
			b.ReportMetric(float64(cpu)/float64(entries), "cpu-ns/entry")
			for _, n := range c.nodes {
				if n.applied < uint64(entries) {
					b.Fatalf("node %d applied %d of %d", n.rn.raft.id, n.applied, entries)
				}
			}
		})
	}
}

// BenchmarkRawNodeAsync proposes one entry per Ready to a single voter with
// AsyncStorageWrites, whose append and apply threads are inline: every
// proposal's acknowledgement to itself and its storage responses pass
// through Step's checks.
func BenchmarkRawNodeAsync(b *testing.B) {
	s := NewMemoryStorage()
	cfg := testConfig(1, s)
	cfg.AsyncStorageWrites = true
	cfg.MaxSizePerMsg = 1 << 20
	rn, err := NewRawNode(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := rn.Bootstrap([]Peer{{ID: 1}}); err != nil {
		b.Fatal(err)
	}
	var compacted uint64
	pump := func() {
		for rn.HasReady() {
			rd := rn.Ready()
			for _, m := range rd.Messages {
				switch m.To {
				case LocalAppendThread:
					if err := saveStorageAppend(s, m); err != nil {
						b.Fatal(err)
					}
				case LocalApplyThread:
				default:
					continue
				}
				for _, resp := range m.Responses {
					if err := rn.Step(resp); err != nil {
						b.Fatal(err)
					}
				}
				if n := len(m.Entries); m.To == LocalApplyThread && m.Entries[n-1].Index >= compacted+8192 {
					compacted = m.Entries[n-1].Index
					if err := s.Compact(compacted); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	}
	pump()
	if err := rn.Campaign(); err != nil {
		b.Fatal(err)
	}
	pump()
	data := []byte("payload")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := rn.Propose(data); err != nil {
			b.Fatal(err)
		}
		pump()
	}
}
