package rafttest

import (
	"math/rand/v2"

	pb "github.com/raftcore/raft/raftpb"
)

// link is a directed connection between two nodes.
type link struct{ from, to uint64 }

// inflight is a message on the network, due for delivery at tick due.
type inflight struct {
	m   pb.Message
	due int64
}

// Network carries messages between nodes in memory. It has a clock (in
// ticks, moved by SetNow or Advance): a message sent at tick t is due at
// t plus its delay, and Take delivers only the messages due. With no delay
// set every message is due at once, in send order. It is deterministic:
// given the same seed and the same calls it drops, delays, duplicates and
// reorders the same messages. It is not safe for concurrent use.
type Network struct {
	rand *rand.Rand
	now  int64
	// queue holds messages sent and not yet delivered, in send order.
	queue []inflight
	// cut links drop every message.
	cut map[link]bool
	// dropRate is the probability that any message is lost.
	dropRate float64
	// maxDelay is the most ticks a message takes to arrive.
	maxDelay int
	// dupRate is the probability that a message is delivered twice.
	dupRate float64
	// ignored message types are dropped everywhere.
	ignored map[pb.MessageType]bool

	// Sent counts messages handed to the network, by type.
	Sent map[pb.MessageType]int
	// Delivered counts messages delivered, by type.
	Delivered map[pb.MessageType]int
	// OnDeliver, if set, is called with every message Take lets through,
	// e.g. to count rejections.
	OnDeliver func(pb.Message)
	// OnDrop, if set, is called with every due message Take loses (to a
	// cut link, an ignored type or a random drop), e.g. to tell a sender
	// its snapshot did not arrive.
	OnDrop func(pb.Message)
}

// NewNetwork returns an empty network whose random choices come from seed.
func NewNetwork(seed uint64) *Network {
	return &Network{
		rand:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		cut:       map[link]bool{},
		ignored:   map[pb.MessageType]bool{},
		Sent:      map[pb.MessageType]int{},
		Delivered: map[pb.MessageType]int{},
	}
}

// Send queues msgs for delivery, each due after its own random delay;
// some are duplicated (see SetDelay and SetDupRate).
func (n *Network) Send(msgs ...pb.Message) {
	for _, m := range msgs {
		n.Sent[m.Type]++
		n.queue = append(n.queue, inflight{m: m, due: n.now + n.delay(n.maxDelay)})
		if n.dupRate > 0 && n.rand.Float64() < n.dupRate {
			n.queue = append(n.queue, inflight{m: m, due: n.now + n.delay(n.maxDelay+1)})
		}
	}
}

// delay returns a random delay of 0 to max ticks.
func (n *Network) delay(max int) int64 {
	if max <= 0 {
		return 0
	}
	return int64(n.rand.IntN(max + 1))
}

// Now returns the network's clock.
func (n *Network) Now() int64 { return n.now }

// SetNow sets the network's clock to tick t.
func (n *Network) SetNow(t int64) { n.now = t }

// Advance moves the network's clock ticks forward.
func (n *Network) Advance(ticks int64) { n.now += ticks }

// SetDelay makes every message sent from now on take 0 to max ticks
// (at random) to arrive, so that messages overtake each other. Zero, the
// default, delivers every message at the next Take.
func (n *Network) SetDelay(max int) { n.maxDelay = max }

// SetDupRate makes every message sent from now on be delivered twice with
// probability p, the copy with its own delay of up to one tick more than
// the longest.
func (n *Network) SetDupRate(p float64) { n.dupRate = p }

// Cut drops every message from a to b and from b to a until Heal.
func (n *Network) Cut(a, b uint64) {
	n.cut[link{a, b}] = true
	n.cut[link{b, a}] = true
}

// CutOneWay drops every message from a to b (but not back) until Heal.
func (n *Network) CutOneWay(from, to uint64) { n.cut[link{from, to}] = true }

// Isolate cuts id off from every node in peers.
func (n *Network) Isolate(id uint64, peers []uint64) {
	for _, p := range peers {
		if p != id {
			n.Cut(id, p)
		}
	}
}

// Partition splits the nodes into groups that cannot talk to each other.
func (n *Network) Partition(groups ...[]uint64) {
	for i, g := range groups {
		for _, other := range groups[i+1:] {
			for _, a := range g {
				for _, b := range other {
					n.Cut(a, b)
				}
			}
		}
	}
}

// SetDropRate makes every message get lost with probability p.
func (n *Network) SetDropRate(p float64) { n.dropRate = p }

// Ignore drops every message of type t until Heal.
func (n *Network) Ignore(t pb.MessageType) { n.ignored[t] = true }

// Heal restores every link, stops random drops and ignored types. Delays
// and duplication stay.
func (n *Network) Heal() {
	n.HealLinks()
	n.ignored = map[pb.MessageType]bool{}
	n.dropRate = 0
}

// HealLinks restores every cut link and leaves the other faults be.
func (n *Network) HealLinks() { n.cut = map[link]bool{} }

// Pending returns the number of messages waiting for delivery, due or
// not.
func (n *Network) Pending() int { return len(n.queue) }

// Due returns the number of messages due for delivery by now.
func (n *Network) Due() int {
	due := 0
	for _, f := range n.queue {
		if f.due <= n.now {
			due++
		}
	}
	return due
}

// Take removes the messages due by now and returns those that survive the
// network's faults, in send order. Dropped ones are gone for good.
func (n *Network) Take() []pb.Message { return n.take(0) }

// TakeFor is Take for the messages to one node only.
func (n *Network) TakeFor(to uint64) []pb.Message { return n.take(to) }

// take is Take for the messages to node to, or to every node if to is 0.
func (n *Network) take(to uint64) []pb.Message {
	// Messages the hooks send meanwhile queue behind those kept (in a
	// new array: those kept are filtered in place).
	q := n.queue
	n.queue = nil
	kept := q[:0]
	var out []pb.Message
	for _, f := range q {
		m := f.m
		if f.due > n.now || (to != 0 && m.To != to) {
			kept = append(kept, f)
			continue
		}
		if n.cut[link{m.From, m.To}] || n.ignored[m.Type] ||
			(n.dropRate > 0 && n.rand.Float64() < n.dropRate) {
			if n.OnDrop != nil {
				n.OnDrop(m)
			}
			continue
		}
		n.Delivered[m.Type]++
		if n.OnDeliver != nil {
			n.OnDeliver(m)
		}
		out = append(out, m)
	}
	clear(q[len(kept):])
	n.queue = append(kept, n.queue...)
	return out
}

// ResetCounters zeroes the Sent and Delivered counters.
func (n *Network) ResetCounters() {
	n.Sent = map[pb.MessageType]int{}
	n.Delivered = map[pb.MessageType]int{}
}
