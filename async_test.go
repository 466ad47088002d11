package raft

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// asyncNode drives a RawNode with AsyncStorageWrites: it performs the
// storage threads' work itself, optionally holding appends back to
// deliver their responses later.
type asyncNode struct {
	t       *testing.T
	rn      *RawNode
	s       *MemoryStorage
	applied []pb.Entry
	// queued are MsgStorageAppend messages not yet written.
	queued []pb.Message
	hold   bool
}

func newAsyncNode(t *testing.T, id uint64, peers []Peer, opts ...func(*Config)) *asyncNode {
	s := NewMemoryStorage()
	cfg := testConfig(id, s)
	cfg.AsyncStorageWrites = true
	for _, o := range opts {
		o(cfg)
	}
	rn, err := NewRawNode(cfg)
	require.NoError(t, err)
	if len(peers) > 0 {
		require.NoError(t, rn.Bootstrap(peers))
	}
	return &asyncNode{t: t, rn: rn, s: s}
}

// process handles every Ready and returns the messages for peers.
func (n *asyncNode) process() []pb.Message {
	var out []pb.Message
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		for _, m := range rd.Messages {
			switch m.To {
			case LocalAppendThread:
				n.queued = append(n.queued, m)
			case LocalApplyThread:
				for _, e := range m.Entries {
					if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
						cc, err := pb.UnmarshalConfChange(e)
						require.NoError(n.t, err)
						n.rn.ApplyConfChange(cc)
					}
					n.applied = append(n.applied, e)
				}
				for _, resp := range m.Responses {
					require.NoError(n.t, n.rn.Step(resp))
				}
			default:
				out = append(out, m)
			}
		}
		if !n.hold {
			out = append(out, n.flush(len(n.queued))...)
		}
	}
	return out
}

// flush writes the first k queued appends, in order, and delivers their
// responses: those to the node are stepped, the rest returned.
func (n *asyncNode) flush(k int) []pb.Message {
	var out []pb.Message
	writes := n.queued[:k]
	n.queued = n.queued[k:]
	for _, m := range writes {
		if m.Snapshot != nil {
			require.NoError(n.t, n.s.ApplySnapshot(*m.Snapshot))
		}
		require.NoError(n.t, n.s.Append(m.Entries))
		if m.Term != 0 || m.Vote != 0 || m.Commit != 0 {
			require.NoError(n.t, n.s.SetHardState(pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}))
		}
		for _, resp := range m.Responses {
			if resp.To == n.rn.raft.id {
				require.NoError(n.t, n.rn.Step(resp))
			} else {
				out = append(out, resp)
			}
		}
	}
	return out
}

func (n *asyncNode) appliedData() [][]byte {
	var out [][]byte
	for _, e := range n.applied {
		if e.Type == pb.EntryNormal && len(e.Data) > 0 {
			out = append(out, e.Data)
		}
	}
	return out
}

// A single voter in async mode commits and applies what it is given.
func TestAsyncSingleNode(t *testing.T) {
	n := newAsyncNode(t, 1, []Peer{{ID: 1}})
	n.process()
	require.NoError(t, n.rn.Campaign())
	n.process()
	require.Equal(t, StateLeader, n.rn.BasicStatus().RaftState)
	var want [][]byte
	for i := 0; i < 20; i++ {
		data := []byte(fmt.Sprintf("c%d", i))
		require.NoError(t, n.rn.Propose(data))
		want = append(want, data)
		n.process()
	}
	require.Equal(t, want, n.appliedData())
	last, err := n.s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, n.rn.raft.raftLog.lastIndex(), last)
	require.Panics(t, func() { n.rn.Advance(Ready{}) }, "Advance is not used in async mode")
}

// The leader counts its own entry toward commit only once its append is
// durable, and committed entries are applied only once persisted.
func TestAsyncLeaderCountsItselfWhenDurable(t *testing.T) {
	n := newAsyncNode(t, 1, []Peer{{ID: 1}})
	n.process()
	require.NoError(t, n.rn.Campaign())
	n.process()
	n.hold = true
	require.NoError(t, n.rn.Propose([]byte("x")))
	for i := 0; i < 3; i++ {
		n.process()
	}
	last := n.rn.raft.raftLog.lastIndex()
	require.Less(t, n.rn.raft.raftLog.committed, last, "not committed before the write is durable")
	require.NotEmpty(t, n.queued)
	n.hold = false
	n.flush(len(n.queued))
	n.process()
	require.Equal(t, last, n.rn.raft.raftLog.committed)
	require.Equal(t, []byte("x"), n.appliedData()[0])
}

// asyncCluster runs async nodes with a seeded random delay on their
// appends, delivering peer messages in rounds.
func runAsyncCluster(t *testing.T, seed uint64, proposals [][]byte) [][][]byte {
	rnd := rand.New(rand.NewPCG(seed, 1))
	peers := []Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	nodes := map[uint64]*asyncNode{}
	for _, p := range peers {
		nodes[p.ID] = newAsyncNode(t, p.ID, peers)
	}
	round := func() bool {
		var msgs []pb.Message
		busy := false
		for id := uint64(1); id <= 3; id++ {
			n := nodes[id]
			n.hold = rnd.IntN(3) == 0 // sometimes let writes wait a round
			msgs = append(msgs, n.process()...)
			if !n.hold && len(n.queued) > 0 {
				msgs = append(msgs, n.flush(len(n.queued))...)
			}
			if len(n.queued) > 0 || n.rn.HasReady() {
				busy = true
			}
		}
		rnd.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
		for _, m := range msgs {
			_ = nodes[m.To].rn.Step(m)
		}
		return busy || len(msgs) > 0
	}
	settle := func() {
		for i := 0; i < 10000 && round(); i++ {
		}
	}
	settle()
	require.NoError(t, nodes[1].rn.Campaign())
	settle()
	require.Equal(t, StateLeader, nodes[1].rn.BasicStatus().RaftState)
	for i, p := range proposals {
		require.NoError(t, nodes[1].rn.Propose(p))
		if i%7 == 0 {
			settle()
		}
	}
	settle()
	for id := uint64(1); id <= 3; id++ {
		nodes[id].rn.Tick() // a heartbeat spreads the last commit index
	}
	settle()
	var out [][][]byte
	for id := uint64(1); id <= 3; id++ {
		out = append(out, nodes[id].appliedData())
	}
	return out
}

// A 3-node cluster in async mode, with writes completing late and
// messages reordered, applies the same sequence everywhere as a
// synchronous cluster does.
func TestAsyncClusterMatchesSync(t *testing.T) {
	var proposals [][]byte
	for i := 0; i < 50; i++ {
		proposals = append(proposals, []byte(fmt.Sprintf("p%d", i)))
	}
	sync := newTestCluster(t, 3)
	sync.campaign(1)
	for _, p := range proposals {
		require.NoError(t, sync.nodes[1].rn.Propose(p))
	}
	sync.stabilize()
	sync.tickAll(1)
	var syncApplied [][]byte
	for _, e := range sync.nodes[2].applied {
		if len(e.Data) > 0 {
			syncApplied = append(syncApplied, e.Data)
		}
	}
	require.Equal(t, proposals, syncApplied)
	for seed := uint64(1); seed <= 5; seed++ {
		for i, applied := range runAsyncCluster(t, seed, proposals) {
			require.Equal(t, syncApplied, applied, "seed %d node %d", seed, i+1)
		}
	}
}

// A write whose entries were overwritten before it completed does not mark
// the new entries at those indexes durable.
func TestAsyncStaleAppendResponseIgnored(t *testing.T) {
	n := newAsyncNode(t, 2, nil, func(c *Config) {
		s := c.Storage.(*MemoryStorage)
		require.NoError(t, s.Append(entsFrom(1, 1)))
		require.NoError(t, s.SetHardState(pb.HardState{Term: 1, Commit: 1}))
	})
	require.NoError(t, n.rn.raft.restoreConfState(pb.ConfState{Voters: []uint64{1, 2, 3}}))
	n.hold = true
	// Term 2's leader sends entry 2; the write is queued.
	require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 2, Index: 1, LogTerm: 1, Entries: entsFrom(2, 2)}))
	n.process()
	require.Len(t, n.queued, 1)
	// Term 3's leader overwrites them with its own entry 2.
	require.NoError(t, n.rn.Step(pb.Message{From: 3, To: 2, Type: pb.MsgApp, Term: 3, Index: 1, LogTerm: 1, Entries: entsFrom(2, 3)}))
	n.process()
	require.Len(t, n.queued, 2)

	// The first write completes: its response names index 2 of term 2,
	// and must not mark entry 2 of term 3 as written.
	msgs := n.flush(1)
	require.Len(t, msgs, 1, "its acknowledgement goes to term 2's leader")
	require.Equal(t, uint64(1), msgs[0].To)
	u := n.rn.raft.raftLog.unstable
	require.Equal(t, []pb.Entry{entsFrom(2, 3)[0]}, u.entries, "the new entry is still unwritten")
	n.flush(1)
	require.Empty(t, n.rn.raft.raftLog.unstable.entries)
	require.Equal(t, []uint64{1, 3}, func() []uint64 {
		ents, err := n.s.Entries(1, 3, noLimit)
		require.NoError(t, err)
		return []uint64{ents[0].Term, ents[1].Term}
	}())
}

// A leader's own acknowledgement that becomes durable after it lost its
// term counts for nothing.
func TestAsyncOwnAckAfterTermChange(t *testing.T) {
	n := newAsyncNode(t, 1, nil, func(c *Config) {
		s := c.Storage.(*MemoryStorage)
		require.NoError(t, s.Append(entsFrom(1, 1)))
		require.NoError(t, s.SetHardState(pb.HardState{Term: 1, Commit: 1}))
	})
	require.NoError(t, n.rn.raft.restoreConfState(pb.ConfState{Voters: []uint64{1, 2, 3}}))
	n.rn.raft.becomeCandidate()
	n.rn.raft.becomeLeader()
	// Node 2 holds the new entry; 1's own write is still pending.
	n.hold = true
	n.process()
	require.NoError(t, n.rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 2, Index: 2}))
	require.Equal(t, uint64(1), n.rn.raft.raftLog.committed, "its own copy is not durable yet: 1 of 3")
	// A higher term arrives before the write completes.
	require.NoError(t, n.rn.Step(pb.Message{From: 3, To: 1, Type: pb.MsgHeartbeat, Term: 5, Commit: 2}))
	require.Equal(t, StateFollower, n.rn.raft.state)
	commit := n.rn.raft.raftLog.committed
	n.flush(len(n.queued))
	n.process()
	require.Equal(t, commit, n.rn.raft.raftLog.committed)
	require.Equal(t, StateFollower, n.rn.raft.state)
}
