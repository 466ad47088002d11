package multiraft

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/raftcore/raft"
)

// BenchmarkHostTick measures one tick of a 3-node cluster hosting 10,000
// groups (every group on every node, leaders spread evenly), in one process
// with an in-memory transport carrying marshaled batches: each op ticks the
// three hosts and handles every Ready and delivery until the cluster is
// quiet. It reports the batches and group items (messages, coalesced
// heartbeats and responses) node 1 sends node 2 per tick.
//
//	go test -run '^$' -bench BenchmarkHostTick -benchtime 200x ./multiraft/
func BenchmarkHostTick(b *testing.B) {
	for _, groups := range []int{1000, 10000} {
		for _, quiesce := range []bool{true, false} {
			name := fmt.Sprintf("groups=%d/quiescence=%v", groups, quiesce)
			b.Run(name, func(b *testing.B) {
				c := newCluster(b, 1, 3, groups, Config{DisableQuiescence: !quiesce})
				c.electSpread()
				for range 40 {
					c.tick()
				}
				items := 0
				c.onBatch = func(from, to uint64, n int) {
					if from == 1 && to == 2 {
						items += n
					}
				}
				sent := c.sent[[2]uint64{1, 2}]
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					c.tick()
				}
				b.StopTimer()
				b.ReportMetric(float64(c.sent[[2]uint64{1, 2}]-sent)/float64(b.N), "batches/tick")
				b.ReportMetric(float64(items)/float64(b.N), "items/tick")
				active := 0
				for _, n := range c.nodes {
					active += n.host.NumActive()
				}
				b.ReportMetric(float64(active), "active")
			})
		}
	}
}

// BenchmarkHostHeapPerGroup reports the live heap per group of one host of
// 10,000 idle groups (three voters each, bootstrap applied, MemoryStorage
// included).
//
//	go test -run '^$' -bench BenchmarkHostHeapPerGroup -benchtime 1x ./multiraft/
func BenchmarkHostHeapPerGroup(b *testing.B) {
	const groups = 10000
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		h, err := NewHost(Config{ID: 1, Peers: []uint64{2, 3}})
		if err != nil {
			b.Fatal(err)
		}
		storages := make(map[uint64]*raft.MemoryStorage, groups)
		peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
		for g := uint64(1); g <= groups; g++ {
			st := raft.NewMemoryStorage()
			storages[g] = st
			if err := h.CreateGroup(g, groupConfig(1, 1, g, st), peers); err != nil {
				b.Fatal(err)
			}
		}
		for h.HasReady() {
			rd := h.Ready()
			for _, gr := range rd.Groups {
				if err := storages[gr.GroupID].Save(gr.HardState, gr.Entries, gr.Snapshot); err != nil {
					b.Fatal(err)
				}
			}
			h.Advance(rd)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/groups, "B/group")
		runtime.KeepAlive(h)
		runtime.KeepAlive(storages)
	}
}
