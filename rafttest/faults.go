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

// leaderIsolation is the fault that catches a deposed leader still
// answering: the current leader is cut off from the other nodes (clients
// still reach it, as they would a node on their side of the partition)
// until the others have elected a leader of a later term and then some
// more, so that they commit writes while it may still believe it leads.
// Its clock stalls meanwhile (a paused process, a starved ticker),
// unless ChaosConfig.SteadyClocks: with CheckQuorum, a leader whose clock
// runs steps down before the others can elect, and one whose clock
// stalls does not.
type leaderIsolation struct {
	rnd  *rand.Rand
	rate float64
	// stalls lets the isolated leader's clock stall (not
	// ChaosConfig.SteadyClocks).
	stalls bool
	// node is the isolated node (0: none), term the term it led when
	// isolated; from the tick it was isolated, it stays so at least
	// until min and at most until max.
	node, term uint64
	min, max   int64
	// replaced is the tick another node was first seen leading a later
	// term (0: not yet).
	replaced int64
	// after is how long, from replaced, the isolation lasts.
	after int64
}

// Isolation lengths, in ticks: at least two election timeouts
// (Config.ElectionTick is 10), isolationAfter more once another node
// leads, at most maxIsolationTicks.
const (
	minIsolationTicks = 20
	isolationAfter    = 40
	maxIsolationTicks = 150
)

// isolationRate is the rate of leader isolations of a run of seed: rate
// if not 0 (a negative one is refused), else the seed's choice of 0.01,
// 0.02 and 0.03 per tick, so that every run isolates its leader a few
// times.
func isolationRate(seed uint64, rate float64) float64 {
	if rate != 0 {
		return rate
	}
	return []float64{0.01, 0.02, 0.03}[rand.New(rand.NewPCG(seed, 0x15017e)).IntN(3)]
}

// newLeaderIsolation returns the leader isolations of a run of seed at
// rate, or nil if rate is 0; stalls lets the isolated leader's clock
// stall.
func newLeaderIsolation(seed uint64, rate float64, stalls bool) *leaderIsolation {
	if rate <= 0 {
		return nil
	}
	return &leaderIsolation{rnd: rand.New(rand.NewPCG(seed, 0x150)), rate: rate, stalls: stalls}
}

// isolateLeaderStep isolates the leader of the highest term among the
// running nodes now and then, keeps it isolated (a repartition does not
// end it) and heals the network when its time is up.
func (r *chaosRun) isolateLeaderStep() {
	li := r.isolation
	if li == nil || len(r.nodes) < 2 {
		return
	}
	ids := make([]uint64, len(r.nodes))
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	if li.node != 0 {
		if li.replaced == 0 {
			for _, n := range r.running() {
				if st := n.rn.BasicStatus(); n.id != li.node && st.RaftState == raft.StateLeader && st.Term > li.term {
					li.replaced = r.now
				}
			}
		}
		if r.now < li.max && (r.now < li.min || li.replaced == 0 || r.now < li.replaced+li.after) {
			r.net.Isolate(li.node, ids) // again, after a repartition
			return
		}
		r.net.HealLinks()
		r.event("node %d no longer isolated: network healed", li.node)
		r.mark("network", "network healed", "", "#fd8")
		li.node = 0
	}
	if li.rnd.Float64() >= li.rate {
		return
	}
	var lead *chaosNode
	var term uint64
	for _, n := range r.running() {
		if st := n.rn.BasicStatus(); st.RaftState == raft.StateLeader && st.Term >= term {
			lead, term = n, st.Term
		}
	}
	if lead == nil {
		return
	}
	*li = leaderIsolation{rnd: li.rnd, rate: li.rate, stalls: li.stalls, node: lead.id, term: term,
		min: r.now + minIsolationTicks, max: r.now + maxIsolationTicks, after: int64(isolationAfter + li.rnd.IntN(isolationAfter+1))}
	r.net.Isolate(lead.id, ids)
	what := fmt.Sprintf("leader %d isolated from the other nodes", lead.id)
	if li.stalls {
		what += ", its clock stalled"
	}
	r.event("%s", what)
	r.mark("network", what, "", "#fd8")
}

// isolatedNode returns the isolated leader's node if it is running, else
// nil.
func (r *chaosRun) isolatedNode() *chaosNode {
	if r.isolation == nil || r.isolation.node == 0 {
		return nil
	}
	if n := r.node(r.isolation.node); n != nil && n.srv != nil {
		return n
	}
	return nil
}

// stalled reports whether n is the isolated leader, still leading, and
// its clock stalls: it does not tick. (Once it crashed, or stepped down,
// its clock runs.)
func (r *chaosRun) stalled(n *chaosNode) bool {
	li := r.isolation
	return li != nil && li.stalls && li.node == n.id && n.rn.BasicStatus().RaftState == raft.StateLeader
}
