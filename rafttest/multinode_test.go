package rafttest_test

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

// A follower forwards proposals to the leader.
func TestClusterProposalThroughFollower(t *testing.T) {
	c := newCluster(t, 3, 2, nil)
	lead, err := c.ElectLeader(100)
	require.NoError(t, err)
	var follower uint64
	for _, id := range c.IDs() {
		if id != lead {
			follower = id
		}
	}
	require.NoError(t, c.Propose(follower, []byte("via follower")))
	require.NoError(t, c.Stabilize())
	tick(t, c, 2)
	require.Equal(t, [][]byte{[]byte("via follower")}, requireSameApplied(t, c))
}

// An isolated leader is replaced; with CheckQuorum it steps down on its
// own, and with PreVote it rejoins without raising the term and
// disrupting the new leader.
func TestClusterLeaderIsolation(t *testing.T) {
	c := newCluster(t, 5, 3, withPreVoteCheckQuorum)
	old, err := c.ElectLeader(100)
	require.NoError(t, err)
	tick(t, c, 3)
	require.NoError(t, c.Propose(old, []byte("before")))
	require.NoError(t, c.Stabilize())

	c.Net.Isolate(old, c.IDs())
	var lead uint64
	for i := 0; i < 100 && (lead == 0 || lead == old); i++ {
		tick(t, c, 1)
		for _, id := range c.Leaders() {
			if id != old {
				lead = id
			}
		}
	}
	require.NotZero(t, lead, "the majority elects a new leader")
	require.NotEqual(t, old, lead)
	// The old leader hears from no one and steps down within an election
	// timeout or two.
	tick(t, c, 25)
	require.NotEqual(t, raft.StateLeader, c.Node(old).RawNode.BasicStatus().RaftState, "CheckQuorum makes it step down")
	require.NoError(t, c.Propose(lead, []byte("after")))
	require.NoError(t, c.Stabilize())
	term := c.Node(lead).RawNode.BasicStatus().Term
	// Left alone for a long time, the isolated node campaigns over and over,
	// but only in pre-elections: its term stays behind.
	tick(t, c, 100)
	require.Less(t, c.Node(old).RawNode.BasicStatus().Term, term+1)

	c.Net.Heal()
	tick(t, c, 30)
	require.Equal(t, lead, requireOneLeader(t, c), "the new leader keeps leading")
	require.Equal(t, term, c.Node(lead).RawNode.BasicStatus().Term, "no disruptive term bump on rejoin")
	require.Equal(t, [][]byte{[]byte("before"), []byte("after")}, requireSameApplied(t, c))
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

// A follower that missed hundreds of entries over several terms, and holds
// a divergent uncommitted tail of its own, catches up in a few round trips
// thanks to fast backtracking.
func TestClusterFarBehindFollowerCatchesUp(t *testing.T) {
	c := newCluster(t, 5, 5, nil)
	require.NoError(t, c.Campaign(1))
	tick(t, c, 2)
	// 1 leads, is cut off, and keeps taking proposals that never commit.
	c.Net.Isolate(1, c.IDs())
	for i := 0; i < 100; i++ {
		require.NoError(t, c.Propose(1, []byte(fmt.Sprintf("lost-%d", i))))
	}
	require.NoError(t, c.Stabilize())
	// The others go through several leaders, committing in each term.
	var want [][]byte
	for round, lead := range []uint64{2, 3, 4, 5, 2} {
		require.NoError(t, c.Campaign(lead))
		require.Equal(t, raft.StateLeader, c.Node(lead).RawNode.BasicStatus().RaftState)
		for i := 0; i < 200; i++ {
			data := cmd(round*1000 + i)
			require.NoError(t, c.Propose(lead, data))
			want = append(want, data)
		}
		require.NoError(t, c.Stabilize())
	}
	// Node 1 heard of none of it and must be made to follow again.
	c.Node(1).RawNode.Tick() // nothing: it is still a lonely leader
	var rejections, appends int
	c.Net.OnDeliver = func(m pb.Message) {
		if m.To == 1 && m.Type == pb.MsgApp {
			appends++
		}
		if m.From == 1 && m.Type == pb.MsgAppResp && m.Reject {
			rejections++
		}
	}
	c.Net.Heal()
	tick(t, c, 5)
	require.Equal(t, want, requireSameApplied(t, c))
	for _, d := range c.Node(1).AppliedData() {
		require.False(t, bytes.HasPrefix(d, []byte("lost-")), "an uncommitted entry of the old leader was applied")
	}
	t.Logf("catch-up: %d rejections, %d appends to the lagging node", rejections, appends)
	// Naive backtracking would take one rejection per divergent entry (100)
	// at least. Five terms are involved.
	require.LessOrEqual(t, rejections, 6)
}

// Crashed nodes lose what they had not persisted, restart from storage and
// catch up; nothing committed is lost, nothing is applied twice.
func TestClusterCrashAndRestart(t *testing.T) {
	c := newCluster(t, 3, 6, withPreVoteCheckQuorum)
	lead, err := c.ElectLeader(100)
	require.NoError(t, err)
	var want [][]byte
	propose := func(through uint64, k int) {
		for i := 0; i < k; i++ {
			data := cmd(len(want))
			require.NoError(t, c.Propose(through, data))
			want = append(want, data)
		}
		require.NoError(t, c.Stabilize())
	}
	propose(lead, 20)

	// A follower crashes and misses entries.
	var follower uint64
	for _, id := range c.IDs() {
		if id != lead {
			follower = id
		}
	}
	c.Node(follower).Crash()
	propose(lead, 20)
	require.NoError(t, c.Node(follower).Restart())
	tick(t, c, 5)
	require.Equal(t, want, requireSameApplied(t, c))

	// The leader crashes: another is elected and takes proposals.
	c.Node(lead).Crash()
	var next uint64
	for i := 0; i < 100 && next == 0; i++ {
		tick(t, c, 1)
		if l := c.Leader(); l != 0 && l != lead {
			next = l
		}
	}
	require.NotZero(t, next, "a new leader after the crash")
	propose(next, 20)
	require.NoError(t, c.Node(lead).Restart())
	tick(t, c, 30)
	requireOneLeader(t, c)
	require.Equal(t, want, requireSameApplied(t, c))
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
