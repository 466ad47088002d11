package raft

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// testNode is a RawNode on MemoryStorage driven through the Ready contract
// by tests that also inspect its internal state.
type testNode struct {
	t       testing.TB
	rn      *RawNode
	storage *MemoryStorage
	applied []pb.Entry
	// reads are the read states handed out, in order.
	reads []ReadState
}

// testConfig returns a config for node id with election timeout 10 and
// heartbeat 1 and a fixed random source.
func testConfig(id uint64, s *MemoryStorage) *Config {
	return &Config{
		ID:              id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         s,
		MaxSizePerMsg:   noLimit,
		MaxInflightMsgs: 256,
		Logger:          DiscardLogger,
		RandomSource:    rand.NewPCG(1, id),
	}
}

// newTestNode builds node id whose storage holds the configuration voters
// (and no entries). opts adjust the config.
func newTestNode(t testing.TB, id uint64, voters []uint64, opts ...func(*Config)) *testNode {
	t.Helper()
	s := NewMemoryStorage()
	cfg := testConfig(id, s)
	for _, o := range opts {
		o(cfg)
	}
	rn, err := NewRawNode(cfg)
	require.NoError(t, err)
	require.NoError(t, rn.raft.restoreConfState(pb.ConfState{Voters: voters}))
	n := &testNode{t: t, rn: rn, storage: s}
	t.Cleanup(func() { checkNodeInvariants(t, n) })
	return n
}

func withPreVote(c *Config)     { c.PreVote = true }
func withCheckQuorum(c *Config) { c.CheckQuorum = true }

// r is the node's protocol state.
func (n *testNode) r() *raft { return n.rn.raft }

// step delivers m, failing the test on an error.
func (n *testNode) step(m pb.Message) {
	n.t.Helper()
	require.NoError(n.t, n.rn.raft.Step(m))
}

// ready handles every pending Ready (persist, collect messages, apply,
// advance) and returns the messages to send.
func (n *testNode) ready() []pb.Message {
	n.t.Helper()
	var msgs []pb.Message
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		require.NoError(n.t, n.storage.Save(rd.HardState, rd.Entries, rd.Snapshot))
		msgs = append(msgs, rd.Messages...)
		n.reads = append(n.reads, rd.ReadStates...)
		for _, e := range rd.CommittedEntries {
			if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
				cc, err := pb.UnmarshalConfChange(e)
				require.NoError(n.t, err)
				n.rn.ApplyConfChange(cc)
			}
			n.applied = append(n.applied, e)
		}
		n.rn.Advance(rd)
	}
	return msgs
}

// tick advances the node's clock k ticks.
func (n *testNode) tick(k int) {
	for i := 0; i < k; i++ {
		n.rn.Tick()
	}
}

// checkNodeInvariants checks what must hold for any node at any time.
func checkNodeInvariants(t testing.TB, n *testNode) {
	t.Helper()
	r := n.r()
	l := r.raftLog
	require.LessOrEqual(t, l.applied, l.committed, "applied <= committed")
	require.LessOrEqual(t, l.committed, l.lastIndex(), "committed <= lastIndex")
	if r.state == StateLeader {
		require.Equal(t, r.id, r.lead, "a leader leads itself")
	}
	if r.Vote != None && r.state == StateCandidate {
		require.Equal(t, r.id, r.Vote, "a candidate votes for itself")
	}
}

// testCluster connects testNodes and delivers messages between them, with
// links that can be cut.
type testCluster struct {
	t     testing.TB
	nodes map[uint64]*testNode
	ids   []uint64
	cut   map[[2]uint64]bool
	// delivered counts messages delivered, by type.
	delivered map[pb.MessageType]int
	// intercept, if set, sees every message before delivery; it may change
	// it, or drop it by returning false.
	intercept func(*pb.Message) bool
}

func newTestCluster(t testing.TB, size int, opts ...func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, nodes: map[uint64]*testNode{}, cut: map[[2]uint64]bool{}, delivered: map[pb.MessageType]int{}}
	var voters []uint64
	for i := 1; i <= size; i++ {
		voters = append(voters, uint64(i))
	}
	for _, id := range voters {
		c.nodes[id] = newTestNode(t, id, voters, opts...)
		c.ids = append(c.ids, id)
	}
	return c
}

// newBootstrappedCluster is a cluster whose nodes were started with
// Bootstrap, so that their logs hold the initial membership: nodes added
// later learn the whole configuration from the log.
func newBootstrappedCluster(t testing.TB, size int, opts ...func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, nodes: map[uint64]*testNode{}, cut: map[[2]uint64]bool{}, delivered: map[pb.MessageType]int{}}
	var peers []Peer
	for i := 1; i <= size; i++ {
		peers = append(peers, Peer{ID: uint64(i)})
	}
	for _, p := range peers {
		n := newTestNode(t, p.ID, nil, opts...)
		require.NoError(t, n.rn.Bootstrap(peers))
		c.nodes[p.ID] = n
		c.ids = append(c.ids, p.ID)
	}
	c.stabilize()
	return c
}

func (c *testCluster) isolate(id uint64) {
	for _, other := range c.ids {
		if other != id {
			c.cut[[2]uint64{id, other}] = true
			c.cut[[2]uint64{other, id}] = true
		}
	}
}

func (c *testCluster) heal() { c.cut = map[[2]uint64]bool{} }

// stabilize processes Readys and delivers messages until quiet.
func (c *testCluster) stabilize() {
	c.t.Helper()
	for round := 0; round < 10000; round++ {
		var msgs []pb.Message
		for _, id := range c.ids {
			msgs = append(msgs, c.nodes[id].ready()...)
		}
		if len(msgs) == 0 {
			return
		}
		for _, m := range msgs {
			if c.cut[[2]uint64{m.From, m.To}] || (c.intercept != nil && !c.intercept(&m)) {
				continue
			}
			to := c.nodes[m.To]
			if to == nil {
				continue
			}
			c.delivered[m.Type]++
			_ = to.rn.Step(m)
		}
	}
	c.t.Fatalf("cluster did not stabilize")
}

// stabilizeOnce handles one Ready on every node and delivers the
// resulting messages once.
func (c *testCluster) stabilizeOnce() {
	c.t.Helper()
	var msgs []pb.Message
	for _, id := range c.ids {
		msgs = append(msgs, c.nodes[id].ready()...)
	}
	for _, m := range msgs {
		if c.cut[[2]uint64{m.From, m.To}] || (c.intercept != nil && !c.intercept(&m)) {
			continue
		}
		if to := c.nodes[m.To]; to != nil {
			c.delivered[m.Type]++
			_ = to.rn.Step(m)
		}
	}
}

// tickAll ticks every node k times, stabilizing after each tick.
func (c *testCluster) tickAll(k int) {
	for i := 0; i < k; i++ {
		for _, id := range c.ids {
			c.nodes[id].tick(1)
		}
		c.stabilize()
	}
}

// leaders returns the nodes that consider themselves leader.
func (c *testCluster) leaders() []uint64 {
	var out []uint64
	for _, id := range c.ids {
		if c.nodes[id].r().state == StateLeader {
			out = append(out, id)
		}
	}
	return out
}

// campaign makes node id campaign and stabilizes.
func (c *testCluster) campaign(id uint64) {
	c.t.Helper()
	require.NoError(c.t, c.nodes[id].rn.Campaign())
	c.stabilize()
}

// withLog fills the node's storage with entries 1..len(terms) of the given
// terms and a hard state of term (so a campaign starts at term+1).
func withLog(term uint64, terms ...uint64) func(*Config) {
	return func(c *Config) {
		s := c.Storage.(*MemoryStorage)
		if err := s.Append(entsFrom(1, terms...)); err != nil {
			panic(err)
		}
		if err := s.SetHardState(pb.HardState{Term: term}); err != nil {
			panic(err)
		}
	}
}

// newTestClusterOf joins already built nodes into a cluster.
func newTestClusterOf(t testing.TB, nodes ...*testNode) *testCluster {
	c := &testCluster{t: t, nodes: map[uint64]*testNode{}, cut: map[[2]uint64]bool{}, delivered: map[pb.MessageType]int{}}
	for _, n := range nodes {
		c.nodes[n.r().id] = n
		c.ids = append(c.ids, n.r().id)
	}
	return c
}

// makeLeader turns the node into the leader of the next term without an
// election (for unit tests of leader behaviour) and handles its Ready.
// Peers start in the probe state, with one probe each in the returned
// messages.
func (n *testNode) makeLeader() []pb.Message {
	n.t.Helper()
	n.r().becomeCandidate()
	n.r().becomeLeader()
	n.r().bcastAppend()
	return n.ready()
}

// filterMsgs returns the messages of type typ to node to (to 0 means any).
func filterMsgs(msgs []pb.Message, typ pb.MessageType, to uint64) []pb.Message {
	var out []pb.Message
	for _, m := range msgs {
		if m.Type == typ && (to == 0 || m.To == to) {
			out = append(out, m)
		}
	}
	return out
}

// logTerms returns the terms of the node's whole log, index 1 first.
func (n *testNode) logTerms() []uint64 {
	var out []uint64
	for _, e := range n.r().raftLog.allEntries() {
		out = append(out, e.Term)
	}
	return out
}

// requireDropped checks that err is the drop reason want and, as every
// reason is, ErrProposalDropped.
func requireDropped(t testing.TB, err, want error, msgAndArgs ...any) {
	t.Helper()
	require.ErrorIs(t, err, ErrProposalDropped, msgAndArgs...)
	require.ErrorIs(t, err, want, msgAndArgs...)
}

// saveStorageAppend does what a MsgStorageAppend asks of the append thread:
// write its snapshot, entries and hard state to s (its responses are the
// caller's to deliver).
func saveStorageAppend(s *MemoryStorage, m pb.Message) error {
	var snap pb.Snapshot
	if m.Snapshot != nil {
		snap = *m.Snapshot
	}
	return s.Save(pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}, m.Entries, snap)
}
