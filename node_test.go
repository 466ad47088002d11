package raft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// requireNoNodeGoroutines fails if a node's goroutine is still running a
// moment after every node was stopped.
func requireNoNodeGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if !bytes.Contains(buf[:n], []byte("raft.(*node).run")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a node goroutine is still running:\n%s", buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitBlockedIn waits until some goroutine is blocked in a select or a
// channel operation inside fn (as a stack trace names it).
func waitBlockedIn(t testing.TB, fn string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(g, fn) && (strings.Contains(header, "[select") || strings.Contains(header, "[chan ")) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine blocked in %s:\n%s", fn, buf[:n])
		}
		runtime.Gosched()
	}
}

// liveNode is a Node with a real driver goroutine: it ticks every
// millisecond and follows the Ready contract.
type liveNode struct {
	id      uint64
	cfg     *Config
	storage *MemoryStorage
	node    Node
	inbox   chan pb.Message // kept across restarts
	stopc   chan struct{}
	wg      sync.WaitGroup

	mu        sync.Mutex
	applied   []pb.Entry
	confState pb.ConfState
}

// liveCluster connects liveNodes through buffered inboxes (a full inbox
// drops, like a lossy network).
type liveCluster struct {
	t     testing.TB
	mu    sync.Mutex
	nodes map[uint64]*liveNode
	// fsync is how long a durable write takes (0: instant); async runs
	// the nodes with AsyncStorageWrites and a storage goroutine each.
	fsync time.Duration
	async bool
}

func newLiveCluster(t testing.TB, size int) *liveCluster {
	return newLiveClusterWith(t, size, 0, false)
}

func newLiveClusterWith(t testing.TB, size int, fsync time.Duration, async bool) *liveCluster {
	c := &liveCluster{t: t, nodes: map[uint64]*liveNode{}, fsync: fsync, async: async}
	var peers []Peer
	for i := 1; i <= size; i++ {
		peers = append(peers, Peer{ID: uint64(i)})
	}
	for _, p := range peers {
		s := NewMemoryStorage()
		cfg := testConfig(p.ID, s)
		cfg.MaxSizePerMsg = 1 << 20
		cfg.AsyncStorageWrites = async
		// Ticks are 1 ms of wall time: an election timeout of 100-200 ms
		// keeps a loaded machine (-race, two cores) from changing leaders
		// all the time.
		cfg.ElectionTick = 100
		ln := &liveNode{id: p.ID, cfg: cfg, storage: s, inbox: make(chan pb.Message, 4096)}
		ln.node = StartNode(cfg, peers)
		c.nodes[p.ID] = ln
	}
	for _, ln := range c.nodes {
		c.run(ln)
	}
	return c
}

func (c *liveCluster) node(id uint64) *liveNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *liveCluster) send(msgs []pb.Message) {
	for _, m := range msgs {
		to := c.node(m.To)
		if to == nil {
			continue
		}
		select {
		case to.inbox <- m:
		default: // dropped
		}
	}
}

// run starts ln's driver and delivery goroutines.
func (c *liveCluster) run(ln *liveNode) {
	ln.stopc = make(chan struct{})
	ln.wg.Add(2)
	go func() { // delivery
		defer ln.wg.Done()
		for {
			select {
			case m := <-ln.inbox:
				_ = ln.node.Step(context.Background(), m)
			case <-ln.stopc:
				return
			}
		}
	}()
	if c.async {
		c.runAsync(ln)
		return
	}
	go func() { // the Ready loop
		defer ln.wg.Done()
		ticker := time.NewTicker(time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
				ln.node.Tick()
			case rd := <-ln.node.Ready():
				if rd.MustSync && c.fsync > 0 {
					time.Sleep(c.fsync)
				}
				_ = ln.storage.Save(rd.HardState, rd.Entries, rd.Snapshot)
				c.send(rd.Messages)
				for _, e := range rd.CommittedEntries {
					if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
						cc, err := pb.UnmarshalConfChange(e)
						if err == nil {
							if cs := ln.node.ApplyConfChange(cc); cs != nil {
								ln.mu.Lock()
								ln.confState = *cs
								ln.mu.Unlock()
							}
						}
					}
					ln.mu.Lock()
					ln.applied = append(ln.applied, e)
					ln.mu.Unlock()
				}
				ln.node.Advance()
			case <-ln.stopc:
				return
			}
		}
	}()
}

// runAsync starts ln's delivery, Ready loop and storage goroutines for
// AsyncStorageWrites: writes (with their fsync) happen on the storage
// goroutine while the Ready loop goes on.
func (c *liveCluster) runAsync(ln *liveNode) {
	appendc := make(chan pb.Message, 1024)
	ln.wg.Add(1) // run counted the delivery goroutine and a Ready loop
	go func() {  // storage thread
		defer ln.wg.Done()
		for {
			select {
			case first := <-appendc:
				// Take every write waiting and make them durable with a
				// single sync, as a real storage thread would.
				batch := []pb.Message{first}
			drain:
				for {
					select {
					case m := <-appendc:
						batch = append(batch, m)
					default:
						break drain
					}
				}
				if c.fsync > 0 {
					time.Sleep(c.fsync)
				}
				for _, m := range batch {
					c.writeAsync(ln, m)
				}
			case <-ln.stopc:
				return
			}
		}
	}()
	go func() { // the Ready loop
		defer ln.wg.Done()
		ticker := time.NewTicker(time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
				ln.node.Tick()
			case rd := <-ln.node.Ready():
				var peers []pb.Message
				for _, m := range rd.Messages {
					switch m.To {
					case LocalAppendThread:
						appendc <- m
					case LocalApplyThread:
						for _, e := range m.Entries {
							if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
								if cc, err := pb.UnmarshalConfChange(e); err == nil {
									ln.node.ApplyConfChange(cc)
								}
							}
							ln.mu.Lock()
							ln.applied = append(ln.applied, e)
							ln.mu.Unlock()
						}
						for _, resp := range m.Responses {
							_ = ln.node.Step(context.Background(), resp)
						}
					default:
						peers = append(peers, m)
					}
				}
				c.send(peers)
			case <-ln.stopc:
				return
			}
		}
	}()
}

// writeAsync performs one MsgStorageAppend and delivers its responses.
func (c *liveCluster) writeAsync(ln *liveNode, m pb.Message) {
	if m.Snapshot != nil {
		_ = ln.storage.ApplySnapshot(*m.Snapshot)
	}
	_ = ln.storage.Append(m.Entries)
	if m.Term != 0 || m.Vote != 0 || m.Commit != 0 {
		_ = ln.storage.SetHardState(pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit})
	}
	for _, resp := range m.Responses {
		if resp.To == ln.id {
			_ = ln.node.Step(context.Background(), resp)
		} else {
			c.send([]pb.Message{resp})
		}
	}
}

// stop stops ln's goroutines and its node.
func (ln *liveNode) stop() {
	close(ln.stopc)
	ln.wg.Wait()
	ln.node.Stop()
}

func (ln *liveNode) appliedData() [][]byte {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	var out [][]byte
	for _, e := range ln.applied {
		if e.Type == pb.EntryNormal && len(e.Data) > 0 {
			out = append(out, e.Data)
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A 3-node cluster of Nodes with real goroutines elects a leader, commits
// proposals made through any node, survives a node's stop and restart from
// its storage, and leaves no goroutine behind.
func TestNodeClusterCommitsAndRestarts(t *testing.T) {
	c := newLiveCluster(t, 3)
	var want [][]byte
	propose := func(through uint64, k int) {
		for i := 0; i < k; i++ {
			data := []byte(fmt.Sprintf("cmd-%d", len(want)))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			require.NoError(t, c.node(through).node.Propose(ctx, data))
			cancel()
			want = append(want, data)
		}
	}
	converged := func(ids ...uint64) func() bool {
		return func() bool {
			for _, id := range ids {
				if len(c.node(id).appliedData()) < len(want) {
					return false
				}
			}
			return true
		}
	}
	propose(1, 50)
	propose(2, 50) // through a follower, or the leader: either works
	waitFor(t, "all nodes to apply 100 entries", converged(1, 2, 3))
	for _, id := range []uint64{1, 2, 3} {
		require.Equal(t, want, c.node(id).appliedData(), "node %d", id)
	}

	// Stop node 3, commit more without it, restart it from its storage.
	n3 := c.node(3)
	n3.stop()
	propose(1, 30)
	waitFor(t, "nodes 1 and 2 to apply", converged(1, 2))
	n3.mu.Lock()
	applied := n3.applied[len(n3.applied)-1].Index
	cs := n3.confState
	n3.mu.Unlock()
	_, err := n3.storage.CreateSnapshot(applied, &cs, nil)
	require.NoError(t, err)
	cfg := *n3.cfg
	cfg.Applied = applied
	n3.node = RestartNode(&cfg)
	c.run(n3)
	propose(3, 10)
	waitFor(t, "the restarted node to catch up", converged(1, 2, 3))
	for _, id := range []uint64{1, 2, 3} {
		require.Equal(t, want, c.node(id).appliedData(), "node %d", id)
	}

	st := c.node(1).node.Status()
	require.NotZero(t, st.Lead)
	for _, id := range []uint64{1, 2, 3} {
		c.node(id).stop()
	}
	requireNoNodeGoroutines(t)
}

// Blocking calls give up when their context ends, Stop unblocks them with
// ErrStopped, and every method is safe to call after Stop.
func TestNodeContextAndStop(t *testing.T) {
	s := NewMemoryStorage()
	n := StartNode(testConfig(1, s), []Peer{{ID: 1}, {ID: 2}, {ID: 3}})

	// No leader (the peers never run): Propose waits, until ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	err := n.Propose(ctx, []byte("x"))
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// A message refused by the node comes back as an error.
	require.ErrorIs(t, n.Step(context.Background(), pb.Message{Type: pb.MsgHup, From: 2, To: 1}), ErrStepLocalMsg)

	// Stop unblocks a waiting Propose.
	errc := make(chan error, 1)
	go func() { errc <- n.Propose(context.Background(), []byte("y")) }()
	waitBlockedIn(t, "raft.(*node).Propose(")
	n.Stop()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, ErrStopped)
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not unblock Propose")
	}

	bg := context.Background()
	require.ErrorIs(t, n.Campaign(bg), ErrStopped)
	require.ErrorIs(t, n.Propose(bg, nil), ErrStopped)
	require.ErrorIs(t, n.ProposeConfChange(bg, pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 4}), ErrStopped)
	require.ErrorIs(t, n.Step(bg, pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 1}), ErrStopped)
	require.ErrorIs(t, n.ReadIndex(bg, []byte("r")), ErrStopped)
	require.ErrorIs(t, n.ForgetLeader(bg), ErrStopped)
	require.Equal(t, &pb.ConfState{}, n.ApplyConfChange(pb.ConfChange{}), "never nil, as etcd raft documents")
	require.Equal(t, Status{}, n.Status())
	n.Tick()
	n.Advance()
	n.ReportUnreachable(2)
	n.ReportSnapshot(2, SnapshotFinish)
	n.TransferLeadership(bg, 1, 2)
	n.Stop() // twice is fine
	requireNoNodeGoroutines(t)
}

// Ticks are not lost while the application holds a Ready: they queue (up
// to a bound) and the node goes on ticking.
func TestNodeTicksWhileReadyPending(t *testing.T) {
	s := NewMemoryStorage()
	n := StartNode(testConfig(1, s), []Peer{{ID: 1}})
	defer func() {
		n.Stop()
		requireNoNodeGoroutines(t)
	}()
	// Handle the bootstrap Ready, then tick without reading Readys: the
	// single voter must still time out and campaign.
	rd := <-n.Ready()
	require.NoError(t, s.Append(rd.Entries))
	require.NoError(t, s.SetHardState(rd.HardState))
	for _, e := range rd.CommittedEntries {
		cc, err := pb.UnmarshalConfChange(e)
		require.NoError(t, err)
		n.ApplyConfChange(cc)
	}
	n.Advance()
	start := time.Now()
	for i := 0; i < 3*maxPendingTicks; i++ {
		n.Tick() // never blocks
	}
	require.Less(t, time.Since(start), 5*time.Second)
	waitFor(t, "the campaign", func() bool { return n.Status().RaftState != StateFollower })

	// Now follow the Ready loop until it leads.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for n.Status().RaftState != StateLeader {
		select {
		case rd := <-n.Ready():
			require.NoError(t, s.Append(rd.Entries))
			if !IsEmptyHardState(rd.HardState) {
				require.NoError(t, s.SetHardState(rd.HardState))
			}
			n.Advance()
		case <-ctx.Done():
			t.Fatal("no leader")
		}
	}
}

// StartNode refuses to start without peers; both constructors refuse an
// invalid config.
func TestNodeConstructorsPanicOnMisuse(t *testing.T) {
	require.Panics(t, func() { StartNode(testConfig(1, NewMemoryStorage()), nil) })
	bad := testConfig(0, NewMemoryStorage())
	require.Panics(t, func() { RestartNode(bad) })
	require.True(t, errors.Is(bad.Validate(), ErrConfigZeroID))
}

// BenchmarkNodePropose measures Node throughput: proposals through the
// leader of a 1- or 3-node cluster of Nodes with real goroutines and an
// in-memory transport, until every node applied them. Proposals are made
// from 8 goroutines at once, as a server with concurrent clients would.
func BenchmarkNodePropose(b *testing.B) {
	for _, size := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			benchProposals(b, newLiveCluster(b, size))
		})
	}
}

// A Node in AsyncStorageWrites mode: the application handles the storage
// messages and steps their responses back in; no Advance.
func TestNodeAsyncStorageWrites(t *testing.T) {
	s := NewMemoryStorage()
	cfg := testConfig(1, s)
	cfg.AsyncStorageWrites = true
	n := StartNode(cfg, []Peer{{ID: 1}})
	defer func() {
		n.Stop()
		requireNoNodeGoroutines(t)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var applied [][]byte
	handle := func(rd Ready) {
		for _, m := range rd.Messages {
			switch m.To {
			case LocalAppendThread:
				require.NoError(t, s.Append(m.Entries))
				if m.Term != 0 || m.Vote != 0 || m.Commit != 0 {
					require.NoError(t, s.SetHardState(pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}))
				}
			case LocalApplyThread:
				for _, e := range m.Entries {
					if e.Type == pb.EntryConfChange {
						cc, err := pb.UnmarshalConfChange(e)
						require.NoError(t, err)
						n.ApplyConfChange(cc)
					} else if len(e.Data) > 0 {
						applied = append(applied, e.Data)
					}
				}
			}
			for _, resp := range m.Responses {
				require.NoError(t, n.Step(ctx, resp))
			}
		}
		n.Advance() // a no-op in this mode
	}
	go func() { _ = n.Campaign(ctx) }()
	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
	proposed := false
	for len(applied) < 1 {
		select {
		case rd := <-n.Ready():
			handle(rd)
		case <-ticker.C:
			n.Tick()
			if !proposed && n.Status().RaftState == StateLeader {
				proposed = true
				go func() { _ = n.Propose(ctx, []byte("async")) }()
			}
		case <-ctx.Done():
			t.Fatal("nothing applied")
		}
	}
	require.Equal(t, [][]byte{[]byte("async")}, applied)
}

// BenchmarkNodeFsync compares synchronous and asynchronous storage writes
// on a 3-node cluster of Nodes whose every durable write takes 1 ms: with
// AsyncStorageWrites the leader's own write overlaps with replication.
func BenchmarkNodeFsync(b *testing.B) {
	for _, async := range []bool{false, true} {
		name := "sync"
		if async {
			name = "async"
		}
		b.Run(name, func(b *testing.B) {
			benchProposals(b, newLiveClusterWith(b, 3, time.Millisecond, async))
		})
	}
}

// A 3-node cluster of Nodes with AsyncStorageWrites and slow writes
// commits what it is given, the same on every node.
func TestNodeClusterAsync(t *testing.T) {
	c := newLiveClusterWith(t, 3, 200*time.Microsecond, true)
	var want [][]byte
	propose := func(i int) {
		data := []byte(fmt.Sprintf("a%d", i))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, c.node(1+uint64(i%3)).node.Propose(ctx, data))
	}
	for i := 0; i < 100; i++ {
		propose(i)
		want = append(want, []byte(fmt.Sprintf("a%d", i)))
	}
	// A proposal taken by a leader that loses its leadership before the
	// entry commits is lost (Propose returned nil): like any client, the
	// test proposes again what has not been applied after a while.
	retryAt := time.Now().Add(time.Second)
	waitFor(t, "every node to apply", func() bool {
		done := true
		for _, ln := range c.nodes {
			have := map[string]bool{}
			for _, d := range ln.appliedData() {
				have[string(d)] = true
			}
			for i, d := range want {
				if !have[string(d)] {
					done = false
					if ln.id == 1 && time.Now().After(retryAt) {
						propose(i)
					}
				}
			}
		}
		if !done && time.Now().After(retryAt) {
			retryAt = time.Now().Add(time.Second)
		}
		return done
	})
	ref := c.node(1).appliedData()
	require.Subset(t, ref, want)
	for _, id := range []uint64{2, 3} {
		other := c.node(id).appliedData()
		require.Equal(t, ref[:min(len(ref), len(other))], other[:min(len(ref), len(other))], "nodes apply the same entries in the same order")
	}
	for _, ln := range c.nodes {
		ln.stop()
	}
	requireNoNodeGoroutines(t)
}

// benchProposals makes b.N proposals of 128 bytes through c's leader from
// 8 goroutines, waits until every node applied them, reports proposals/s,
// and stops the cluster.
func benchProposals(b *testing.B, c *liveCluster) {
	defer func() {
		for _, ln := range c.nodes {
			ln.stop()
		}
	}()
	var lead uint64
	waitFor(b, "a leader", func() bool {
		lead = c.node(1).node.Status().Lead
		return lead != 0
	})
	leader := c.node(lead).node
	data := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + 7) / 8
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if err := leader.Propose(context.Background(), data); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := 8 * per
	waitFor(b, "every node to apply", func() bool {
		for _, ln := range c.nodes {
			if len(ln.appliedData()) < total {
				return false
			}
		}
		return true
	})
	b.StopTimer()
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "proposals/s")
}

// nodeNet wires Nodes together on the test's own goroutine: the test ticks
// them, takes their Readys (persisting and applying as the contract says)
// and delivers their messages, holding back those hold matches. Nothing
// runs on a timer, so what happens is driven by ticks and deliveries only.
type nodeNet struct {
	t        *testing.T
	ctx      context.Context
	ids      []uint64
	nodes    map[uint64]Node
	storages map[uint64]*MemoryStorage
	// inflight are the messages sent and not yet delivered.
	inflight []pb.Message
	// hold, if set, keeps matching messages from being delivered; they go
	// to held instead.
	hold       func(pb.Message) bool
	held       []pb.Message
	readStates map[uint64][]ReadState
}

// newNodeNet starts a Node for each of ids, all members of one new cluster.
func newNodeNet(t *testing.T, ids ...uint64) *nodeNet {
	t.Helper()
	var peers []Peer
	for _, id := range ids {
		peers = append(peers, Peer{ID: id})
	}
	return newNodeNetWith(t, ids, func(id uint64, s *MemoryStorage) Node {
		return StartNode(testConfig(id, s), peers)
	})
}

// newNodeNetWith starts the Node for each of ids with start, which gets the
// node's storage.
func newNodeNetWith(t *testing.T, ids []uint64, start func(id uint64, s *MemoryStorage) Node) *nodeNet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	nn := &nodeNet{
		t: t, ctx: ctx, ids: ids,
		nodes:      map[uint64]Node{},
		storages:   map[uint64]*MemoryStorage{},
		readStates: map[uint64][]ReadState{},
	}
	for _, id := range ids {
		s := NewMemoryStorage()
		nn.storages[id] = s
		nn.nodes[id] = start(id, s)
	}
	t.Cleanup(func() {
		cancel()
		for _, n := range nn.nodes {
			n.Stop()
		}
		requireNoNodeGoroutines(t)
	})
	return nn
}

// collect handles the Readys node id offers until the node looks idle: it
// has answered a few Status requests in a row without offering a Ready.
// The node's goroutine picks at random among what it can do, so a Ready
// on offer would most likely have been taken first; one that slips by is
// taken in a later round.
func (nn *nodeNet) collect(id uint64) {
	n := nn.nodes[id]
	probe := func() chan Status {
		c := make(chan Status, 1)
		go func() { c <- n.Status() }()
		return c
	}
	statusc := probe()
	for idle := 0; idle < 3; {
		select {
		case rd := <-n.Ready():
			nn.handle(id, rd)
			idle = 0
		case <-statusc:
			idle++
			statusc = probe()
		}
	}
	<-statusc
}

// handle follows the Ready contract for node id's rd.
func (nn *nodeNet) handle(id uint64, rd Ready) {
	n, s := nn.nodes[id], nn.storages[id]
	require.NoError(nn.t, s.Save(rd.HardState, rd.Entries, rd.Snapshot))
	nn.inflight = append(nn.inflight, rd.Messages...)
	for _, e := range rd.CommittedEntries {
		if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
			cc, err := pb.UnmarshalConfChange(e)
			require.NoError(nn.t, err)
			require.NotNil(nn.t, n.ApplyConfChange(cc))
		}
	}
	nn.readStates[id] = append(nn.readStates[id], rd.ReadStates...)
	n.Advance()
}

// deliver steps every message in flight into its recipient, except those
// held back.
func (nn *nodeNet) deliver() {
	msgs := nn.inflight
	nn.inflight = nil
	for _, m := range msgs {
		if nn.hold != nil && nn.hold(m) {
			nn.held = append(nn.held, m)
			continue
		}
		if to := nn.nodes[m.To]; to != nil {
			_ = to.Step(nn.ctx, m) // a refused message is dropped
		}
	}
}

// runUntil ticks every node, handles their Readys and delivers their
// messages, round after round, until cond holds. It fails the test if cond
// still does not hold after 20 election timeouts' worth of rounds.
func (nn *nodeNet) runUntil(what string, cond func() bool) {
	nn.t.Helper()
	const maxRounds = 200
	for round := 0; round < maxRounds; round++ {
		if cond() {
			return
		}
		if nn.ctx.Err() != nil {
			break
		}
		for _, id := range nn.ids {
			nn.nodes[id].Tick()
		}
		for _, id := range nn.ids {
			nn.collect(id)
		}
		nn.deliver()
	}
	nn.t.Fatalf("after %d rounds: still waiting for %s", maxRounds, what)
}

// elect makes id campaign and runs until every node follows it and it has
// every peer in StateReplicate, caught up.
func (nn *nodeNet) elect(id uint64) {
	nn.t.Helper()
	require.NoError(nn.t, nn.nodes[id].Campaign(nn.ctx))
	nn.runUntil(fmt.Sprintf("%d to lead a caught-up cluster", id), func() bool {
		for _, other := range nn.ids {
			if nn.nodes[other].Status().Lead != id {
				return false
			}
		}
		st := nn.nodes[id].Status()
		for _, pr := range st.Progress {
			if pr.State != tracker.StateReplicate || pr.Match != st.Commit {
				return false
			}
		}
		return st.Applied == st.Commit
	})
}

// ReadIndex reaches the node: its answer, a ReadState carrying the
// request's context, arrives in a later Ready, both on the leader and on a
// follower (which asks the leader).
func TestNodeReadIndex(t *testing.T) {
	nn := newNodeNet(t, 1, 2)
	nn.elect(1)
	commit := nn.nodes[1].Status().Commit
	for _, id := range []uint64{1, 2} {
		rctx := []byte(fmt.Sprintf("read-%d", id))
		require.NoError(t, nn.nodes[id].ReadIndex(nn.ctx, rctx))
		nn.runUntil(fmt.Sprintf("node %d's read state", id), func() bool {
			return len(nn.readStates[id]) > 0
		})
		require.Equal(t, []ReadState{{Index: commit, RequestCtx: rctx}}, nn.readStates[id])
	}
}

// TransferLeadership hands leadership to the transferee: asked of the
// leader, and asked of a follower (which passes the request on).
func TestNodeTransferLeadership(t *testing.T) {
	nn := newNodeNet(t, 1, 2, 3)
	nn.elect(1)
	leads := func(id uint64) func() bool {
		return func() bool {
			for _, other := range nn.ids {
				if nn.nodes[other].Status().Lead != id {
					return false
				}
			}
			return nn.nodes[id].Status().RaftState == StateLeader
		}
	}
	nn.nodes[1].TransferLeadership(nn.ctx, 1, 2)
	nn.runUntil("leadership to move to 2", leads(2))

	nn.nodes[3].TransferLeadership(nn.ctx, 2, 3)
	nn.runUntil("leadership to move to 3", leads(3))
}

// ForgetLeader makes a follower drop the leader it knows.
func TestNodeForgetLeader(t *testing.T) {
	nn := newNodeNet(t, 1, 2)
	nn.elect(1)
	require.Equal(t, uint64(1), nn.nodes[2].Status().Lead)
	require.NoError(t, nn.nodes[2].ForgetLeader(nn.ctx))
	st := nn.nodes[2].Status()
	require.Equal(t, None, st.Lead, "the follower still knows a leader")
	require.Equal(t, StateFollower, st.RaftState)
}

// ReportUnreachable makes the leader stop streaming to the peer and probe
// it again.
func TestNodeReportUnreachable(t *testing.T) {
	nn := newNodeNet(t, 1, 2)
	nn.elect(1)
	require.Equal(t, tracker.StateReplicate, nn.nodes[1].Status().Progress[2].State)
	nn.nodes[1].ReportUnreachable(2)
	// The report was taken before Status is answered; nothing was
	// delivered since, so the peer cannot have been found again.
	pr := nn.nodes[1].Status().Progress[2]
	require.Equal(t, tracker.StateProbe, pr.State, "the peer is still in %s", pr.State)
}

// ReportSnapshot takes a peer out of StateSnapshot: after a failure the
// leader probes from the peer's match, after a success from past the
// snapshot.
func TestNodeReportSnapshot(t *testing.T) {
	for _, tt := range []struct {
		name     string
		status   SnapshotStatus
		wantNext func(match, snap uint64) uint64
	}{
		{"failure", SnapshotFailure, func(match, _ uint64) uint64 { return match + 1 }},
		{"finish", SnapshotFinish, func(_, snap uint64) uint64 { return snap + 1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nn, snapIndex := newSnapshotNeededNet(t)
			leader := nn.nodes[1]
			pr := leader.Status().Progress[2]
			require.Equal(t, tracker.StateSnapshot, pr.State)
			require.Equal(t, snapIndex, pr.PendingSnapshot)

			leader.ReportSnapshot(2, tt.status)
			pr = leader.Status().Progress[2]
			require.Equal(t, tracker.StateProbe, pr.State, "the peer is still in %s", pr.State)
			require.Equal(t, tt.wantNext(pr.Match, snapIndex), pr.Next)
		})
	}
}

// newSnapshotNeededNet builds a two-node cluster whose leader, 1, has
// compacted its log past the point where 2's log ends, and runs it until 1
// has sent 2 a snapshot. The snapshot is held back, so 2 stays in
// StateSnapshot on the leader. It returns the snapshot's index.
func newSnapshotNeededNet(t *testing.T) (*nodeNet, uint64) {
	const leaderSnap, followerSnap = 10, 5
	cs := pb.ConfState{Voters: []uint64{1, 2}}
	nn := newNodeNetWith(t, []uint64{1, 2}, func(id uint64, s *MemoryStorage) Node {
		index := uint64(followerSnap)
		if id == 1 {
			index = leaderSnap
		}
		require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: index, Term: 1, ConfState: cs}}))
		cfg := testConfig(id, s)
		cfg.Applied = index
		return RestartNode(cfg)
	})
	nn.hold = func(m pb.Message) bool { return m.Type == pb.MsgSnap }
	require.NoError(t, nn.nodes[1].Campaign(nn.ctx))
	nn.runUntil("the leader to send a snapshot", func() bool { return len(nn.held) > 0 })
	snap := nn.held[0].Snapshot
	require.NotNil(t, snap)
	require.Equal(t, uint64(leaderSnap), snap.Metadata.Index)
	return nn, leaderSnap
}
