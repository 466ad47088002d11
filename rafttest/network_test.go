package rafttest

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

func msg(from, to uint64, t pb.MessageType) pb.Message {
	return pb.Message{From: from, To: to, Type: t, Term: 1}
}

func TestNetworkDeliversInOrder(t *testing.T) {
	n := NewNetwork(1)
	n.Send(msg(1, 2, pb.MsgApp), msg(2, 1, pb.MsgAppResp), msg(1, 3, pb.MsgHeartbeat))
	require.Equal(t, 3, n.Pending())
	got := n.Take()
	require.Equal(t, []pb.Message{msg(1, 2, pb.MsgApp), msg(2, 1, pb.MsgAppResp), msg(1, 3, pb.MsgHeartbeat)}, got)
	require.Zero(t, n.Pending())
	require.Empty(t, n.Take())
	require.Equal(t, 1, n.Sent[pb.MsgApp])
	require.Equal(t, 1, n.Delivered[pb.MsgHeartbeat])
}

func TestNetworkFaults(t *testing.T) {
	all := []pb.Message{msg(1, 2, pb.MsgApp), msg(2, 1, pb.MsgAppResp), msg(1, 3, pb.MsgApp), msg(3, 1, pb.MsgAppResp), msg(2, 3, pb.MsgVote)}
	for _, tt := range []struct {
		name  string
		fault func(n *Network)
		want  []int // indexes into all that get through
	}{
		{"none", func(*Network) {}, []int{0, 1, 2, 3, 4}},
		{"cut", func(n *Network) { n.Cut(1, 2) }, []int{2, 3, 4}},
		{"cut one way", func(n *Network) { n.CutOneWay(1, 2) }, []int{1, 2, 3, 4}},
		{"isolate", func(n *Network) { n.Isolate(1, []uint64{1, 2, 3}) }, []int{4}},
		{"partition", func(n *Network) { n.Partition([]uint64{1}, []uint64{2, 3}) }, []int{4}},
		{"partition keeps groups", func(n *Network) { n.Partition([]uint64{1, 2}, []uint64{3}) }, []int{0, 1}},
		{"ignore type", func(n *Network) { n.Ignore(pb.MsgAppResp) }, []int{0, 2, 4}},
		{"drop all", func(n *Network) { n.SetDropRate(1) }, nil},
		{"healed", func(n *Network) { n.Isolate(1, []uint64{2, 3}); n.Ignore(pb.MsgVote); n.SetDropRate(1); n.Heal() }, []int{0, 1, 2, 3, 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := NewNetwork(1)
			tt.fault(n)
			n.Send(all...)
			var want []pb.Message
			for _, i := range tt.want {
				want = append(want, all[i])
			}
			got := n.Take()
			if len(want) == 0 {
				require.Empty(t, got)
			} else {
				require.Equal(t, want, got)
			}
			require.Equal(t, len(tt.want), sum(n.Delivered))
			require.Equal(t, len(all), sum(n.Sent))
			require.Zero(t, n.Pending(), "dropped messages are gone")
		})
	}
}

func sum(m map[pb.MessageType]int) int {
	s := 0
	for _, v := range m {
		s += v
	}
	return s
}

// Random drops are reproducible from the seed, and near the rate asked.
func TestNetworkDropRateDeterministic(t *testing.T) {
	run := func(seed uint64) []bool {
		n := NewNetwork(seed)
		n.SetDropRate(0.5)
		var got []bool
		for i := 0; i < 1000; i++ {
			n.Send(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Index: uint64(i)})
			got = append(got, len(n.Take()) == 1)
		}
		return got
	}
	a, b := run(7), run(7)
	require.Equal(t, a, b, "same seed, same drops")
	require.NotEqual(t, a, run(8), "another seed, other drops")
	delivered := 0
	for _, ok := range a {
		if ok {
			delivered++
		}
	}
	require.InDelta(t, 500, delivered, 80)
}

func TestNetworkCountersAndHook(t *testing.T) {
	n := NewNetwork(1)
	var seen []pb.MessageType
	n.OnDeliver = func(m pb.Message) { seen = append(seen, m.Type) }
	n.Ignore(pb.MsgHeartbeat)
	n.Send(msg(1, 2, pb.MsgApp), msg(1, 2, pb.MsgHeartbeat))
	n.Take()
	require.Equal(t, []pb.MessageType{pb.MsgApp}, seen, "the hook sees delivered messages only")
	require.Equal(t, 1, n.Sent[pb.MsgHeartbeat])
	require.Zero(t, n.Delivered[pb.MsgHeartbeat])
	n.ResetCounters()
	require.Empty(t, n.Sent)
	require.Empty(t, n.Delivered)
}

// A delayed message waits for the clock; with delays, messages overtake
// each other, and every one still arrives once.
func TestNetworkDelayReorders(t *testing.T) {
	n := NewNetwork(3)
	n.SetDelay(5)
	var sent []uint64
	for i := uint64(1); i <= 50; i++ {
		n.Send(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Index: i})
		sent = append(sent, i)
	}
	var got []uint64
	for tick := int64(0); tick <= 5; tick++ {
		n.SetNow(tick)
		for _, m := range n.Take() {
			got = append(got, m.Index)
		}
		require.Zero(t, n.Due())
		if tick == 0 {
			require.NotZero(t, n.Pending(), "some messages are not due yet")
			require.Less(t, len(got), 50)
		}
	}
	require.Zero(t, n.Pending())
	require.ElementsMatch(t, sent, got)
	require.NotEqual(t, sent, got, "delays reorder messages")
	require.Equal(t, int64(5), n.Now())
	n.Advance(2)
	require.Equal(t, int64(7), n.Now())
}

// Duplicated messages arrive more than once; Sent counts what was sent.
func TestNetworkDuplicates(t *testing.T) {
	n := NewNetwork(4)
	n.SetDupRate(1)
	n.Send(msg(1, 2, pb.MsgApp), msg(1, 3, pb.MsgApp))
	n.Advance(1) // a copy may come a tick late
	got := n.Take()
	require.ElementsMatch(t, []pb.Message{msg(1, 2, pb.MsgApp), msg(1, 2, pb.MsgApp), msg(1, 3, pb.MsgApp), msg(1, 3, pb.MsgApp)}, got)
	require.Equal(t, 2, n.Sent[pb.MsgApp])
	require.Equal(t, 4, n.Delivered[pb.MsgApp])
}

// Delays, duplicates and drops are reproducible from the seed.
func TestNetworkChaosDeterministic(t *testing.T) {
	run := func(seed uint64) []pb.Message {
		n := NewNetwork(seed)
		n.SetDelay(3)
		n.SetDupRate(0.3)
		n.SetDropRate(0.2)
		var got []pb.Message
		for tick := int64(0); tick < 100; tick++ {
			n.SetNow(tick)
			n.Send(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Index: uint64(tick)})
			got = append(got, n.Take()...)
		}
		return got
	}
	require.Equal(t, run(9), run(9))
	require.NotEqual(t, run(9), run(10))
}

// TakeFor takes the due messages to one node and leaves the rest; OnDrop
// sees the ones lost.
func TestNetworkTakeForAndOnDrop(t *testing.T) {
	n := NewNetwork(1)
	var dropped []pb.Message
	n.OnDrop = func(m pb.Message) { dropped = append(dropped, m) }
	n.CutOneWay(3, 2)
	n.Send(msg(1, 2, pb.MsgApp), msg(1, 3, pb.MsgApp), msg(3, 2, pb.MsgVote))
	require.Equal(t, []pb.Message{msg(1, 2, pb.MsgApp)}, n.TakeFor(2))
	require.Equal(t, []pb.Message{msg(3, 2, pb.MsgVote)}, dropped)
	require.Equal(t, 1, n.Pending())
	require.Equal(t, []pb.Message{msg(1, 3, pb.MsgApp)}, n.Take())
}

// HealLinks restores links and keeps the other faults; Heal keeps delays.
func TestNetworkHealLinks(t *testing.T) {
	n := NewNetwork(1)
	n.Cut(1, 2)
	n.Ignore(pb.MsgVote)
	n.HealLinks()
	n.Send(msg(1, 2, pb.MsgApp), msg(1, 2, pb.MsgVote))
	require.Equal(t, []pb.Message{msg(1, 2, pb.MsgApp)}, n.Take())

	n.SetDelay(1000)
	n.Heal()
	for i := 0; i < 20; i++ {
		n.Send(msg(1, 2, pb.MsgApp))
	}
	require.Less(t, len(n.Take()), 20, "Heal leaves delays")
}
