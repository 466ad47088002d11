package rafttest

import (
	"math/rand/v2"

	pb "github.com/raftcore/raft/raftpb"
)

// link is a directed connection between two nodes.
type link struct{ from, to uint64 }

// Network carries messages between nodes in memory. It is deterministic:
// given the same seed and the same calls it drops and reorders the same
// messages. It is not safe for concurrent use.
type Network struct {
	rand *rand.Rand
	// queue holds messages sent and not yet delivered, in send order.
	queue []pb.Message
	// cut links drop every message.
	cut map[link]bool
	// dropRate is the probability that any message is lost.
	dropRate float64
	// ignored message types are dropped everywhere.
	ignored map[pb.MessageType]bool

	// Sent counts messages handed to the network, by type.
	Sent map[pb.MessageType]int
	// Delivered counts messages delivered, by type.
	Delivered map[pb.MessageType]int
	// OnDeliver, if set, is called with every message Take lets through,
	// e.g. to count rejections.
	OnDeliver func(pb.Message)
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

// Send queues msgs for delivery.
func (n *Network) Send(msgs ...pb.Message) {
	for _, m := range msgs {
		n.Sent[m.Type]++
		n.queue = append(n.queue, m)
	}
}

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

// Heal restores every link, stops random drops and ignored types.
func (n *Network) Heal() {
	n.cut = map[link]bool{}
	n.ignored = map[pb.MessageType]bool{}
	n.dropRate = 0
}

// Pending returns the number of messages waiting for delivery.
func (n *Network) Pending() int { return len(n.queue) }

// Take removes and returns the queued messages that survive the network's
// faults, in send order. Dropped ones are gone for good.
func (n *Network) Take() []pb.Message {
	q := n.queue
	n.queue = nil
	out := q[:0:0]
	for _, m := range q {
		if n.cut[link{m.From, m.To}] || n.ignored[m.Type] {
			continue
		}
		if n.dropRate > 0 && n.rand.Float64() < n.dropRate {
			continue
		}
		n.Delivered[m.Type]++
		if n.OnDeliver != nil {
			n.OnDeliver(m)
		}
		out = append(out, m)
	}
	return out
}

// ResetCounters zeroes the Sent and Delivered counters.
func (n *Network) ResetCounters() {
	n.Sent = map[pb.MessageType]int{}
	n.Delivered = map[pb.MessageType]int{}
}
