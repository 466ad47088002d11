package raft

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// newReplicatingLeader3 returns node 1 leading {1,2,3} with peers 2 and 3
// in the replicate state and every entry acknowledged.
func newReplicatingLeader3(t *testing.T, opts ...func(*Config)) *testNode {
	t.Helper()
	n := newTestNode(t, 1, []uint64{1, 2, 3}, opts...)
	require.NoError(t, n.rn.Campaign())
	n.ready()
	n.step(pb.Message{From: 2, To: 1, Term: n.r().Term, Type: pb.MsgVoteResp})
	require.Equal(t, StateLeader, n.r().state)
	n.ready()
	for _, id := range []uint64{2, 3} {
		n.step(pb.Message{From: id, To: 1, Term: n.r().Term, Type: pb.MsgAppResp, Index: n.r().raftLog.lastIndex()})
	}
	n.ready()
	for _, id := range []uint64{2, 3} {
		require.Equal(t, tracker.StateReplicate, n.r().trk.Progress[id].State)
	}
	require.Equal(t, n.r().raftLog.lastIndex(), n.r().raftLog.committed)
	return n
}

// appsTo returns the MsgApp messages to peer `to` in msgs.
func appsTo(msgs []pb.Message, to uint64) []pb.Message {
	var out []pb.Message
	for _, m := range msgs {
		if m.Type == pb.MsgApp && m.To == to {
			out = append(out, m)
		}
	}
	return out
}

// requireAppendsCover checks that apps, in order, carry the entries
// first..last of the leader's log, each continuing where the previous one
// ended, with the leader's term and commit index.
func requireAppendsCover(t *testing.T, n *testNode, apps []pb.Message, first, last uint64) {
	t.Helper()
	r := n.r()
	next := first
	for _, m := range apps {
		require.Equal(t, r.Term, m.Term)
		require.Equal(t, r.raftLog.committed, m.Commit)
		require.Equal(t, next-1, m.Index, "an append continues where the previous one ended")
		require.Equal(t, r.raftLog.zeroTermOnOutOfBounds(r.raftLog.term(next-1)), m.LogTerm)
		require.Len(t, m.Entries, cap(m.Entries), "entries capped: an append by the application reallocates")
		for _, e := range m.Entries {
			require.Equal(t, next, e.Index)
			require.Equal(t, r.Term, e.Term)
			require.Equal(t, fmt.Sprintf("p%d", e.Index-first), string(e.Data))
			next++
		}
	}
	require.Equal(t, last+1, next, "every entry sent once")
}

// persistAdvance persists rd and advances.
func persistAdvance(t *testing.T, n *testNode, rd Ready) {
	t.Helper()
	require.NoError(t, n.storage.Save(rd.HardState, rd.Entries, rd.Snapshot))
	n.rn.Advance(rd)
}

// proposeN proposes n entries p<k>, k counting from from.
func proposeN(t *testing.T, n *testNode, from, count int) {
	t.Helper()
	for i := from; i < from+count; i++ {
		require.NoError(t, n.rn.Propose([]byte(fmt.Sprintf("p%d", i))))
	}
}

// TestCoalesceAppends: 64 proposals between two Readys leave as one append
// per follower carrying all 64 entries; flow control still records each
// append, and the follower's single answer frees them all.
func TestCoalesceAppends(t *testing.T) {
	n := newReplicatingLeader3(t)
	first := n.r().raftLog.lastIndex() + 1
	proposeN(t, n, 0, 64)
	rd := n.rn.Ready()
	for _, id := range []uint64{2, 3} {
		apps := appsTo(rd.Messages, id)
		require.Len(t, apps, 1, "one append to %x", id)
		require.Len(t, apps[0].Entries, 64)
		requireAppendsCover(t, n, apps, first, first+63)
		pr := n.r().trk.Progress[id]
		require.Equal(t, 64, pr.Inflights.Count(), "each append decided is still counted")
		require.Equal(t, first+64, pr.Next)
	}
	persistAdvance(t, n, rd)
	n.step(pb.Message{From: 2, To: 1, Term: n.r().Term, Type: pb.MsgAppResp, Index: first + 63})
	require.Zero(t, n.r().trk.Progress[2].Inflights.Count(), "one answer frees every record")
}

// TestCoalesceAppendsWithinMaxSize: with a small MaxSizePerMsg the merged
// appends stay within it, each continuing the previous one.
func TestCoalesceAppendsWithinMaxSize(t *testing.T) {
	entry := pb.Entry{Term: 1, Index: 100, Data: []byte("p10")}
	limit := uint64(10 * entry.Size())
	n := newReplicatingLeader3(t, func(c *Config) { c.MaxSizePerMsg = limit })
	first := n.r().raftLog.lastIndex() + 1
	proposeN(t, n, 0, 64)
	rd := n.rn.Ready()
	for _, id := range []uint64{2, 3} {
		apps := appsTo(rd.Messages, id)
		require.Greater(t, len(apps), 1)
		require.Less(t, len(apps), 64, "appends merged")
		for i, m := range apps {
			require.LessOrEqual(t, entriesSize(m.Entries), limit)
			if i < len(apps)-1 {
				require.Greater(t, entriesSize(m.Entries)+uint64(entry.Size()), limit,
					"full: the next entry went to the next append")
			}
		}
		requireAppendsCover(t, n, apps, first, first+63)
	}
	persistAdvance(t, n, rd)
}

// TestCoalesceAppendsStopAtOtherMessage: a message to the follower between
// two appends keeps them apart.
func TestCoalesceAppendsStopAtOtherMessage(t *testing.T) {
	n := newReplicatingLeader3(t)
	first := n.r().raftLog.lastIndex() + 1
	proposeN(t, n, 0, 3)
	n.r().bcastHeartbeat()
	proposeN(t, n, 3, 3)
	rd := n.rn.Ready()
	for _, id := range []uint64{2, 3} {
		var types []pb.MessageType
		var lens []int
		for _, m := range rd.Messages {
			if m.To == id {
				types = append(types, m.Type)
				lens = append(lens, len(m.Entries))
			}
		}
		require.Equal(t, []pb.MessageType{pb.MsgApp, pb.MsgHeartbeat, pb.MsgApp}, types)
		require.Equal(t, []int{3, 0, 3}, lens)
		requireAppendsCover(t, n, appsTo(rd.Messages, id), first, first+5)
	}
	persistAdvance(t, n, rd)
}

// TestCoalesceAppendsNotIntoHandedOut: an append after a Ready never
// extends one that Ready handed out.
func TestCoalesceAppendsNotIntoHandedOut(t *testing.T) {
	n := newReplicatingLeader3(t)
	first := n.r().raftLog.lastIndex() + 1
	proposeN(t, n, 0, 2)
	rd1 := n.rn.Ready()
	before := appsTo(rd1.Messages, 2)
	require.Len(t, before, 1)
	require.Len(t, before[0].Entries, 2)
	persistAdvance(t, n, rd1)
	proposeN(t, n, 2, 2)
	rd2 := n.rn.Ready()
	require.Len(t, appsTo(rd1.Messages, 2)[0].Entries, 2, "the handed-out append is unchanged")
	after := appsTo(rd2.Messages, 2)
	require.Len(t, after, 1)
	requireAppendsCover(t, n, append(before, after...), first, first+3)
	persistAdvance(t, n, rd2)
}

// TestCoalesceAppendsNotProbes: a follower in StateProbe still gets one
// probe and nothing more until it answers.
func TestCoalesceAppendsNotProbes(t *testing.T) {
	n := newReplicatingLeader3(t)
	n.r().trk.Progress[2].BecomeProbe()
	proposeN(t, n, 0, 5)
	rd := n.rn.Ready()
	apps := appsTo(rd.Messages, 2)
	require.Len(t, apps, 1, "one probe")
	require.Len(t, apps[0].Entries, 1, "sent with the first proposal, before the others were appended")
	require.Len(t, appsTo(rd.Messages, 3), 1)
	persistAdvance(t, n, rd)
}
