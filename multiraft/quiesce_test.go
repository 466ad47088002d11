package multiraft

import (
	"fmt"
	"slices"
	"testing"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

// quietCluster is a cluster of 3 nodes × groups with leaders spread, ticked
// until every group is quiesced.
func quietCluster(t testing.TB, groups int) *cluster {
	t.Helper()
	return quietClusterSeed(t, 1, groups)
}

// quietClusterSeed is quietCluster with the groups' randomness from seed.
func quietClusterSeed(t testing.TB, seed uint64, groups int) *cluster {
	t.Helper()
	c := newCluster(t, seed, 3, groups, Config{})
	c.electSpread()
	for range 40 {
		c.tick()
	}
	for _, n := range c.nodes {
		if a := n.host.NumActive(); a != 0 {
			t.Fatalf("node %d: %d of %d groups still active", n.id, a, n.host.NumGroups())
		}
	}
	return c
}

func TestQuiescenceStopsIdleGroups(t *testing.T) {
	c := quietCluster(t, 6)
	// From now on only node-level heartbeats travel.
	c.onBatch = func(from, to uint64, n int) {
		if n != 0 {
			t.Fatalf("batch %d->%d carries %d group messages in a quiet cluster", from, to, n)
		}
	}
	before := c.sent[[2]uint64{1, 2}]
	for range 20 {
		c.tick()
	}
	if got := c.sent[[2]uint64{1, 2}] - before; got != 10 {
		t.Fatalf("node 1 sent node 2 %d batches in 20 ticks, want 10 node heartbeats", got)
	}
}

func TestQuiescedGroupWakesOnProposal(t *testing.T) {
	c := quietCluster(t, 6)
	// Group 1 is led by node 1; propose on follower node 3.
	if err := c.node(3).host.Propose(1, []byte("wake")); err != nil {
		t.Fatal(err)
	}
	c.settle()
	for _, n := range c.nodes {
		if got := c.appliedData(n.id, 1); !slices.Equal(got, []string{"wake"}) {
			t.Fatalf("node %d applied %q", n.id, got)
		}
	}
	for _, g := range c.groups[1:] {
		if !c.node(1).host.Quiesced(g) {
			t.Fatalf("group %d woke with group 1", g)
		}
	}
	// Idle again, it quiesces again.
	for range 40 {
		c.tick()
	}
	for _, n := range c.nodes {
		if !n.host.Quiesced(1) {
			t.Fatalf("node %d: group 1 did not quiesce again", n.id)
		}
	}
}

func TestQuiescedGroupsElectWhenLeaderNodeIsDown(t *testing.T) {
	c := quietCluster(t, 6)
	c.crash(1)
	for range 60 {
		c.tick()
	}
	for _, g := range c.groups {
		l := c.leader(g)
		if l == 0 || l == 1 {
			t.Fatalf("group %d: leader %d after node 1 went down", g, l)
		}
	}
	// The groups led elsewhere stayed asleep.
	if !c.node(2).host.Quiesced(2) || !c.node(3).host.Quiesced(3) {
		t.Fatal("groups led by live nodes woke")
	}
}

func TestLeaseBasedGroupsNeverQuiesce(t *testing.T) {
	h, err := NewHost(Config{ID: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, sent: map[[2]uint64]int{}}
	n := &testNode{id: 1, host: h, storages: map[uint64]*raft.MemoryStorage{}, applied: map[uint64][]pb.Entry{}}
	c.nodes = []*testNode{n}
	for g := uint64(1); g <= 2; g++ {
		st := raft.NewMemoryStorage()
		n.storages[g] = st
		cfg := groupConfig(1, 1, g, st)
		if g == 2 {
			cfg.ReadOnlyOption = raft.ReadOnlyLeaseBased
		}
		if err := h.CreateGroup(g, cfg, []raft.Peer{{ID: 1}}); err != nil {
			t.Fatal(err)
		}
		c.groups = append(c.groups, g)
	}
	c.settle()
	for _, g := range c.groups {
		if err := h.Campaign(g); err != nil {
			t.Fatal(err)
		}
	}
	for range 40 {
		c.tick()
	}
	if !h.Quiesced(1) || h.Quiesced(2) {
		t.Fatalf("quiesced: safe-read group %v, lease-read group %v", h.Quiesced(1), h.Quiesced(2))
	}
}

// TestPendingReadKeepsLeaderAwake: a read the leader has not answered
// (its followers' acknowledgements lost) keeps the group ticking, so the
// next heartbeat round answers it once the network heals.
func TestPendingReadKeepsLeaderAwake(t *testing.T) {
	c := newCluster(t, 1, 3, 3, Config{QuiesceAfterTicks: 2})
	c.electSpread()
	var reads []string
	c.onReadState = func(n *testNode, g uint64, rs raft.ReadState) {
		reads = append(reads, fmt.Sprintf("%d/%d/%s", n.id, g, rs.RequestCtx))
	}
	c.cut = func(from, to uint64) bool { return from != 1 }
	if err := c.node(1).host.ReadIndex(1, []byte("r1")); err != nil {
		t.Fatal(err)
	}
	// Fewer ticks than the election timeout, so that CheckQuorum keeps
	// node 1 leader, but more than QuiesceAfterTicks.
	for range 8 {
		c.tick()
	}
	if c.node(1).host.Quiesced(1) {
		t.Fatal("leader quiesced with a read pending")
	}
	c.cut = nil
	for range 3 {
		c.tick()
	}
	if !slices.Equal(reads, []string{"1/1/r1"}) {
		t.Fatalf("reads answered: %q", reads)
	}
}

func TestHeartbeatsAreCoalesced(t *testing.T) {
	c := newCluster(t, 1, 3, 9, Config{DisableQuiescence: true})
	c.electSpread()
	h1, h2 := c.node(1).host, c.node(2).host
	h1.Tick()
	rd := h1.Ready()
	var to2 *batchView
	for _, b := range rd.Batches {
		if b.To == 2 {
			to2 = viewOf(b)
		}
	}
	h1.Advance(rd)
	// Node 1 leads groups 1, 4 and 7, each with a follower on node 2.
	if to2 == nil || to2.messages != 0 || !slices.Equal(to2.heartbeatGroups, []uint64{1, 4, 7}) {
		t.Fatalf("batch to node 2: %+v", to2)
	}
	b := rd.Batches[0]
	if err := h2.Step(1, b); err != nil {
		t.Fatal(err)
	}
	rd2 := h2.Ready()
	if len(rd2.Batches) != 1 || rd2.Batches[0].To != 1 {
		t.Fatalf("node 2 answers with batches to %v", batchDests(rd2.Batches))
	}
	resp := viewOf(rd2.Batches[0])
	if resp.messages != 0 || !slices.Equal(resp.responseGroups, []uint64{1, 4, 7}) {
		t.Fatalf("answer: %+v", resp)
	}
	h2.Advance(rd2)
}

// TestLaggingFollowerKeepsLeaderAwake: a leader does not quiesce while a
// follower's Match is behind the commit index; it keeps sending until the
// follower catches up.
func TestLaggingFollowerKeepsLeaderAwake(t *testing.T) {
	c := newCluster(t, 1, 3, 3, Config{QuiesceAfterTicks: 2})
	c.electSpread()
	c.cut = func(from, to uint64) bool { return from == 1 && to == 3 }
	if err := c.node(1).host.Propose(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		c.tick()
	}
	if got := c.appliedData(2, 1); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("node 2 applied %q", got)
	}
	if c.node(1).host.Quiesced(1) {
		t.Fatal("leader quiesced with node 3 behind")
	}
	c.cut = nil
	for range 3 {
		c.tick()
	}
	if got := c.appliedData(3, 1); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("node 3 applied %q after the heal", got)
	}
}

// TestReportsDoNotWakeQuiescedGroup: the application's reports (applied
// conf change, unreachable peer, snapshot status) ask nothing of the
// group's timers; waking a follower on them would only make it campaign.
func TestReportsDoNotWakeQuiescedGroup(t *testing.T) {
	c := quietCluster(t, 3)
	h := c.node(2).host
	if err := h.ReportUnreachable(1, 3); err != nil {
		t.Fatal(err)
	}
	if err := h.ReportSnapshot(1, 3, raft.SnapshotFinish); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if !h.Quiesced(1) {
		t.Fatal("a report woke the group")
	}
}

// TestQuiescedLeaderDeposedWakes: a heartbeat response of a higher term
// (which does not otherwise wake a quiesced leader) deposes it; as a
// follower it needs its election timer again.
func TestQuiescedLeaderDeposedWakes(t *testing.T) {
	c := quietCluster(t, 3)
	h := c.node(1).host
	st, _ := h.BasicStatus(1)
	b := &mrpb.Batch{From: 2, To: 1, HeartbeatResponses: []mrpb.HeartbeatResponse{{GroupID: 1, Term: st.Term + 1}}}
	if err := h.Step(2, b); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.BasicStatus(1); st.RaftState == raft.StateLeader {
		t.Fatal("still leader")
	}
	if h.Quiesced(1) {
		t.Fatal("a deposed leader stays quiesced")
	}
}

// TestFollowerWokenByPeerWakesLeader: a follower woken by a message from
// another follower must wake its leader, or its election timer runs out
// while the leader sleeps and it votes for a needless election. Node 3,
// cut off from leader node 1, wakes and campaigns; node 2 wakes on its
// PreVote. Node 1 must keep node 2 in its lease with heartbeats, so the
// term never changes.
func TestFollowerWokenByPeerWakesLeader(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		followerWokenByPeer(t, seed)
	}
}

func followerWokenByPeer(t testing.TB, seed uint64) {
	c := quietClusterSeed(t, seed, 3)
	st, _ := c.node(1).host.BasicStatus(1)
	c.cut = func(from, to uint64) bool { return from+to == 4 && from != to }
	// Node 3 wakes (its forwarded proposal is lost in the partition).
	if err := c.node(3).host.Propose(1, []byte("lost")); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		c.tick()
		for _, id := range []uint64{1, 2} {
			got, _ := c.node(id).host.BasicStatus(1)
			if got.Term != st.Term || got.Lead != 1 {
				t.Fatalf("node %d: term %d lead %d, was term %d under node 1", id, got.Term, got.Lead, st.Term)
			}
		}
	}
	// Healed, node 3 hears from its leader, and its proposal made again
	// commits in the same term.
	c.cut = nil
	for range 3 {
		c.tick()
	}
	if err := c.node(3).host.Propose(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.tick()
	}
	for _, n := range c.nodes {
		if got := c.appliedData(n.id, 1); !slices.Equal(got, []string{"x"}) {
			t.Fatalf("node %d applied %q", n.id, got)
		}
		if got, _ := n.host.BasicStatus(1); got.Term != st.Term {
			t.Fatalf("node %d: term %d, was %d", n.id, got.Term, st.Term)
		}
	}
}

// TestRemovedPeerGetsNoNodeHeartbeats: after RemovePeer, a host sends the
// node no node-level heartbeats, and a batch from it makes it a peer again.
func TestRemovedPeerGetsNoNodeHeartbeats(t *testing.T) {
	h, err := NewHost(Config{ID: 1, Peers: []uint64{2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	heartbeatsTo := func() []uint64 {
		t.Helper()
		var to []uint64
		for range 2 {
			h.Tick()
			for h.HasReady() {
				rd := h.Ready()
				for _, b := range rd.Batches {
					if b.NodeHeartbeat {
						to = append(to, b.To)
					}
				}
				h.Advance(rd)
			}
		}
		return to
	}
	if got := heartbeatsTo(); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("node heartbeats to %v, want [2 3]", got)
	}
	h.RemovePeer(3)
	h.RemovePeer(9) // not a peer: nothing happens
	if got := heartbeatsTo(); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("after RemovePeer(3), node heartbeats to %v, want [2]", got)
	}
	if err := h.Step(3, &mrpb.Batch{From: 3, To: 1, NodeHeartbeat: true}); err != nil {
		t.Fatal(err)
	}
	if got := heartbeatsTo(); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("after a batch from node 3, node heartbeats to %v, want [2 3]", got)
	}
}

// TestIdleTicksNamesTheNextTickThatActs: a host whose groups are all
// quiesced may be ticked IdleTicks at a time: the ticks before the last
// do nothing but advance its clock, and the last sends its node-level
// heartbeats or takes its silent peers for down (waking the groups asleep
// under their leaders), as ticking at every interval would have. Once a
// group ticks, IdleTicks is 1.
func TestIdleTicksNamesTheNextTickThatActs(t *testing.T) {
	// A heartbeat interval that does not divide NodeDownTicks: the peers
	// are taken for down between two heartbeats.
	c := newCluster(t, 1, 3, 6, Config{NodeHeartbeatTicks: 3, NodeDownTicks: 10})
	c.electSpread()
	for range 40 {
		c.tick()
	}
	h := c.node(1).host
	if a := h.NumActive(); a != 0 {
		t.Fatalf("%d groups active on node 1 in a quiet cluster", a)
	}
	// From now on node 1 hears nobody, and what it sends is dropped.
	heartbeats := 0
	for round := 0; h.NumActive() == 0; round++ {
		if round > 10 {
			t.Fatal("node 1 never took its silent peers for down")
		}
		n := h.IdleTicks()
		if n < 1 || n > 3 {
			t.Fatalf("round %d: IdleTicks %d with every group quiesced, want 1..NodeHeartbeatTicks", round, n)
		}
		for i := 1; i <= n; i++ {
			h.Tick()
			if acted := h.HasReady() || h.NumActive() > 0; acted != (i == n) {
				t.Fatalf("round %d: tick %d of IdleTicks %d: acted %v", round, i, n, acted)
			}
		}
		for h.HasReady() {
			rd := h.Ready()
			for _, b := range rd.Batches {
				if b.NodeHeartbeat {
					heartbeats++
				}
			}
			h.Advance(rd)
		}
	}
	if heartbeats == 0 {
		t.Fatal("node 1 sent no node-level heartbeats while alone")
	}
	if n := h.IdleTicks(); n != 1 {
		t.Fatalf("IdleTicks %d with %d groups awake, want 1", n, h.NumActive())
	}
}

// A host without peers whose groups are all quiesced has nothing to time:
// IdleTicks still stays within 1..NodeHeartbeatTicks, so that a caller
// multiplying it by its tick interval gets a sane wait (the largest int
// there overflowed to a negative duration, a loop spinning).
func TestIdleTicksBoundedWithoutPeers(t *testing.T) {
	c := newCluster(t, 1, 1, 2, Config{NodeHeartbeatTicks: 4})
	h := c.node(1).host
	for range 200 {
		c.tick()
		if h.NumActive() == 0 {
			break
		}
	}
	if h.NumActive() != 0 || h.HasReady() {
		t.Fatalf("the single node's groups did not quiesce: %d active", h.NumActive())
	}
	if n := h.IdleTicks(); n != 4 {
		t.Fatalf("IdleTicks %d without peers, want NodeHeartbeatTicks (4)", n)
	}
}

// TestUnansweredReadsDoNotKeepLeaderAwake: what keeps a leader awake is a
// read the group has pending, not every MsgReadIndex that reached it. A
// read the group refuses, a retried read (its context already pending: the
// retry replaces the first, and one answer comes back) and a local read
// asked twice with one context each leave nothing pending once answered,
// and the group quiesces again.
func TestUnansweredReadsDoNotKeepLeaderAwake(t *testing.T) {
	read := func(ctx string) pb.Message {
		m := pb.Message{Type: pb.MsgReadIndex, From: 2, To: 1}
		if ctx != "" {
			m.Entries = []pb.Entry{{Data: []byte(ctx)}}
		}
		return m
	}
	batch := func(ms ...pb.Message) *mrpb.Batch {
		b := &mrpb.Batch{From: 2, To: 1}
		for _, m := range ms {
			b.Messages = append(b.Messages, mrpb.GroupMessage{GroupID: 1, Message: m})
		}
		return b
	}
	tests := []struct {
		name string
		ask  func(h *Host) error
	}{
		{"one read", func(h *Host) error { return h.Step(2, batch(read("r"))) }},
		{"a refused read", func(h *Host) error { return h.Step(2, batch(read(""))) }},
		{"a read and its retry", func(h *Host) error { return h.Step(2, batch(read("r"), read("r"))) }},
		{"a local read asked twice", func(h *Host) error {
			if err := h.ReadIndex(1, []byte("r")); err != nil {
				return err
			}
			return h.ReadIndex(1, []byte("r"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := quietCluster(t, 3)
			h := c.node(1).host
			if err := tt.ask(h); err != nil {
				t.Fatal(err)
			}
			c.settle()
			for range 100 {
				c.tick()
			}
			if !h.Quiesced(1) {
				t.Fatal("group 1 stays awake after its reads were answered")
			}
		})
	}
}

// TestRefusedMessageDoesNotWakeGroup: a message its group refuses changes
// nothing, and wakes nothing either.
func TestRefusedMessageDoesNotWakeGroup(t *testing.T) {
	c := quietCluster(t, 3)
	h := c.node(1).host
	refused := pb.Message{Type: pb.MsgReadIndex, From: 2, To: 1} // no entry
	if err := h.Step(2, &mrpb.Batch{From: 2, To: 1, Messages: []mrpb.GroupMessage{{GroupID: 1, Message: refused}}}); err != nil {
		t.Fatal(err)
	}
	if h.Metrics().Rejected != 1 {
		t.Fatalf("metrics %+v, want one rejected message", h.Metrics())
	}
	if !h.Quiesced(1) || h.HasReady() {
		t.Fatalf("a refused message woke group 1 (quiesced %v, ready %v)", h.Quiesced(1), h.HasReady())
	}
}
