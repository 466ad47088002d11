package multiraft

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

// nodeCluster is nodes hosting the same groups, each host driven by a Node
// and each Node's Readys handled by a goroutine of its own: persist, send
// (marshaled, stepped into the peer's Node), apply, Advance.
type nodeCluster struct {
	t        *testing.T
	ctx      context.Context
	nodes    map[uint64]*Node
	storages map[uint64]map[uint64]*raft.MemoryStorage
	mu       sync.Mutex
	applied  map[uint64]map[uint64][]string // node -> group -> data
	// outcomes are the forwarded outcomes each node's GroupReadys carried.
	outcomes map[uint64][]raft.ForwardedOutcome
	// progress is signalled after every handled Ready.
	progress chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
}

func newNodeCluster(t *testing.T, nodes, groups int) *nodeCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c := &nodeCluster{
		t: t, ctx: ctx,
		nodes:    map[uint64]*Node{},
		storages: map[uint64]map[uint64]*raft.MemoryStorage{},
		applied:  map[uint64]map[uint64][]string{},
		outcomes: map[uint64][]raft.ForwardedOutcome{},
		progress: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	var peers []raft.Peer
	for id := uint64(1); id <= uint64(nodes); id++ {
		peers = append(peers, raft.Peer{ID: id})
	}
	for id := uint64(1); id <= uint64(nodes); id++ {
		h, err := NewHost(Config{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		c.storages[id] = map[uint64]*raft.MemoryStorage{}
		c.applied[id] = map[uint64][]string{}
		for g := uint64(1); g <= uint64(groups); g++ {
			st := raft.NewMemoryStorage()
			c.storages[id][g] = st
			if err := h.CreateGroup(g, groupConfig(1, id, g, st), peers); err != nil {
				t.Fatal(err)
			}
		}
		c.nodes[id] = StartNode(h)
	}
	for id := range c.nodes {
		c.wg.Add(1)
		go c.handle(id)
	}
	t.Cleanup(c.shutdown)
	return c
}

// shutdown stops the handlers, then the Nodes.
func (c *nodeCluster) shutdown() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	c.wg.Wait()
	for _, n := range c.nodes {
		n.Stop()
	}
}

// handle runs node id's Readys until the cluster stops. Failures are
// reported with Errorf: Fatal must not be called off the test goroutine.
func (c *nodeCluster) handle(id uint64) {
	defer c.wg.Done()
	n := c.nodes[id]
	for {
		select {
		case rd := <-n.Ready():
			if err := c.handleReady(id, n, rd); err != nil {
				c.t.Errorf("node %d: %v", id, err)
				return
			}
			n.Advance()
			select {
			case c.progress <- struct{}{}:
			default:
			}
		case <-c.stop:
			return
		}
	}
}

func (c *nodeCluster) handleReady(id uint64, n *Node, rd Ready) error {
	for _, gr := range rd.Groups {
		if err := c.storages[id][gr.GroupID].Save(gr.HardState, gr.Entries, gr.Snapshot); err != nil {
			return err
		}
		if len(gr.ForwardedOutcomes) > 0 {
			c.mu.Lock()
			c.outcomes[id] = append(c.outcomes[id], gr.ForwardedOutcomes...)
			c.mu.Unlock()
		}
	}
	for _, b := range rd.Batches {
		data, err := b.Marshal()
		if err != nil {
			return err
		}
		var in mrpb.Batch
		if err := in.Unmarshal(data); err != nil {
			return err
		}
		if err := c.nodes[b.To].Step(c.ctx, b.From, &in); err != nil && !errors.Is(err, raft.ErrStopped) {
			return err
		}
	}
	for _, gr := range rd.Groups {
		for _, e := range gr.CommittedEntries {
			switch e.Type {
			case pb.EntryConfChange, pb.EntryConfChangeV2:
				cc, err := pb.UnmarshalConfChange(e)
				if err != nil {
					return err
				}
				if _, err := n.ApplyConfChange(gr.GroupID, cc); err != nil {
					return err
				}
			case pb.EntryNormal:
				if len(e.Data) > 0 {
					c.mu.Lock()
					c.applied[id][gr.GroupID] = append(c.applied[id][gr.GroupID], string(e.Data))
					c.mu.Unlock()
				}
			}
		}
	}
	return nil
}

// waitFor returns once cond holds, checking it after every handled Ready;
// it fails the test if the cluster's deadline passes first.
func (c *nodeCluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	for !cond() {
		select {
		case <-c.progress:
		case <-c.ctx.Done():
			c.t.Fatalf("waiting for %s: %v", what, c.ctx.Err())
		}
	}
}

func (c *nodeCluster) isLeader(id, g uint64) bool {
	st, err := c.nodes[id].Status(g)
	return err == nil && st.RaftState == raft.StateLeader
}

func (c *nodeCluster) appliedData(id, g uint64) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.applied[id][g])
}

// TestNodeClusterElectsAndCommits: three hosts driven by Nodes elect the
// leaders they are asked to and commit a proposal in every group, with
// calls (Step, ApplyConfChange, Status) arriving while Readys are out.
func TestNodeClusterElectsAndCommits(t *testing.T) {
	const groups = 6
	c := newNodeCluster(t, 3, groups)
	lead := func(g uint64) uint64 { return (g-1)%3 + 1 }
	for g := uint64(1); g <= groups; g++ {
		// The bootstrap conf changes must be applied before a campaign.
		c.waitFor(fmt.Sprintf("group %d's configuration", g), func() bool {
			st, err := c.nodes[lead(g)].Status(g)
			return err == nil && st.Applied >= 3
		})
		if err := c.nodes[lead(g)].Campaign(c.ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	for g := uint64(1); g <= groups; g++ {
		c.waitFor(fmt.Sprintf("node %d to lead group %d", lead(g), g), func() bool { return c.isLeader(lead(g), g) })
		if err := c.nodes[lead(g)].Propose(c.ctx, g, []byte(fmt.Sprintf("x%d", g))); err != nil {
			t.Fatal(err)
		}
	}
	for g := uint64(1); g <= groups; g++ {
		want := []string{fmt.Sprintf("x%d", g)}
		for id := uint64(1); id <= 3; id++ {
			c.waitFor(fmt.Sprintf("node %d to apply group %d's proposal", id, g), func() bool {
				return slices.Equal(c.appliedData(id, g), want)
			})
		}
	}
}

// TestNodeProposeWithResult: through Nodes, a proposal on a group's leader
// reports where it was appended, and one on a follower is forwarded and its
// outcome arrives in a GroupReady of the follower, naming the entry
// applied there.
func TestNodeProposeWithResult(t *testing.T) {
	c := newNodeCluster(t, 3, 2)
	const g = 2
	c.waitFor("group 2's configuration", func() bool {
		st, err := c.nodes[1].Status(g)
		return err == nil && st.Applied >= 3
	})
	if err := c.nodes[1].Campaign(c.ctx, g); err != nil {
		t.Fatal(err)
	}
	c.waitFor("node 1 to lead group 2", func() bool { return c.isLeader(1, g) })
	lres, err := c.nodes[1].ProposeWithResult(c.ctx, g, []byte("on the leader"))
	if err != nil {
		t.Fatal(err)
	}
	if lres.Forwarded || lres.Index == 0 || lres.Term == 0 {
		t.Fatalf("leader's result %+v", lres)
	}
	// Node 3 must know the leader to forward.
	c.waitFor("node 3 to follow node 1", func() bool {
		st, err := c.nodes[3].Status(g)
		return err == nil && st.Lead == 1
	})
	fres, err := c.nodes[3].ProposeWithResult(c.ctx, g, []byte("on a follower"))
	if err != nil {
		t.Fatal(err)
	}
	if !fres.Forwarded || fres.ForwardID == 0 {
		t.Fatalf("follower's result %+v", fres)
	}
	c.waitFor("node 3's outcome", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.outcomes[3]) > 0
	})
	c.mu.Lock()
	o := c.outcomes[3][0]
	c.mu.Unlock()
	if o.ForwardID != fres.ForwardID || o.Unknown || o.Term != lres.Term || o.Index != lres.Index+1 {
		t.Fatalf("outcome %+v, want ForwardID %d at (%d, %d)", o, fres.ForwardID, lres.Index+1, lres.Term)
	}
	want := []string{"on the leader", "on a follower"}
	c.waitFor("node 3 to apply both", func() bool { return slices.Equal(c.appliedData(3, g), want) })
	if _, err := c.nodes[3].ProposeConfChangeWithResult(c.ctx, 9, pb.ConfChange{}); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("conf change on a missing group: %v", err)
	}
}

// TestNodeTicks: ticks reach the host; a single voter campaigns by itself
// once its election timeout has passed.
func TestNodeTicks(t *testing.T) {
	c := newNodeCluster(t, 1, 1)
	c.waitFor("the configuration", func() bool {
		st, err := c.nodes[1].Status(1)
		return err == nil && st.Applied >= 1
	})
	for range 2 * 10 {
		c.nodes[1].Tick()
	}
	c.waitFor("node 1 to lead", func() bool { return c.isLeader(1, 1) })
}

// TestNodeReadyWaitsForAdvance: the next Ready comes only after Advance,
// even when input arrives in between.
func TestNodeReadyWaitsForAdvance(t *testing.T) {
	h, err := NewHost(Config{ID: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := StartNode(h)
	defer n.Stop()
	ctx := context.Background()
	st := raft.NewMemoryStorage()
	if err := n.CreateGroup(ctx, 1, groupConfig(1, 1, 1, st), []raft.Peer{{ID: 1}}); err != nil {
		t.Fatal(err)
	}
	rd := <-n.Ready()
	if len(rd.Groups) != 1 {
		t.Fatalf("first Ready: %d groups", len(rd.Groups))
	}
	// New work while the Ready is out: served, but not offered yet.
	st2 := raft.NewMemoryStorage()
	if err := n.CreateGroup(ctx, 2, groupConfig(1, 1, 2, st2), []raft.Peer{{ID: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Status(1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Ready():
		t.Fatal("a second Ready before Advance")
	default:
	}
	if err := st.Save(rd.Groups[0].HardState, rd.Groups[0].Entries, rd.Groups[0].Snapshot); err != nil {
		t.Fatal(err)
	}
	n.Advance()
	rd = <-n.Ready()
	if !slices.ContainsFunc(rd.Groups, func(gr GroupReady) bool { return gr.GroupID == 2 }) {
		t.Fatalf("Ready after Advance without the new group: %d groups", len(rd.Groups))
	}
	storages := map[uint64]*raft.MemoryStorage{1: st, 2: st2}
	for _, gr := range rd.Groups {
		if err := storages[gr.GroupID].Save(gr.HardState, gr.Entries, gr.Snapshot); err != nil {
			t.Fatal(err)
		}
	}
	n.Advance()
	// Advance was handled before Stop (which follows): a call after it is
	// served only once the Advance is.
	if _, err := n.Status(2); err != nil {
		t.Fatal(err)
	}
}

// TestNodeStop: after Stop every call returns raft.ErrStopped or does
// nothing, none blocks, and the Node's goroutine is gone.
func TestNodeStop(t *testing.T) {
	base := runtime.NumGoroutine()
	h, err := NewHost(Config{ID: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := StartNode(h)
	ctx := context.Background()
	if err := n.CreateGroup(ctx, 1, groupConfig(1, 1, 1, raft.NewMemoryStorage()), []raft.Peer{{ID: 1}}); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := n.Propose(cancelled, 1, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Propose with a cancelled context: %v", err)
	}
	n.Stop()
	n.Stop()
	calls := map[string]error{
		"Propose":           n.Propose(ctx, 1, []byte("x")),
		"Step":              n.Step(ctx, 2, &mrpb.Batch{From: 2, To: 1}),
		"Campaign":          n.Campaign(ctx, 1),
		"ReadIndex":         n.ReadIndex(ctx, 1, nil),
		"ReportUnreachable": n.ReportUnreachable(1, 2),
	}
	_, calls["Status"] = n.Status(1)
	_, calls["ApplyConfChange"] = n.ApplyConfChange(1, pb.ConfChange{})
	for name, err := range calls {
		if !errors.Is(err, raft.ErrStopped) {
			t.Errorf("%s after Stop: %v", name, err)
		}
	}
	n.Tick()
	n.Advance()
	// Stop returns once the goroutine has closed done, its last act, but
	// the runtime counts it until it has exited: wait for that, for as long
	// as a loaded machine may take to schedule it, but not for ever.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if got := runtime.NumGoroutine(); got > base {
		t.Fatalf("%d goroutines 10s after Stop, %d before StartNode", got, base)
	}
}
