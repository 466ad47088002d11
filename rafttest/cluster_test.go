package rafttest_test

// Clusters of RawNodes on the simulated network: elections, proposals at
// volume and from every node, leader isolation, catch-up of lagging and
// divergent logs with a bound on rejections, crashes that lose unpersisted
// state, repeated crash/restart cycles, and a lossy network.

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/rafttest"
)

func newCluster(t *testing.T, size int, seed uint64, configure func(*raft.Config)) *rafttest.Cluster {
	t.Helper()
	c, err := rafttest.NewCluster(rafttest.ClusterConfig{Size: size, Seed: seed, Configure: configure})
	require.NoError(t, err)
	return c
}

func withPreVoteCheckQuorum(c *raft.Config) {
	c.PreVote = true
	c.CheckQuorum = true
}

// tick advances every node k ticks, stabilizing after each.
func tick(t *testing.T, c *rafttest.Cluster, k int) {
	t.Helper()
	for i := 0; i < k; i++ {
		c.Tick()
		require.NoError(t, c.Stabilize())
	}
}

// requireSameApplied checks that every running node applied the same
// entries (index, term and data), and returns that sequence of commands.
func requireSameApplied(t *testing.T, c *rafttest.Cluster) [][]byte {
	t.Helper()
	ids := c.IDs()
	ref := c.Node(ids[0])
	for _, id := range ids[1:] {
		n := c.Node(id)
		require.Equal(t, len(ref.Applied), len(n.Applied), "nodes %d and %d applied different counts", ref.ID, id)
		for i := range ref.Applied {
			a, b := ref.Applied[i], n.Applied[i]
			if a.Index != b.Index || a.Term != b.Term || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("nodes %d and %d differ at position %d: %d/%d vs %d/%d", ref.ID, id, i, a.Term, a.Index, b.Term, b.Index)
			}
		}
	}
	return ref.AppliedData()
}

// requireOneLeader checks that exactly one running node leads, and that
// every running node follows it in its term.
func requireOneLeader(t *testing.T, c *rafttest.Cluster) uint64 {
	t.Helper()
	leaders := c.Leaders()
	require.Len(t, leaders, 1, "leaders: %v", leaders)
	lead := leaders[0]
	term := c.Node(lead).RawNode.BasicStatus().Term
	for _, id := range c.IDs() {
		n := c.Node(id)
		if n.RawNode == nil {
			continue
		}
		st := n.RawNode.BasicStatus()
		require.Equal(t, lead, st.Lead, "node %d's leader", id)
		require.Equal(t, term, st.Term, "node %d's term", id)
	}
	return lead
}

func cmd(i int) []byte { return []byte(fmt.Sprintf("cmd-%05d", i)) }

// status is shorthand for a running node's basic status.
func status(c *rafttest.Cluster, id uint64) raft.BasicStatus {
	return c.Node(id).RawNode.BasicStatus()
}

// requireContiguous checks that a node applied indexes 1, 2, 3, ... with no
// gap and no repeat, across all its restarts.
func requireContiguous(t *testing.T, n *rafttest.Node) {
	t.Helper()
	for i, e := range n.Applied {
		require.Equal(t, uint64(i+1), e.Index, "node %d: position %d of its applied entries", n.ID, i)
	}
}

// requireNoRepeats checks that no command appears twice in seq.
func requireNoRepeats(t *testing.T, seq [][]byte) {
	t.Helper()
	seen := make(map[string]bool, len(seq))
	for _, d := range seq {
		require.False(t, seen[string(d)], "%q applied twice", d)
		seen[string(d)] = true
	}
}

// settle ticks (stabilizing after each tick) until every running node has
// applied as far as the leader has committed and all agree on the leader,
// or fails after maxTicks.
func settle(t *testing.T, c *rafttest.Cluster, maxTicks int) {
	t.Helper()
	for i := 0; i < maxTicks; i++ {
		tick(t, c, 1)
		lead := c.Leader()
		if lead == 0 || len(c.Leaders()) != 1 {
			continue
		}
		commit := status(c, lead).Commit
		done := true
		for _, id := range c.IDs() {
			n := c.Node(id)
			if n.RawNode == nil {
				continue
			}
			st := n.RawNode.BasicStatus()
			if st.Lead != lead || n.AppliedIndex() != commit {
				done = false
			}
		}
		if done {
			return
		}
	}
	t.Fatalf("cluster did not settle in %d ticks", maxTicks)
}

// termsInLog returns the distinct terms of the entries in a storage.
func termsInLog(t *testing.T, s *raft.MemoryStorage) map[uint64]bool {
	t.Helper()
	first, err := s.FirstIndex()
	require.NoError(t, err)
	last, err := s.LastIndex()
	require.NoError(t, err)
	terms := map[uint64]bool{}
	for i := first; i <= last; i++ {
		term, err := s.Term(i)
		require.NoError(t, err)
		terms[term] = true
	}
	return terms
}

func lastIndex(t *testing.T, s *raft.MemoryStorage) uint64 {
	t.Helper()
	li, err := s.LastIndex()
	require.NoError(t, err)
	return li
}

// Clusters of 3 and 5 voters elect exactly one leader that every node
// follows, whatever the seed.
func TestClusterElectsExactlyOneLeader(t *testing.T) {
	for _, size := range []int{3, 5} {
		for seed := uint64(1); seed <= 5; seed++ {
			for _, pv := range []bool{false, true} {
				t.Run(fmt.Sprintf("size=%d/seed=%d/prevote=%v", size, seed, pv), func(t *testing.T) {
					c := newCluster(t, size, seed, func(cfg *raft.Config) { cfg.PreVote = pv })
					_, err := c.ElectLeader(100)
					require.NoError(t, err)
					tick(t, c, 3) // let heartbeats settle every follower
					requireOneLeader(t, c)
					require.Empty(t, c.StepErrors)
				})
			}
		}
	}
}

// 10,000 proposals commit, and every node applies the same sequence, in
// the order proposed.
func TestClusterTenThousandProposals(t *testing.T) {
	total := 10000
	if testing.Short() {
		total = 1000
	}
	c := newCluster(t, 3, 1, nil)
	lead, err := c.ElectLeader(100)
	require.NoError(t, err)
	var want [][]byte
	for i := 0; i < total; i++ {
		require.NoError(t, c.Propose(lead, cmd(i)))
		want = append(want, cmd(i))
		if i%100 == 99 {
			require.NoError(t, c.Stabilize())
		}
	}
	require.NoError(t, c.Stabilize())
	tick(t, c, 2)
	require.Equal(t, want, requireSameApplied(t, c))
	require.Empty(t, c.StepErrors)
}

// Every node, followers included, takes proposals; each commits exactly
// once on every node. With DisableProposalForwarding a follower refuses.
func TestClusterProposalsFromEveryNode(t *testing.T) {
	c := newCluster(t, 5, 41, nil)
	lead, err := c.ElectLeader(100)
	require.NoError(t, err)
	tick(t, c, 2)
	proposed := map[string]bool{}
	for i := 0; i < 50; i++ {
		for _, id := range c.IDs() {
			data := []byte(fmt.Sprintf("from-%d-%d", id, i))
			require.NoError(t, c.Propose(id, data))
			proposed[string(data)] = true
		}
		if i%10 == 9 {
			require.NoError(t, c.Stabilize())
		}
	}
	require.NoError(t, c.Stabilize())
	tick(t, c, 2)
	applied := requireSameApplied(t, c)
	require.Len(t, applied, len(proposed))
	requireNoRepeats(t, applied)
	for _, d := range applied {
		require.True(t, proposed[string(d)], "%q was never proposed", d)
	}
	require.Equal(t, lead, requireOneLeader(t, c))
	require.Empty(t, c.StepErrors)

	c2 := newCluster(t, 3, 42, func(cfg *raft.Config) { cfg.DisableProposalForwarding = true })
	lead, err = c2.ElectLeader(100)
	require.NoError(t, err)
	tick(t, c2, 2)
	for _, id := range c2.IDs() {
		err := c2.Propose(id, []byte(fmt.Sprintf("p%d", id)))
		if id == lead {
			require.NoError(t, err)
		} else {
			require.True(t, errors.Is(err, raft.ErrProposalDropped), "follower %d: %v", id, err)
		}
	}
	require.NoError(t, c2.Stabilize())
	tick(t, c2, 2)
	require.Equal(t, [][]byte{[]byte(fmt.Sprintf("p%d", lead))}, requireSameApplied(t, c2))
	require.Empty(t, c2.StepErrors)
}

// An isolated leader is replaced, over several sizes and seeds: the
// majority elects a new leader, CheckQuorum deposes the isolated one within
// a few election timeouts, left alone for long it campaigns only in
// pre-elections (its term stays behind), and PreVote keeps it from raising
// the term when it rejoins.
func TestClusterLeaderIsolationSweep(t *testing.T) {
	for _, size := range []int{3, 5} {
		for _, seed := range []uint64{3, 51, 52, 53, 54} {
			t.Run(fmt.Sprintf("size=%d/seed=%d", size, seed), func(t *testing.T) {
				c := newCluster(t, size, seed, withPreVoteCheckQuorum)
				old, err := c.ElectLeader(100)
				require.NoError(t, err)
				tick(t, c, 2)
				require.NoError(t, c.Propose(old, []byte("before")))
				require.NoError(t, c.Stabilize())
				oldTerm := status(c, old).Term

				c.Net.Isolate(old, c.IDs())
				var lead uint64
				for i := 0; i < 100 && lead == 0; i++ {
					tick(t, c, 1)
					for _, id := range c.Leaders() {
						if id != old {
							lead = id
						}
					}
				}
				require.NotZero(t, lead, "the majority elects a new leader")
				stepDown := -1
				for i := 0; i < 25; i++ {
					if status(c, old).RaftState != raft.StateLeader {
						stepDown = i
						break
					}
					tick(t, c, 1)
				}
				require.GreaterOrEqual(t, stepDown, 0, "CheckQuorum deposes the isolated leader")
				term := status(c, lead).Term
				require.Greater(t, term, oldTerm)
				require.NoError(t, c.Propose(lead, []byte("after")))
				require.NoError(t, c.Stabilize())
				tick(t, c, 100)
				require.LessOrEqual(t, status(c, old).Term, term, "pre-elections only while isolated")

				c.Net.Heal()
				tick(t, c, 40) // four election timeouts
				require.Equal(t, lead, requireOneLeader(t, c), "the new leader stays")
				require.Equal(t, term, status(c, lead).Term, "no term bump on rejoin")
				require.Equal(t, lead, status(c, old).Lead, "the old leader follows the new one")
				require.Equal(t, [][]byte{[]byte("before"), []byte("after")}, requireSameApplied(t, c))
				require.Empty(t, c.StepErrors)
			})
		}
	}
}

// Without PreVote, the same rejoin forces an election at a higher term:
// what PreVote is for.
func TestClusterRejoinWithoutPreVoteBumpsTerm(t *testing.T) {
	c := newCluster(t, 3, 4, nil)
	lead, err := c.ElectLeader(100)
	require.NoError(t, err)
	tick(t, c, 3)
	var follower uint64
	for _, id := range c.IDs() {
		if id != lead {
			follower = id
		}
	}
	term := c.Node(lead).RawNode.BasicStatus().Term
	c.Net.Isolate(follower, c.IDs())
	tick(t, c, 50)
	c.Net.Heal()
	tick(t, c, 30)
	requireOneLeader(t, c)
	require.Greater(t, c.Node(lead).RawNode.BasicStatus().Term, term)
}

type catchUpCase struct {
	name string
	size int
	seed uint64
	// lostTerms is how many terms node 1 spends as an isolated leader,
	// taking lost proposals in each (its divergent tail). 0 makes the
	// lagging node a plain follower that merely misses entries.
	lostTerms int
	// lost is how many entries node 1 takes per lost term.
	lost int
	// leaders lead in turn among the connected nodes, each committing
	// perTerm entries.
	leaders []uint64
	perTerm int
	// tailLonger says node 1's log ends past the leader's when it rejoins.
	tailLonger bool
	// maxRejections, if set, is a tighter bound on the rejections than
	// the one every case gets.
	maxRejections int
}

// A node that missed up to a thousand entries over several terms, possibly
// holding a long divergent tail of its own (itself spanning one or more
// terms), catches up after heal with a handful of rejections: the leader
// skips whole terms, not single entries. The bound asserted is the number
// of distinct terms in the two logs plus two.
func TestClusterCatchUpRejectionsBounded(t *testing.T) {
	for _, tc := range []catchUpCase{
		{name: "divergent tail, 3 nodes", size: 3, seed: 11, lostTerms: 1, lost: 100, leaders: []uint64{2, 3, 2, 3, 2}, perTerm: 200},
		{name: "divergent tail, 5 nodes", size: 5, seed: 12, lostTerms: 1, lost: 100, leaders: []uint64{2, 3, 4, 5, 2}, perTerm: 200, maxRejections: 6},
		{name: "divergent tail longer than leader log", size: 3, seed: 13, lostTerms: 1, lost: 1000, leaders: []uint64{2, 3, 2, 3}, perTerm: 10, tailLonger: true},
		{name: "divergent tail over three terms", size: 5, seed: 14, lostTerms: 3, lost: 100, leaders: []uint64{3, 4, 5, 3}, perTerm: 250},
		{name: "plain lag", size: 5, seed: 15, lostTerms: 0, leaders: []uint64{2, 3, 4, 2}, perTerm: 250},
	} {
		t.Run(tc.name, func(t *testing.T) { runCatchUp(t, tc) })
	}
}

func runCatchUp(t *testing.T, tc catchUpCase) {
	c := newCluster(t, tc.size, tc.seed, func(cfg *raft.Config) { cfg.MaxSizePerMsg = 1 << 24 })
	ids := c.IDs()
	require.NoError(t, c.Campaign(1))
	tick(t, c, 2)
	require.Equal(t, uint64(1), requireOneLeader(t, c))

	lag := uint64(1)
	lostTotal := 0
	for k := 0; k < tc.lostTerms; k++ {
		if k > 0 {
			// Make node 1 leader again at a higher term without the
			// others learning anything that would make their logs more
			// up to date than its own: no appends get through.
			c.Net.Heal()
			c.Net.Ignore(pb.MsgApp)
			c.Net.Isolate(1, ids)
			require.NoError(t, c.Campaign(2))
			require.Equal(t, raft.StateLeader, status(c, 2).RaftState)
			c.Net.Heal()
			c.Net.Ignore(pb.MsgApp)
			tick(t, c, 1) // 2's heartbeat deposes 1
			require.NotEqual(t, raft.StateLeader, status(c, 1).RaftState)
			require.NoError(t, c.Campaign(1))
			require.Equal(t, raft.StateLeader, status(c, 1).RaftState, "lost term %d", k)
		}
		c.Net.Heal()
		c.Net.Isolate(1, ids)
		for i := 0; i < tc.lost; i++ {
			require.NoError(t, c.Propose(1, []byte(fmt.Sprintf("lost-%d-%d", k, i))))
		}
		lostTotal += tc.lost
		require.NoError(t, c.Stabilize())
	}
	if tc.lostTerms == 0 {
		lag = uint64(tc.size)
		c.Net.Isolate(lag, ids)
	}

	var want [][]byte
	for round, lead := range tc.leaders {
		require.NotEqual(t, lag, lead)
		require.NoError(t, c.Campaign(lead))
		require.Equal(t, raft.StateLeader, status(c, lead).RaftState, "round %d", round)
		for i := 0; i < tc.perTerm; i++ {
			data := cmd(round*10000 + i)
			require.NoError(t, c.Propose(lead, data))
			want = append(want, data)
		}
		require.NoError(t, c.Stabilize())
	}
	lead := tc.leaders[len(tc.leaders)-1]
	require.Len(t, c.Node(lead).AppliedData(), len(want), "the connected majority committed everything")
	require.Less(t, c.Node(lag).AppliedIndex(), c.Node(lead).AppliedIndex())

	if tc.lostTerms > 0 {
		// The divergent tail: what node 1 holds past its commit index.
		st := status(c, lag)
		divergent := map[uint64]bool{}
		for i := st.Commit + 1; i <= lastIndex(t, c.Node(lag).Storage); i++ {
			term, err := c.Node(lag).Storage.Term(i)
			require.NoError(t, err)
			divergent[term] = true
		}
		require.Len(t, divergent, tc.lostTerms, "terms in node 1's uncommitted tail")
	}
	require.Equal(t, tc.tailLonger, lastIndex(t, c.Node(lag).Storage) > lastIndex(t, c.Node(lead).Storage))

	terms := termsInLog(t, c.Node(lag).Storage)
	for term := range termsInLog(t, c.Node(lead).Storage) {
		terms[term] = true
	}
	require.GreaterOrEqual(t, len(terms), len(tc.leaders), "the leader's log spans several terms")

	var rejections, appends int
	c.Net.ResetCounters()
	c.Net.OnDeliver = func(m pb.Message) {
		if m.From == lag && m.Type == pb.MsgAppResp && m.Reject {
			rejections++
		}
		if m.To == lag && m.Type == pb.MsgApp {
			appends++
		}
	}
	c.Net.Heal()
	settle(t, c, 20)
	c.Net.OnDeliver = nil

	require.Equal(t, want, requireSameApplied(t, c))
	requireOneLeader(t, c)
	require.Equal(t, lead, c.Leader(), "the lagging node rejoins without taking over")
	require.Equal(t, lastIndex(t, c.Node(lead).Storage), lastIndex(t, c.Node(lag).Storage), "divergent tail truncated")
	for _, id := range ids {
		requireContiguous(t, c.Node(id))
	}
	t.Logf("catch-up: %d rejected MsgAppResp, %d MsgApp to node %d; %d distinct terms, %d divergent entries, %d entries behind",
		rejections, appends, lag, len(terms), lostTotal, len(want))
	require.LessOrEqual(t, rejections, c.Net.Delivered[pb.MsgAppResp], "the hook saw no more than the network delivered")
	require.LessOrEqual(t, rejections, len(terms)+2, "rejections are bounded by terms, not entries")
	if lostTotal > 0 {
		require.Less(t, rejections, lostTotal/10)
	}
	if tc.maxRejections > 0 {
		require.LessOrEqual(t, rejections, tc.maxRejections)
	}
	require.LessOrEqual(t, appends, len(terms)+4, "few round trips to catch up")
	require.Empty(t, c.StepErrors)
}

// A follower that crashes after stepping an append but before persisting
// it loses those entries; they still commit on the others, and on restart
// it catches up and applies every entry exactly once. A leader that
// crashes before its Ready is handled loses a proposal that nobody else
// ever saw: it is never applied anywhere.
func TestClusterCrashLosesUnpersistedState(t *testing.T) {
	for _, seed := range []uint64{6, 21, 22, 23} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			c := newCluster(t, 3, seed, withPreVoteCheckQuorum)
			lead, err := c.ElectLeader(100)
			require.NoError(t, err)
			var want [][]byte
			propose := func(through uint64, k int) {
				for i := 0; i < k; i++ {
					data := cmd(len(want))
					require.NoError(t, c.Propose(through, data))
					want = append(want, data)
				}
			}
			propose(lead, 10)
			require.NoError(t, c.Stabilize())
			tick(t, c, 2)

			var f uint64
			for _, id := range c.IDs() {
				if id != lead {
					f = id
				}
			}
			// The leader persists and sends; the follower steps the append
			// but crashes before its Ready is handled.
			propose(lead, 5)
			require.True(t, c.ProcessReady())
			c.Deliver()
			require.True(t, c.Node(f).RawNode.HasReady())
			persisted := lastIndex(t, c.Node(f).Storage)
			require.Less(t, persisted, lastIndex(t, c.Node(lead).Storage))
			c.Node(f).Crash()
			require.NoError(t, c.Stabilize())
			require.Equal(t, persisted, lastIndex(t, c.Node(f).Storage), "nothing of the crashed Ready was persisted")
			require.Len(t, c.Node(lead).AppliedData(), len(want), "the two others commit without it")
			require.NoError(t, c.Node(f).Restart())
			settle(t, c, 20)
			require.Equal(t, want, requireSameApplied(t, c))

			// The leader crashes with a proposal it never persisted or sent.
			require.NoError(t, c.Propose(lead, []byte("never-sent")))
			c.Node(lead).Crash()
			var next uint64
			for i := 0; i < 100 && next == 0; i++ {
				tick(t, c, 1)
				if l := c.Leader(); l != 0 && l != lead {
					next = l
				}
			}
			require.NotZero(t, next, "a new leader after the leader's crash")
			propose(next, 10)
			require.NoError(t, c.Stabilize())
			require.NoError(t, c.Node(lead).Restart())
			settle(t, c, 40)
			require.Equal(t, next, requireOneLeader(t, c))
			require.Equal(t, want, requireSameApplied(t, c), "the unsent proposal is gone, everything committed stays")
			for _, id := range c.IDs() {
				requireContiguous(t, c.Node(id))
			}
			require.Empty(t, c.StepErrors)
		})
	}
}

// Nodes crash and restart over and over, the leader among them; every node
// ends with the same history, each index applied once, nothing committed
// lost.
func TestClusterRepeatedCrashRestart(t *testing.T) {
	c := newCluster(t, 5, 31, withPreVoteCheckQuorum)
	_, err := c.ElectLeader(100)
	require.NoError(t, err)
	var want [][]byte
	for round := 0; round < 10; round++ {
		victim := uint64(round%5 + 1)
		c.Node(victim).Crash()
		if round%2 == 1 {
			// A second node down at once: three of five still make a quorum.
			c.Node(uint64((round+2)%5 + 1)).Crash()
		}
		var lead uint64
		for i := 0; i < 100 && lead == 0; i++ {
			lead = c.Leader()
			if lead == 0 {
				tick(t, c, 1)
			}
		}
		require.NotZero(t, lead, "round %d: a leader among the survivors", round)
		for i := 0; i < 20; i++ {
			data := cmd(len(want))
			require.NoError(t, c.Propose(lead, data))
			want = append(want, data)
		}
		require.NoError(t, c.Stabilize())
		require.Len(t, c.Node(lead).AppliedData(), len(want), "round %d: committed with nodes down", round)
		for _, id := range c.IDs() {
			if c.Node(id).RawNode == nil {
				require.NoError(t, c.Node(id).Restart())
			}
		}
		settle(t, c, 60)
		require.Equal(t, want, requireSameApplied(t, c), "round %d", round)
	}
	for _, id := range c.IDs() {
		requireContiguous(t, c.Node(id))
		requireNoRepeats(t, c.Node(id).AppliedData())
	}
	require.Empty(t, c.StepErrors)
}

// On a lossy network, nodes agree on everything they apply, apply nothing
// twice and nothing that was not proposed; once the network heals, they
// all converge.
func TestClusterLossyNetwork(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			c := newCluster(t, 5, seed, withPreVoteCheckQuorum)
			_, err := c.ElectLeader(100)
			require.NoError(t, err)
			c.Net.SetDropRate(0.2)
			proposed := map[string]bool{}
			next := 0
			for step := 0; step < 400 && next < 200; step++ {
				if lead := c.Leader(); lead != 0 {
					data := cmd(next)
					err := c.Propose(lead, data)
					if err == nil {
						proposed[string(data)] = true
						next++
					} else {
						require.True(t, errors.Is(err, raft.ErrProposalDropped), "%v", err)
					}
				}
				c.Tick()
				require.NoError(t, c.Stabilize())
			}
			c.Net.Heal()
			tick(t, c, 50)
			applied := requireSameApplied(t, c)
			seen := map[string]bool{}
			for _, d := range applied {
				require.True(t, proposed[string(d)], "applied %q, never proposed", d)
				require.False(t, seen[string(d)], "applied %q twice", d)
				seen[string(d)] = true
			}
			require.Greater(t, len(applied), 100, "most proposals survive 20%% loss")
			requireOneLeader(t, c)
		})
	}
}

// On a network that delays, reorders and duplicates messages, a cluster
// still agrees, applies nothing twice and makes progress; messages wait
// for the ticks they are due at.
func TestClusterDelayingNetwork(t *testing.T) {
	c := newCluster(t, 5, 4, withPreVoteCheckQuorum)
	_, err := c.ElectLeader(100)
	require.NoError(t, err)
	c.Net.SetDelay(2)
	c.Net.SetDupRate(0.2)
	next := 0
	for step := 0; step < 300 && next < 100; step++ {
		if lead := c.Leader(); lead != 0 && c.Propose(lead, cmd(next)) == nil {
			next++
		}
		c.Tick()
		require.NoError(t, c.Stabilize())
	}
	require.Greater(t, c.Net.Delivered[pb.MsgApp], c.Net.Sent[pb.MsgApp], "some appends arrived twice")
	c.Net.SetDelay(0)
	c.Net.SetDupRate(0)
	tick(t, c, 20)
	applied := requireSameApplied(t, c)
	requireNoRepeats(t, applied)
	require.Greater(t, len(applied), 50)
	requireOneLeader(t, c)
}
