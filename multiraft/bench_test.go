package multiraft

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"
)

var benchLarge = flag.Bool("multiraft.large", false, "include the 100,000-group cases of the multiraft benchmarks (minutes to build)")

// benchSizes are the group counts a benchmark runs: 100,000 only with
// -multiraft.large.
func benchSizes(sizes ...int) []int {
	if *benchLarge {
		return append(sizes, 100000)
	}
	return sizes
}

// benchTickInterval is the tick interval the benchmarks convert their
// figures at: 100 ms ticks, so a group with ElectionTick 10 and
// HeartbeatTick 1 heartbeats every 100 ms and elects after 1–2 s.
const benchTickInterval = 100 * time.Millisecond

// benchClusters keeps the clusters built for a benchmark by its name, so
// that the testing package's first run (b.N == 1) and the measured run
// share one: building 100,000 groups takes minutes.
var benchClusters = map[string]*cluster{}

// sharedBenchCluster is benchCluster, built once per benchmark name.
func sharedBenchCluster(b *testing.B, groups int, quiesce bool) *cluster {
	b.Helper()
	if c := benchClusters[b.Name()]; c != nil {
		c.t = b
		return c
	}
	clear(benchClusters) // one at a time: they are large
	c := benchCluster(b, groups, quiesce)
	benchClusters[b.Name()] = c
	return c
}

// benchCluster is a 3-node cluster hosting groups (every group on every
// node, leaders spread evenly), ticked until every group is quiesced, or,
// without quiescence, until the elections are long over. It ends with a
// garbage collection, so that the setup's garbage is not collected on the
// measured time.
func benchCluster(b *testing.B, groups int, quiesce bool) *cluster {
	b.Helper()
	defer runtime.GC()
	c := newCluster(b, 1, 3, groups, Config{DisableQuiescence: !quiesce})
	c.electSpread()
	for range 60 {
		c.tick()
		if quiesce && c.numActive() == 0 {
			return c
		}
	}
	if quiesce {
		b.Fatalf("%d groups still active after 60 ticks", c.numActive())
	}
	return c
}

func (c *cluster) numActive() int {
	active := 0
	for _, n := range c.nodes {
		if !n.down {
			active += n.host.NumActive()
		}
	}
	return active
}

// BenchmarkHostTick measures one tick of a 3-node cluster hosting 1,000 to
// 100,000 groups (-multiraft.large) in one process, with an in-memory
// transport carrying marshaled batches: each op ticks the three hosts and
// handles every Ready and delivery until the cluster is quiet. Besides
// ns/op (all three nodes) it reports the share of one core a node spends at one tick per 100 ms,
// the batches and group items (messages, coalesced heartbeats and
// responses, wakes) node 1 sends node 2 per tick, and the groups active on
// the three nodes after the run.
//
//	go test -run '^$' -bench BenchmarkHostTick -benchtime 100x ./multiraft/ -multiraft.large
func BenchmarkHostTick(b *testing.B) {
	for _, groups := range benchSizes(1000, 10000) {
		for _, quiesce := range []bool{true, false} {
			if groups > 10000 && !quiesce {
				continue // seconds per tick; the 10,000 figure says enough
			}
			name := fmt.Sprintf("groups=%d/quiescence=%v", groups, quiesce)
			b.Run(name, func(b *testing.B) {
				c := sharedBenchCluster(b, groups, quiesce)
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
				perNodeTick := float64(b.Elapsed()) / float64(b.N) / 3
				b.ReportMetric(100*perNodeTick/float64(benchTickInterval), "%core/node")
				b.ReportMetric(float64(c.sent[[2]uint64{1, 2}]-sent)/float64(b.N), "batches/tick")
				b.ReportMetric(float64(items)/float64(b.N), "items/tick")
				b.ReportMetric(float64(c.numActive()), "active")
			})
		}
	}
}

// BenchmarkHostTraffic measures what node 1 sends node 2 while a fixed
// number of groups have work, in clusters of 1,000 to 100,000 groups
// (-multiraft.large): each op proposes to 10 groups led by node 1 (a
// different 10 each op) and ticks the cluster. The batches and items per tick follow the groups with work,
// not the number of groups.
//
//	go test -run '^$' -bench BenchmarkHostTraffic -benchtime 300x ./multiraft/ -multiraft.large
func BenchmarkHostTraffic(b *testing.B) {
	const busy = 10
	for _, groups := range benchSizes(1000, 10000) {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			c := sharedBenchCluster(b, groups, true)
			items := 0
			c.onBatch = func(from, to uint64, n int) {
				if from == 1 && to == 2 {
					items += n
				}
			}
			sent := c.sent[[2]uint64{1, 2}]
			h := c.node(1).host
			next := uint64(1) // node 1 leads groups 1, 4, 7, ...
			data := []byte("proposal")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for range busy {
					if err := h.Propose(next, data); err != nil {
						b.Fatal(err)
					}
					next += 3
					if next > uint64(groups) {
						next = 1
					}
				}
				c.tick()
			}
			b.StopTimer()
			ticksPerSec := float64(time.Second / benchTickInterval)
			b.ReportMetric(ticksPerSec*float64(c.sent[[2]uint64{1, 2}]-sent)/float64(b.N), "batches/s")
			b.ReportMetric(ticksPerSec*float64(items)/float64(b.N), "items/s")
		})
	}
}

// BenchmarkHostQuietHeap reports the live heap of a quiet 3-node cluster of
// 10,000 or 100,000 groups (-multiraft.large), per replica and in total
// (hosts, groups, MemoryStorage, and the test transport's record of
// applied entries), and checks that 50 more ticks wake no group and send no group item.
// host-B/replica is the heap per replica once the transport's record of
// applied entries and its counters are dropped: what the hosts and their
// MemoryStorages hold (and the test's map from group to storage), the
// figure quiescedHostHeap measures.
//
//	go test -run '^$' -bench BenchmarkHostQuietHeap -benchtime 1x ./multiraft/ -multiraft.large
func BenchmarkHostQuietHeap(b *testing.B) {
	for _, groups := range benchSizes(10000) {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				c := benchCluster(b, groups, true)
				c.queue = nil
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap := float64(after.HeapAlloc - before.HeapAlloc)
				c.onBatch = func(from, to uint64, n int) {
					if n != 0 {
						b.Fatalf("quiet cluster: batch %d->%d carries %d group items", from, to, n)
					}
				}
				for range 50 {
					c.tick()
				}
				if a := c.numActive(); a != 0 {
					b.Fatalf("%d groups woke in a quiet cluster", a)
				}
				b.ReportMetric(heap/float64(3*groups), "B/replica")
				b.ReportMetric(heap/(1<<20), "MiB")
				c.sent = nil
				for _, n := range c.nodes {
					n.applied = nil
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(3*groups), "host-B/replica")
				runtime.KeepAlive(c)
			}
		})
	}
}

// BenchmarkHostFailover stops node 1 of a quiet 3-node cluster (it leads a
// third of the groups) and ticks the other two until every group it led
// has a new leader. It reports the ticks that took (for half those groups
// and for all), the wall time of all at one tick per 100 ms, and (as ns/op)
// the CPU time of those ticks.
//
//	go test -run '^$' -bench BenchmarkHostFailover -benchtime 1x ./multiraft/
func BenchmarkHostFailover(b *testing.B) {
	for _, groups := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			totalTicks, halfTicks := 0, 0
			for range b.N {
				b.StopTimer()
				c := benchCluster(b, groups, true)
				var orphans []uint64
				for _, g := range c.groups {
					if c.leader(g) == 1 {
						orphans = append(orphans, g)
					}
				}
				c.crash(1)
				b.StartTimer()
				ticks, half := 0, 0
				for {
					c.tick()
					ticks++
					b.StopTimer()
					led := 0
					for _, g := range orphans {
						if c.leader(g) != 0 {
							led++
						}
					}
					if half == 0 && 2*led >= len(orphans) {
						half = ticks
					}
					b.StartTimer()
					if led == len(orphans) {
						break
					}
					if ticks > 200 {
						b.Fatal("groups without a leader 200 ticks after node 1 stopped")
					}
				}
				totalTicks += ticks
				halfTicks += half
			}
			b.ReportMetric(float64(halfTicks)/float64(b.N), "ticks-half")
			b.ReportMetric(float64(totalTicks)/float64(b.N), "ticks")
			b.ReportMetric(float64(totalTicks)/float64(b.N)*benchTickInterval.Seconds(), "s@100ms")
		})
	}
}
