package raft

import (
	"fmt"
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

func newBenchNode(b *testing.B, id uint64, peers []Peer) *benchNode {
	s := NewMemoryStorage()
	cfg := testConfig(id, s)
	cfg.MaxSizePerMsg = 1 << 20
	cfg.MaxInflightMsgs = 4096
	rn, err := NewRawNode(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := rn.Bootstrap(peers); err != nil {
		b.Fatal(err)
	}
	return &benchNode{rn: rn, s: s}
}

// pump handles every pending Ready, appending outgoing messages to n.out.
func (n *benchNode) pump(b *testing.B) bool {
	busy := false
	for n.rn.HasReady() {
		busy = true
		rd := n.rn.Ready()
		if err := n.s.Append(rd.Entries); err != nil {
			b.Fatal(err)
		}
		if !IsEmptyHardState(rd.HardState) {
			_ = n.s.SetHardState(rd.HardState)
		}
		n.out = append(n.out, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			if e.Type == pb.EntryConfChange {
				cc, err := pb.UnmarshalConfChange(e)
				if err != nil {
					b.Fatal(err)
				}
				n.rn.ApplyConfChange(cc)
			}
			n.applied = e.Index
		}
		n.rn.Advance(rd)
		if n.applied >= n.compacted+8192 {
			if err := n.s.Compact(n.applied); err != nil {
				b.Fatal(err)
			}
			n.compacted = n.applied
		}
	}
	return busy
}

// BenchmarkRawNodeSingleVoter measures the propose -> Ready -> persist ->
// Advance -> apply loop of one voter on MemoryStorage, per committed
// entry, with one proposal or a batch of proposals per Ready.
func BenchmarkRawNodeSingleVoter(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			n := newBenchNode(b, 1, []Peer{{ID: 1}})
			n.pump(b)
			if err := n.rn.Campaign(); err != nil {
				b.Fatal(err)
			}
			n.pump(b)
			data := make([]byte, 128)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				for j := 0; j < batch; j++ {
					if err := n.rn.Propose(data); err != nil {
						b.Fatal(err)
					}
				}
				n.pump(b)
			}
			b.StopTimer()
			if got := n.rn.BasicStatus().Commit; got < uint64(b.N) {
				b.Fatalf("committed %d of %d", got, b.N)
			}
		})
	}
}

// BenchmarkCluster3Voters measures a 3-voter cluster on an in-memory
// network: a proposal on the leader until every node applied it, per
// committed entry.
func BenchmarkCluster3Voters(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			peers := []Peer{{ID: 1}, {ID: 2}, {ID: 3}}
			nodes := map[uint64]*benchNode{}
			for _, p := range peers {
				nodes[p.ID] = newBenchNode(b, p.ID, peers)
			}
			ids := []uint64{1, 2, 3}
			settle := func() {
				for {
					busy := false
					for _, id := range ids {
						if nodes[id].pump(b) {
							busy = true
						}
					}
					for _, id := range ids {
						n := nodes[id]
						msgs := n.out
						n.out = n.out[:0]
						for _, m := range msgs {
							busy = true
							if err := nodes[m.To].rn.Step(m); err != nil {
								b.Fatal(err)
							}
						}
					}
					if !busy {
						return
					}
				}
			}
			settle()
			if err := nodes[1].rn.Campaign(); err != nil {
				b.Fatal(err)
			}
			settle()
			leader := nodes[1].rn
			if leader.BasicStatus().RaftState != StateLeader {
				b.Fatal("no leader")
			}
			data := make([]byte, 128)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				for j := 0; j < batch; j++ {
					if err := leader.Propose(data); err != nil {
						b.Fatal(err)
					}
				}
				settle()
			}
			b.StopTimer()
			for _, id := range ids {
				if nodes[id].applied < uint64(b.N) {
					b.Fatalf("node %d applied %d of %d", id, nodes[id].applied, b.N)
				}
			}
		})
	}
}
