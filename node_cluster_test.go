package raft

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

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
	// readys counts the Readys the node handed out.
	readys atomic.Uint64
	// onApply, if set (under mu), sees every entry the node applies, on
	// the goroutine that applies.
	onApply func(pb.Entry)
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
				ln.readys.Add(1)
				if rd.MustSync && c.fsync > 0 {
					time.Sleep(c.fsync)
				}
				_ = ln.storage.Save(rd.HardState, rd.Entries, rd.Snapshot)
				c.send(rd.Messages)
				for _, e := range rd.CommittedEntries {
					ln.apply(e)
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
				ln.readys.Add(1)
				var peers []pb.Message
				for _, m := range rd.Messages {
					switch m.To {
					case LocalAppendThread:
						appendc <- m
					case LocalApplyThread:
						for _, e := range m.Entries {
							ln.apply(e)
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

// apply applies a committed entry: conf changes through the node, and
// every entry recorded.
func (ln *liveNode) apply(e pb.Entry) {
	if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
		if cc, err := pb.UnmarshalConfChange(e); err == nil {
			cs := ln.node.ApplyConfChange(cc)
			ln.mu.Lock()
			ln.confState = *cs
			ln.mu.Unlock()
		}
	}
	ln.mu.Lock()
	ln.applied = append(ln.applied, e)
	onApply := ln.onApply
	ln.mu.Unlock()
	if onApply != nil {
		onApply(e)
	}
}

// writeAsync performs one MsgStorageAppend and delivers its responses.
func (c *liveCluster) writeAsync(ln *liveNode, m pb.Message) {
	_ = saveStorageAppend(ln.storage, m)
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

// BenchmarkNodeFsyncLatency is BenchmarkNodeFsync with clients that wait:
// each of 8 clients proposes, waits until the leader applied its entry,
// and proposes again. It reports the time from Propose to the leader's
// apply (p50-ns, p99-ns) beside the throughput: where asynchronous writes
// pay off (the leader's write overlaps with its followers'), not where a
// queue of proposals hides it.
func BenchmarkNodeFsyncLatency(b *testing.B) {
	for _, async := range []bool{false, true} {
		name := "sync"
		if async {
			name = "async"
		}
		b.Run(name, func(b *testing.B) {
			benchClosedLoop(b, 3, time.Millisecond, async, 8)
		})
	}
}

// benchClosedLoop runs b.N proposals of 128 bytes from clients that each
// wait for their previous proposal to be applied by the leader.
func benchClosedLoop(b *testing.B, size int, fsync time.Duration, async bool, clients int) {
	c := newLiveClusterWith(b, size, fsync, async)
	// Node 1 campaigns, so that it leads, and tells when it applies.
	var mu sync.Mutex
	waiting := map[uint64]chan struct{}{}
	ln1 := c.node(1)
	ln1.mu.Lock()
	ln1.onApply = func(e pb.Entry) {
		if e.Type != pb.EntryNormal || len(e.Data) < 8 {
			return
		}
		seq := binary.BigEndian.Uint64(e.Data)
		mu.Lock()
		ch := waiting[seq]
		delete(waiting, seq)
		mu.Unlock()
		if ch != nil {
			close(ch)
		}
	}
	ln1.mu.Unlock()
	defer func() {
		for _, ln := range c.nodes {
			ln.stop()
		}
	}()
	leader := c.node(1).node
	require.NoError(b, leader.Campaign(context.Background()))
	waitFor(b, "node 1 to lead", func() bool { return leader.Status().RaftState == StateLeader })
	var next atomic.Uint64
	lat := make([][]time.Duration, clients)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + clients - 1) / clients
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				// A fresh payload each time: the logs keep the one proposed.
				data := make([]byte, 128)
				seq := next.Add(1)
				binary.BigEndian.PutUint64(data, seq)
				done := make(chan struct{})
				mu.Lock()
				waiting[seq] = done
				mu.Unlock()
				start := time.Now()
				if err := leader.Propose(context.Background(), data); err != nil {
					b.Error(err)
					return
				}
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					b.Errorf("proposal %d not applied within 10s", seq)
					return
				}
				lat[w] = append(lat[w], time.Since(start))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "proposals/s")
	b.ReportMetric(float64(all[len(all)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds()), "p99-ns")
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
	var readys uint64
	for _, ln := range c.nodes {
		readys += ln.readys.Load()
	}
	b.ReportMetric(float64(readys)/float64(total), "readys/proposal")
}
