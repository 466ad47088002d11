package multiraft

import (
	"math/rand/v2"
	"testing"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

// testNode is one node of a test cluster: its host and, per group, the
// storage that outlives a crash and what it applied.
type testNode struct {
	id       uint64
	host     *Host
	hostCfg  Config
	storages map[uint64]*raft.MemoryStorage
	applied  map[uint64][]pb.Entry
	down     bool
}

// envelope is a marshaled batch in flight.
type envelope struct {
	from, to uint64
	data     []byte
}

// cluster is nodes hosting groups, joined by an in-memory transport that
// carries marshaled batches.
type cluster struct {
	t      testing.TB
	seed   uint64
	nodes  []*testNode // nodes[i].id == i+1
	queue  []envelope
	groups []uint64
	// cut drops a batch from a to b when it returns true.
	cut func(from, to uint64) bool
	// onApply sees every entry a node applies.
	onApply func(n *testNode, group uint64, e pb.Entry)
	// onPersist sees each group's Ready before it is persisted.
	onPersist func(n *testNode, gr *GroupReady)
	// onReadState sees every ReadState a node is handed.
	onReadState func(n *testNode, group uint64, rs raft.ReadState)
	// onBatch sees every batch sent, with its number of group items
	// (messages, heartbeats, heartbeat responses, wakes).
	onBatch func(from, to uint64, items int)
	// sent counts batches by (from, to).
	sent map[[2]uint64]int
}

// batchView is what a test checks of a batch.
type batchView struct {
	messages        int
	heartbeatGroups []uint64
	responseGroups  []uint64
	nodeHeartbeat   bool
}

func viewOf(b *mrpb.Batch) *batchView {
	v := &batchView{messages: len(b.Messages), nodeHeartbeat: b.NodeHeartbeat}
	for _, hb := range b.Heartbeats {
		v.heartbeatGroups = append(v.heartbeatGroups, hb.GroupID)
	}
	for _, r := range b.HeartbeatResponses {
		v.responseGroups = append(v.responseGroups, r.GroupID)
	}
	return v
}

func groupConfig(seed, node, group uint64, st *raft.MemoryStorage) raft.Config {
	return raft.Config{
		ID:              node,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         st,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		PreVote:         true,
		CheckQuorum:     true,
		Logger:          raft.DiscardLogger,
		RandomSource:    rand.NewPCG(seed^group, node),
	}
}

// newCluster starts nodes hosts, each with every group bootstrapped on all
// nodes.
func newCluster(t testing.TB, seed uint64, nodes int, groups int, hostCfg Config) *cluster {
	t.Helper()
	c := &cluster{t: t, seed: seed, sent: make(map[[2]uint64]int)}
	var peers []raft.Peer
	for i := 1; i <= nodes; i++ {
		peers = append(peers, raft.Peer{ID: uint64(i)})
	}
	for g := 1; g <= groups; g++ {
		c.groups = append(c.groups, uint64(g))
	}
	for i := 1; i <= nodes; i++ {
		n := &testNode{id: uint64(i), storages: map[uint64]*raft.MemoryStorage{}, applied: map[uint64][]pb.Entry{}}
		cfg := hostCfg
		cfg.ID = n.id
		for _, p := range peers {
			if p.ID != n.id {
				cfg.Peers = append(cfg.Peers, p.ID)
			}
		}
		n.hostCfg = cfg
		h, err := NewHost(cfg)
		if err != nil {
			t.Fatal(err)
		}
		n.host = h
		for _, g := range c.groups {
			st := raft.NewMemoryStorage()
			n.storages[g] = st
			if err := h.CreateGroup(g, groupConfig(seed, n.id, g, st), peers); err != nil {
				t.Fatal(err)
			}
		}
		c.nodes = append(c.nodes, n)
	}
	return c
}

func (c *cluster) node(id uint64) *testNode { return c.nodes[id-1] }

// handleReady runs one host Ready of n through the contract: persist,
// send, apply, Advance.
func (c *cluster) handleReady(n *testNode) {
	c.t.Helper()
	rd := n.host.Ready()
	for i := range rd.Groups {
		gr := &rd.Groups[i]
		st := n.storages[gr.GroupID]
		if st == nil {
			continue
		}
		if c.onPersist != nil {
			c.onPersist(n, gr)
		}
		if err := st.Save(gr.HardState, gr.Entries, gr.Snapshot); err != nil {
			c.t.Fatalf("node %d group %d: save: %v", n.id, gr.GroupID, err)
		}
	}
	for _, b := range rd.Batches {
		data, err := b.Marshal()
		if err != nil {
			c.t.Fatal(err)
		}
		c.sent[[2]uint64{b.From, b.To}]++
		if c.onBatch != nil {
			c.onBatch(b.From, b.To, len(b.Messages)+len(b.Heartbeats)+len(b.HeartbeatResponses)+len(b.WakeGroups))
		}
		c.queue = append(c.queue, envelope{from: b.From, to: b.To, data: data})
	}
	for i := range rd.Groups {
		gr := &rd.Groups[i]
		for _, e := range gr.CommittedEntries {
			c.apply(n, gr.GroupID, e)
		}
		if c.onReadState != nil {
			for _, rs := range gr.ReadStates {
				c.onReadState(n, gr.GroupID, rs)
			}
		}
	}
	n.host.Advance(rd)
}

func (c *cluster) apply(n *testNode, group uint64, e pb.Entry) {
	c.t.Helper()
	switch e.Type {
	case pb.EntryConfChange:
		var cc pb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			c.t.Fatal(err)
		}
		if _, err := n.host.ApplyConfChange(group, cc); err != nil {
			c.t.Fatal(err)
		}
	case pb.EntryConfChangeV2:
		var cc pb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			c.t.Fatal(err)
		}
		if _, err := n.host.ApplyConfChange(group, cc); err != nil {
			c.t.Fatal(err)
		}
	}
	n.applied[group] = append(n.applied[group], e)
	if c.onApply != nil {
		c.onApply(n, group, e)
	}
}

// settle handles Readies and delivers batches until the cluster is quiet.
func (c *cluster) settle() {
	c.t.Helper()
	for range 10000 {
		busy := false
		for _, n := range c.nodes {
			if !n.down && n.host.HasReady() {
				c.handleReady(n)
				busy = true
			}
		}
		if len(c.queue) > 0 {
			c.deliver(0)
			busy = true
		}
		if !busy {
			return
		}
	}
	c.t.Fatal("cluster does not settle")
}

// deliver delivers the i-th batch in flight.
func (c *cluster) deliver(i int) {
	c.t.Helper()
	e := c.queue[i]
	c.queue = append(c.queue[:i], c.queue[i+1:]...)
	if c.cut != nil && c.cut(e.from, e.to) {
		return
	}
	if e.to == 0 || e.to > uint64(len(c.nodes)) {
		return // no such node
	}
	to := c.node(e.to)
	if to.down {
		return
	}
	if err := to.host.StepBytes(e.from, e.data); err != nil {
		c.t.Fatalf("node %d: step from %d: %v", e.to, e.from, err)
	}
}

// tick ticks every live node once and settles.
func (c *cluster) tick() {
	c.t.Helper()
	for _, n := range c.nodes {
		if !n.down {
			n.host.Tick()
		}
	}
	c.settle()
}

// crash stops node id; its storages survive.
func (c *cluster) crash(id uint64) {
	n := c.node(id)
	n.down = true
	n.host = nil
}

// restart brings node id back from its storages; it applies its log again
// from the start.
func (c *cluster) restart(id uint64) {
	c.t.Helper()
	n := c.node(id)
	h, err := NewHost(n.hostCfg)
	if err != nil {
		c.t.Fatal(err)
	}
	n.host = h
	n.down = false
	n.applied = map[uint64][]pb.Entry{}
	for _, g := range c.groups {
		if err := h.CreateGroup(g, groupConfig(c.seed, n.id, g, n.storages[g]), nil); err != nil {
			c.t.Fatal(err)
		}
	}
}

// leader returns the node that group g's replicas on live nodes agree
// leads it, or 0.
func (c *cluster) leader(g uint64) uint64 {
	for _, n := range c.nodes {
		if n.down {
			continue
		}
		st, err := n.host.BasicStatus(g)
		if err == nil && st.RaftState == raft.StateLeader {
			return n.id
		}
	}
	return 0
}

// elect makes node (g-1)%len(nodes)+1 campaign for every group g and
// settles.
func (c *cluster) electSpread() {
	c.t.Helper()
	c.settle() // apply the bootstrap conf changes: campaigning needs them
	for _, g := range c.groups {
		n := c.nodes[(g-1)%uint64(len(c.nodes))]
		if err := n.host.Campaign(g); err != nil {
			c.t.Fatal(err)
		}
	}
	c.settle()
	for _, g := range c.groups {
		if want := uint64((g-1)%uint64(len(c.nodes)) + 1); c.leader(g) != want {
			c.t.Fatalf("group %d: leader %d, want %d", g, c.leader(g), want)
		}
	}
}

// appliedData returns the data of the normal entries node id applied in
// group g.
func (c *cluster) appliedData(id, g uint64) []string {
	var out []string
	for _, e := range c.node(id).applied[g] {
		if e.Type == pb.EntryNormal && len(e.Data) > 0 {
			out = append(out, string(e.Data))
		}
	}
	return out
}
