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
