package multiraft

import (
	"fmt"
	"testing"
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
