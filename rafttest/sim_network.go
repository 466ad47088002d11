package rafttest

import (
	"fmt"
	"math/rand/v2"

	"github.com/raftcore/raft"
)

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
