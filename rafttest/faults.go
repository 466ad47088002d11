package rafttest

import (
	"fmt"
	"math/rand/v2"

	"github.com/raftcore/raft"
)

// QueueFaults is how long the functions handed to one ServerEnv.Later
// queue wait in the chaos phase (ChaosConfig.Queues): the faults of a
// server's own threads. They still run in the order given.
type QueueFaults struct {
	// MaxDelay is the longest a function waits, in ticks: each waits 0
	// to MaxDelay, drawn from the seed.
	MaxDelay int
	// SlowDisk: on the seeds that choose a slow node (one in two), that
	// node's functions of this queue wait slowDiskTicks to
	// MaxDelay+2*slowDiskTicks ticks instead, a degraded disk.
	// ChaosResult.Faults.SlowDisk names the node.
	SlowDisk bool
	// StallRate is the probability that a function waits StallTicks
	// more, holding up those behind it in its queue: a long apply batch,
	// a stalled disk.
	StallRate  float64
	StallTicks int
}

// slowDiskTicks is the least a function of a SlowDisk queue waits on the
// slow node.
const slowDiskTicks = 3

// delay draws how many ticks a function of the queue waits, on the slow
// node or another.
func (q QueueFaults) delay(rnd *rand.Rand, slow bool) int64 {
	lo, hi := 0, q.MaxDelay
	if slow && q.SlowDisk {
		lo, hi = slowDiskTicks, hi+2*slowDiskTicks
	}
	if q.StallRate > 0 && rnd.Float64() < q.StallRate {
		lo, hi = lo+q.StallTicks, hi+q.StallTicks
	}
	if hi <= 0 {
		return 0
	}
	return int64(lo + rnd.IntN(hi-lo+1))
}

// freshLeaderCrash is how a node that has just become leader, its own
// writes still pending, dies at once (FreshLeaderCrashRate): the window
// where a crash does the most harm, since a correct node's term and vote
// are durable by then but its first writes as leader are not.
type freshLeaderCrash struct {
	// sendFirst lets its first messages as leader leave before it dies.
	sendFirst bool
	// restartIn is how many ticks later it restarts.
	restartIn int64
	// campaign makes it campaign as soon as it restarts, as a server that
	// wants its leadership back quickly does.
	campaign bool
}

// decideFreshLeaderCrash decides whether a new leader with writes pending
// crashes at once: always when its term is not durable yet (termPending:
// no correct node is ever there, and one that is must be caught), else
// with probability rate.
func decideFreshLeaderCrash(rnd *rand.Rand, rate float64, termPending bool) (freshLeaderCrash, bool) {
	if !termPending && rnd.Float64() >= rate {
		return freshLeaderCrash{}, false
	}
	c := freshLeaderCrash{sendFirst: !termPending && rnd.IntN(2) == 0}
	c.restartIn = 1 + int64(rnd.IntN(2))
	c.campaign = termPending || rnd.IntN(2) == 0
	return c, true
}

// repartition replaces the partition of net over nodes 1..nodes with a
// random one (healed, split in two, one node isolated, or links cut one
// way) and describes it.
func repartition(rnd *rand.Rand, net *Network, nodes int) string {
	net.HealLinks()
	ids := make([]uint64, nodes)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	switch rnd.IntN(4) {
	case 1:
		rnd.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		k := 1 + rnd.IntN(len(ids)-1)
		a, b := ids[:k], ids[k:]
		net.Partition(a, b)
		return fmt.Sprintf("partition %v | %v", a, b)
	case 2:
		x := ids[rnd.IntN(len(ids))]
		net.Isolate(x, ids)
		return fmt.Sprintf("node %d isolated", x)
	case 3:
		var cuts []string
		for i := 0; i < 1+rnd.IntN(len(ids)); i++ {
			x, y := ids[rnd.IntN(len(ids))], ids[rnd.IntN(len(ids))]
			if x != y {
				net.CutOneWay(x, y)
				cuts = append(cuts, fmt.Sprintf("%d->%d", x, y))
			}
		}
		return fmt.Sprintf("one-way cuts %v", cuts)
	}
	return "network healed"
}

// forgotten reports whether a transport that forgets to report a lost
// snapshot with probability rate forgets this report.
func forgotten(rnd *rand.Rand, status raft.SnapshotStatus, rate float64) bool {
	return status == raft.SnapshotFailure && rnd.Float64() < rate
}
