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
	// reads are the read states handed out, in order.
	reads []ReadState
	// queued are MsgStorageAppend messages not yet written.
	queued []pb.Message
	hold   bool
	// rec, if set, records what every Ready hands out.
	rec *handoutRecorder
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
		if n.rec != nil {
			n.rec.ready(n.rn.raft.id, rd)
		}
		n.reads = append(n.reads, rd.ReadStates...)
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
		require.NoError(n.t, saveStorageAppend(n.s, m))
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

// runAsyncCluster runs async nodes with a seeded random delay on their
// appends, delivering peer messages in rounds, and checks that nothing a
// Ready hands out is written afterwards.
func runAsyncCluster(t *testing.T, seed uint64, proposals [][]byte) [][][]byte {
	rnd := rand.New(rand.NewPCG(seed, 1))
	peers := []Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	nodes := map[uint64]*asyncNode{}
	// Nothing a Ready hands out (messages, their entries and responses)
	// may be written afterwards, while writes are held back and Readys
	// follow each other.
	rec := &handoutRecorder{t: t}
	for _, p := range peers {
		nodes[p.ID] = newAsyncNode(t, p.ID, peers)
		nodes[p.ID].rec = rec
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
		rec.check()
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

// takeAsync returns the Ready's MsgStorageAppend and MsgStorageApply (either
// may be zero) and the messages for peers.
func takeAsync(rd Ready) (appendMsg, applyMsg pb.Message, peers []pb.Message) {
	for _, m := range rd.Messages {
		switch m.To {
		case LocalAppendThread:
			appendMsg = m
		case LocalApplyThread:
			applyMsg = m
		default:
			peers = append(peers, m)
		}
	}
	return appendMsg, applyMsg, peers
}

// The append and apply threads answer independently: a follower slow to
// apply may have a leader's snapshot persisted (and its responses stepped)
// before the apply thread reports a batch handed out before the snapshot.
// That report is superseded, not a reason to panic, and the node goes on.
func TestAsyncSnapshotOvertakesLaggingApply(t *testing.T) {
	n := newAsyncNode(t, 2, []Peer{{ID: 1}, {ID: 2}, {ID: 3}})
	// The bootstrap entries 1-3 are written, then handed to the apply
	// thread, which holds them.
	rd := n.rn.Ready()
	appendMsg, _, _ := takeAsync(rd)
	n.queued = append(n.queued, appendMsg)
	n.flush(1)
	rd = n.rn.Ready()
	_, lagging, _ := takeAsync(rd)
	require.NotEmpty(t, lagging.Entries, "entries 1-3 are handed to the apply thread")
	require.Equal(t, uint64(3), lagging.Entries[len(lagging.Entries)-1].Index)

	// The leader sends a snapshot at index 10; the append thread persists
	// it and its responses are stepped first.
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 10, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgSnap, From: 1, To: 2, Term: 1, Snapshot: &snap}))
	rd = n.rn.Ready()
	appendMsg, _, _ = takeAsync(rd)
	require.NotNil(t, appendMsg.Snapshot)
	n.queued = append(n.queued, appendMsg)
	out := n.flush(1)
	require.Equal(t, uint64(10), n.rn.Status().Applied)
	require.Len(t, out, 1)
	require.Equal(t, pb.MsgAppResp, out[0].Type)
	require.Equal(t, uint64(10), out[0].Index)

	// Now the apply thread reports the batch it was given before.
	for _, resp := range lagging.Responses {
		require.NotPanics(t, func() { require.NoError(t, n.rn.Step(resp)) })
	}
	st := n.rn.Status()
	require.Equal(t, uint64(10), st.Applied, "the snapshot, not the stale batch, sets applied")
	require.Equal(t, uint64(10), st.Commit)

	// Entries after the snapshot still commit and reach the apply thread
	// (the stale batch gave its size budget back).
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgApp, From: 1, To: 2, Term: 1, Index: 10, LogTerm: 1, Commit: 11,
		Entries: []pb.Entry{{Index: 11, Term: 1, Data: []byte("after")}}}))
	n.process()
	require.Equal(t, [][]byte{[]byte("after")}, n.appliedData())
	require.Equal(t, uint64(11), n.rn.Status().Applied)
}

// A leader's snapshots may arrive faster than the append thread writes
// them: each one replaces the log while the one before is still queued
// for writing. The application installs every snapshot it writes in its
// state machine, so each write's response reports that snapshot applied,
// superseded or not: the node's applied index never stays below the state
// machine's (it did, until the newest snapshot's write came back).
func TestAsyncSupersededSnapshotWritesReportApplied(t *testing.T) {
	n := newAsyncNode(t, 2, []Peer{{ID: 1}, {ID: 2}, {ID: 3}})
	n.process()
	require.Equal(t, uint64(3), n.rn.Status().Applied)
	var writes []pb.Message
	for _, i := range []uint64{10, 20, 30} {
		snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: i, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}
		require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgSnap, From: 1, To: 2, Term: 1, Snapshot: &snap}))
		write, _, _ := takeAsync(n.rn.Ready())
		require.NotNil(t, write.Snapshot)
		require.Equal(t, i, write.Snapshot.Metadata.Index)
		writes = append(writes, write)
	}
	n.queued = append(n.queued, writes...)
	for _, want := range []uint64{10, 20, 30} {
		n.flush(1)
		st := n.rn.Status()
		require.Equal(t, want, st.Applied, "the write of the snapshot at %d reports it applied", want)
		require.Equal(t, uint64(30), st.Commit)
	}
	require.Empty(t, n.rn.raft.seldom.supersededWrites)

	// Entries after the newest snapshot commit and are applied.
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgApp, From: 1, To: 2, Term: 1, Index: 30, LogTerm: 1, Commit: 31,
		Entries: []pb.Entry{{Index: 31, Term: 1, Data: []byte("after")}}}))
	n.process()
	require.Equal(t, [][]byte{[]byte("after")}, n.appliedData())
	require.Equal(t, uint64(31), n.rn.Status().Applied)
}

// A batch handed to the apply thread before two snapshots and reported
// after the first one's write is superseded by it: applied stays at the
// snapshot, and entries after the newest snapshot are handed out once the
// newest is written.
func TestAsyncLaggingApplyBehindSupersededSnapshot(t *testing.T) {
	n := newAsyncNode(t, 2, []Peer{{ID: 1}, {ID: 2}, {ID: 3}})
	rd := n.rn.Ready()
	appendMsg, _, _ := takeAsync(rd)
	n.queued = append(n.queued, appendMsg)
	n.flush(1)
	_, lagging, _ := takeAsync(n.rn.Ready())
	require.Equal(t, uint64(3), lagging.Entries[len(lagging.Entries)-1].Index)

	var writes []pb.Message
	for _, i := range []uint64{10, 20} {
		snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: i, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}
		require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgSnap, From: 1, To: 2, Term: 1, Snapshot: &snap}))
		write, _, _ := takeAsync(n.rn.Ready())
		writes = append(writes, write)
	}
	n.queued = append(n.queued, writes...)
	n.flush(1)
	require.Equal(t, uint64(10), n.rn.Status().Applied)
	for _, resp := range lagging.Responses {
		require.NoError(t, n.rn.Step(resp))
	}
	require.Equal(t, uint64(10), n.rn.Status().Applied, "the stale batch is superseded by the snapshot at 10")
	n.flush(1)
	require.Equal(t, uint64(20), n.rn.Status().Applied)
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgApp, From: 1, To: 2, Term: 1, Index: 20, LogTerm: 1, Commit: 21,
		Entries: []pb.Entry{{Index: 21, Term: 1, Data: []byte("after")}}}))
	n.process()
	require.Equal(t, [][]byte{[]byte("after")}, n.appliedData())
	require.Equal(t, uint64(21), n.rn.Status().Applied)
}

// asyncCluster routes messages between asyncNodes and records who led
// which term, in which incarnation (restarts count up).
type asyncCluster struct {
	t           *testing.T
	nodes       map[uint64]*asyncNode
	incarnation map[uint64]int
	// led maps a term to the leaderships seen in it.
	led map[uint64][]string
	// cut drops messages from one node to another.
	cut map[[2]uint64]bool
}

func newAsyncCluster(t *testing.T, ids ...uint64) *asyncCluster {
	c := &asyncCluster{t: t, nodes: map[uint64]*asyncNode{}, incarnation: map[uint64]int{},
		led: map[uint64][]string{}, cut: map[[2]uint64]bool{}}
	var peers []Peer
	for _, id := range ids {
		peers = append(peers, Peer{ID: id})
	}
	for _, id := range ids {
		c.nodes[id] = newAsyncNode(t, id, peers)
	}
	return c
}

// noteLeader records n's leadership the first time this incarnation shows
// it.
func (c *asyncCluster) noteLeader(id uint64) {
	st := c.nodes[id].rn.BasicStatus()
	if st.RaftState != StateLeader {
		return
	}
	who := fmt.Sprintf("node %d incarnation %d", id, c.incarnation[id])
	for _, w := range c.led[st.Term] {
		if w == who {
			return
		}
	}
	c.led[st.Term] = append(c.led[st.Term], who)
}

// run delivers msgs, and everything they cause, until the cluster is quiet.
func (c *asyncCluster) run(msgs []pb.Message) {
	for len(msgs) > 0 {
		var next []pb.Message
		for _, m := range msgs {
			if c.cut[[2]uint64{m.From, m.To}] {
				continue
			}
			n := c.nodes[m.To]
			_ = n.rn.Step(m)
			c.noteLeader(m.To)
			next = append(next, n.process()...)
			c.noteLeader(m.To)
		}
		msgs = next
	}
}

func (c *asyncCluster) process(id uint64) []pb.Message {
	out := c.nodes[id].process()
	c.noteLeader(id)
	return out
}

// crash loses id's writes not yet done and restarts it from its storage.
func (c *asyncCluster) crash(id uint64) {
	old := c.nodes[id]
	cfg := testConfig(id, old.s)
	cfg.AsyncStorageWrites = true
	rn, err := NewRawNode(cfg)
	require.NoError(c.t, err)
	c.nodes[id] = &asyncNode{t: c.t, rn: rn, s: old.s}
	c.incarnation[id]++
	c.run(c.process(id)) // apply what it had committed
}

// With AsyncStorageWrites, a candidate's vote requests leave only once its
// new term and its vote for itself are durable. Otherwise (as in etcd raft)
// this sequence makes node 1 lead term 2 twice: it wins term 2 on the
// votes of 2 and 3 while its own write is pending, puts "x" at (index 5,
// term 2) on node 2 only, crashes before its write lands and restarts in
// term 1; cut off from node 2 it wins term 2 again with node 3 and puts
// "z" at (index 5, term 2). Node 2 would then keep "x" where the others
// have "z" under the same index and term, and no conflict is ever seen.
func TestAsyncCandidateAsksVotesOnlyOnceItsTermIsDurable(t *testing.T) {
	c := newAsyncCluster(t, 1, 2, 3)
	for id := uint64(1); id <= 3; id++ {
		c.process(id)
	}
	n1 := c.nodes[1]
	n1.hold = true // node 1's writes stay pending
	require.NoError(t, n1.rn.Campaign())
	out := c.process(1)
	for _, m := range out {
		require.NotEqual(t, pb.MsgVote, m.Type, "a vote request left before the candidate's term was durable")
	}
	// Nodes 2 and 3 answer whatever reached them; from then on node 1
	// reaches only node 2.
	var replies []pb.Message
	for _, m := range out {
		require.NoError(t, c.nodes[m.To].rn.Step(m))
		replies = append(replies, c.process(m.To)...)
	}
	c.cut[[2]uint64{1, 3}] = true
	c.run(replies)
	if n1.rn.BasicStatus().RaftState == StateLeader {
		require.NoError(t, n1.rn.Propose([]byte("x")))
		c.run(c.process(1))
	}
	delete(c.cut, [2]uint64{1, 3})
	require.NotEmpty(t, n1.queued, "node 1's term and vote are still being written")

	// Node 1 crashes before its write lands, cut off from node 2.
	c.crash(1)
	c.cut[[2]uint64{1, 2}], c.cut[[2]uint64{2, 1}] = true, true
	require.NoError(t, c.nodes[1].rn.Campaign())
	c.run(c.process(1))
	require.Equal(t, StateLeader, c.nodes[1].rn.BasicStatus().RaftState)
	require.NoError(t, c.nodes[1].rn.Propose([]byte("z")))
	c.run(c.process(1))

	// Heal and let heartbeats bring node 2 in line.
	clear(c.cut)
	for i := 0; i < 5; i++ {
		for id := uint64(1); id <= 3; id++ {
			c.nodes[id].rn.Tick()
			c.run(c.process(id))
		}
	}

	for term, who := range c.led {
		require.Len(t, who, 1, "term %d was led more than once: %v", term, who)
	}
	// Log Matching: an index and term name one entry on every node.
	logs := map[uint64][]pb.Entry{}
	for id, n := range c.nodes {
		logs[id] = n.rn.raft.raftLog.allEntries()
	}
	for a := uint64(1); a <= 3; a++ {
		for b := a + 1; b <= 3; b++ {
			for _, ea := range logs[a] {
				for _, eb := range logs[b] {
					if ea.Index == eb.Index && ea.Term == eb.Term {
						require.Equal(t, ea.Data, eb.Data, "nodes %d and %d hold different entries at index %d term %d", a, b, ea.Index, ea.Term)
					}
				}
			}
		}
	}
	require.Equal(t, c.nodes[1].rn.raft.raftLog.lastEntryID(), c.nodes[2].rn.raft.raftLog.lastEntryID())
}

// A follower that took many appends while its write was slow hands out a
// MsgStorageAppend with one acknowledgement each: encoded and decoded (an
// application shipping storage work to another process), it comes back
// whole, however many there are.
func TestAsyncStorageAppendWithManyResponsesRoundTrips(t *testing.T) {
	n := newAsyncNode(t, 2, []Peer{{ID: 1}, {ID: 2}, {ID: 3}})
	n.process()
	for i := uint64(0); i < 300; i++ {
		idx, lt := 3+i, uint64(2)
		if idx <= 3 {
			lt = 1
		}
		require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 2, Index: idx, LogTerm: lt, Commit: 3,
			Entries: []pb.Entry{{Index: idx + 1, Term: 2, Data: []byte("x")}}}))
	}
	appendMsg, _, _ := takeAsync(n.rn.Ready())
	require.Greater(t, len(appendMsg.Responses), pb.MaxResponses)
	b, err := appendMsg.Marshal()
	require.NoError(t, err)
	var m pb.Message
	require.NoError(t, m.Unmarshal(b))
	require.Equal(t, len(appendMsg.Responses), len(m.Responses))
}

// With AsyncStorageWrites, a write's late acknowledgement does not make
// durable an index and term that a later write replaced and a still later
// one brought back: W1 writes 6@2 and 7@2, W2 replaces 6 with 6@3 (a
// leader of term 3), W3 writes 6@2 and 7@2 again (the first leader, back
// in term 4). W1's acknowledgement matches the log again, but storage
// holds 6@3 once W2 lands: taken, the node would apply 6@3 as the
// committed entry at 6 (or, committing 7, find it missing from storage).
func TestAsyncLateAckOfReplacedWrite(t *testing.T) {
	peers := []Peer{{ID: 1}, {ID: 2}, {ID: 3}, {ID: 4}, {ID: 5}}
	n := newAsyncNode(t, 3, peers)
	n.process() // the bootstrap entries 1..5 (term 1), durable
	n.hold = true
	app := func(from, term uint64, ents ...pb.Entry) {
		require.NoError(t, n.rn.Step(pb.Message{From: from, To: 3, Type: pb.MsgApp, Term: term,
			Index: 5, LogTerm: 1, Entries: ents, Commit: 5}))
		n.process()
	}
	e := func(i, t uint64) pb.Entry { return pb.Entry{Index: i, Term: t, Data: []byte{byte(i), byte(t)}} }
	app(1, 2, e(6, 2), e(7, 2)) // W1: leader 1, term 2
	app(2, 3, e(6, 3))          // W2: leader 2, term 3, replaces 6
	app(1, 4, e(6, 2), e(7, 2)) // W3: leader 1 again, term 4
	require.Len(t, n.queued, 3)
	n.flush(1) // W1 durable, its acknowledgement stepped
	n.flush(1) // W2 durable; W3 still queued
	require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 3, Type: pb.MsgHeartbeat, Term: 4, Commit: 6}))
	n.process()
	for _, got := range n.applied {
		if got.Index == 6 {
			t.Fatalf("applied %d@%d before the write of the committed entry 6@2 was durable", got.Index, got.Term)
		}
	}
	n.hold = false
	n.flush(1) // W3 durable: now 6@2 is, and it is applied
	n.process()
	require.Equal(t, e(6, 2), n.applied[len(n.applied)-1])
}

// With AsyncStorageWrites a single voter may apply an entry (and the
// application acknowledge it) before the HardState carrying its commit
// index is durable. Restarted after a crash that lost that HardState and
// elected again, it must not answer a read from the lagging commit index:
// the read waits until the entry of its new term commits.
func TestAsyncSingleVoterReadAfterRestartCoversAckedWrite(t *testing.T) {
	n := newAsyncNode(t, 1, []Peer{{ID: 1}})
	n.process()
	require.NoError(t, n.rn.Campaign())
	n.process()
	require.Equal(t, StateLeader, n.rn.raft.state)

	// The write of w's entry lands; the one of the commit index after it
	// does not before the crash.
	n.hold = true
	require.NoError(t, n.rn.Propose([]byte("w")))
	for n.rn.HasReady() || len(n.queued) > 0 {
		n.process()
		for len(n.queued) > 0 {
			if m := n.queued[0]; len(m.Entries) == 0 && m.Snapshot == nil {
				n.queued = n.queued[1:] // lost in the crash
				continue
			}
			n.flush(1)
		}
	}
	acked := n.applied[len(n.applied)-1]
	require.Equal(t, "w", string(acked.Data), "applied: acknowledged to its client")
	hs, _, err := n.s.InitialState()
	require.NoError(t, err)
	require.Less(t, hs.Commit, acked.Index, "the durable commit index lags")

	cfg := testConfig(1, n.s)
	cfg.AsyncStorageWrites = true
	rn, err := NewRawNode(cfg)
	require.NoError(t, err)
	n = &asyncNode{t: t, rn: rn, s: n.s}
	n.process() // replays the committed entries the durable HardState names
	n.hold = true
	require.NoError(t, n.rn.Campaign())
	n.process()
	n.flush(1) // the vote, durable: leader
	n.process()
	require.Equal(t, StateLeader, n.rn.raft.state)
	require.NotEmpty(t, n.queued, "the new term's entry is not durable yet")
	n.rn.ReadIndex([]byte("r"))
	n.process()
	require.Empty(t, n.reads, "no read before an entry of the new term commits")

	n.hold = false
	n.flush(len(n.queued))
	n.process()
	require.Len(t, n.reads, 1)
	require.GreaterOrEqual(t, n.reads[0].Index, acked.Index, "the read covers the acknowledged write")
}

// A late acknowledgement of a write that a later write superseded is
// ignored, not refused, even when the log holds the same index and term
// again in an entry not yet handed out for writing: W1 writes 6@2, W2
// replaces it with 6@3, and a third append brings 6@2 back before the
// next Ready. W1's response is a legitimate one of an older write epoch.
func TestAsyncLateAckOfSupersededWriteBeforeRewrite(t *testing.T) {
	n := newAsyncNode(t, 1, []Peer{{ID: 1}, {ID: 2}, {ID: 3}, {ID: 4}, {ID: 5}})
	n.process() // the bootstrap entries 1..5 (term 1), durable
	n.hold = true
	app := func(from, term uint64, e pb.Entry) {
		require.NoError(t, n.rn.Step(pb.Message{From: from, To: 1, Type: pb.MsgApp, Term: term,
			Index: 5, LogTerm: 1, Entries: []pb.Entry{e}, Commit: 5}))
	}
	a := pb.Entry{Index: 6, Term: 2, Data: []byte("a")}
	app(2, 2, a)
	n.process() // W1: 6@2
	app(3, 3, pb.Entry{Index: 6, Term: 3, Data: []byte("b")})
	n.process()  // W2: 6@3
	app(2, 4, a) // 6@2 again, not handed out yet
	require.Len(t, n.queued, 2)

	w1 := n.queued[0]
	n.queued = n.queued[1:]
	require.NoError(t, saveStorageAppend(n.s, w1))
	u := n.rn.raft.raftLog.unstable
	for _, resp := range w1.Responses {
		if resp.To == 1 {
			require.NoError(t, n.rn.Step(resp), "%s", DescribeMessage(resp, nil))
		}
	}
	require.Equal(t, u.offset, n.rn.raft.raftLog.unstable.offset)
	require.Equal(t, u.offsetInProgress, n.rn.raft.raftLog.unstable.offsetInProgress)

	n.hold = false
	n.process()
	n.flush(len(n.queued))
	require.Equal(t, uint64(7), n.rn.raft.raftLog.unstable.offset)
	ents, err := n.s.Entries(6, 7, noLimit)
	require.NoError(t, err)
	require.Equal(t, []pb.Entry{a}, ents)
}
