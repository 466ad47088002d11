package raft

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// The leader's lease (ReadOnlyLeaseBased) against adversarial message
// delivery: every node ticks at the same rate, which the lease assumes;
// only messages are delayed or lost.

func withLease(c *Config) {
	c.CheckQuorum = true
	c.PreVote = true
	c.ReadOnlyOption = ReadOnlyLeaseBased
}

// flow handles Readys and delivers the messages keep lets through until
// the cluster is quiet; the others are returned (in flight, or lost).
func flow(c *testCluster, keep func(pb.Message) bool) (held []pb.Message) {
	for {
		var msgs []pb.Message
		for _, id := range c.ids {
			msgs = append(msgs, c.nodes[id].ready()...)
		}
		if len(msgs) == 0 {
			return held
		}
		for _, m := range msgs {
			if keep(m) {
				_ = c.nodes[m.To].rn.Step(m)
			} else {
				held = append(held, m)
			}
		}
	}
}

// between lets through the messages between a and b.
func between(a, b uint64) func(pb.Message) bool {
	return func(m pb.Message) bool { return (m.From == a && m.To == b) || (m.From == b && m.To == a) }
}

func all(pb.Message) bool { return true }

// tickFlow ticks every node once, then flows the messages keep lets
// through.
func tickFlow(c *testCluster, keep func(pb.Message) bool) (held []pb.Message) {
	for _, id := range c.ids {
		c.nodes[id].tick(1)
	}
	return flow(c, keep)
}

// requireNoStaleLeaseRead asks old, which believes it leads, for a read and
// fails if it answers below what node now committed.
func requireNoStaleLeaseRead(t *testing.T, old, now *testNode) {
	t.Helper()
	old.reads = nil
	old.rn.ReadIndex([]byte("read"))
	old.ready()
	for _, rs := range old.reads {
		require.GreaterOrEqual(t, rs.Index, now.r().raftLog.committed, "a read answered below a committed write")
	}
}

// A follower that adopts a later term from a late message (here its
// peer's refusal of a pre-vote it sent before it heard from the leader
// again) forgets the leader, but not its promise: it does not help elect
// anyone while the leader's lease may hold, so the leader's reads stay
// current. Once the leader is gone, the election follows.
func TestLeaseSurvivesLateHigherTerm(t *testing.T) {
	c := newTestCluster(t, 3, withLease)
	n1 := c.nodes[1]
	c.campaign(1)
	tickFlow(c, all)
	for n1.r().electionElapsed != 0 { // just after 1's quorum check
		tickFlow(c, all)
		require.Less(t, n1.r().ticks, uint64(100))
	}
	term := n1.r().Term
	// 1's messages are lost; 2 and 3 time out. The pre-vote requests
	// between them are delayed, and the vote requests lost, so that one
	// of them (x) becomes a candidate of the next term, unelected.
	var preVotes []pb.Message
	var x, f *testNode
	var first uint64
	for x == nil {
		for _, id := range c.ids {
			c.nodes[id].tick(1)
		}
		for _, id := range []uint64{2, 3} {
			if first == 0 && c.nodes[id].r().state == StatePreCandidate {
				first = id
			}
		}
		preVotes = append(preVotes, filterMsgs(flow(c, func(m pb.Message) bool {
			return between(2, 3)(m) && m.Type != pb.MsgVote && !(m.Type == pb.MsgPreVote && m.From == first)
		}), pb.MsgPreVote, 0)...)
		for _, id := range []uint64{2, 3} {
			if c.nodes[id].r().state == StateCandidate {
				x, f = c.nodes[id], c.nodes[5-id]
			}
		}
		require.Equal(t, StateLeader, n1.r().state)
		require.Less(t, n1.r().ticks, uint64(200))
	}
	require.Equal(t, term+1, x.r().Term)
	// f's delayed pre-vote request reaches x, whose refusal (carrying
	// x's term) is delayed in turn.
	for _, m := range filterMsgs(preVotes, pb.MsgPreVote, x.r().id) {
		require.NoError(t, x.rn.Step(m))
	}
	refusal := filterMsgs(x.ready(), pb.MsgPreVoteResp, f.r().id)
	require.Len(t, refusal, 1)
	require.True(t, refusal[0].Reject)
	// 1 and f talk again; x is cut off until it is about to time out.
	for x.r().electionElapsed < x.r().randomizedElectionTimeout-1 {
		tickFlow(c, between(1, f.r().id))
		require.Equal(t, uint64(1), f.r().lead)
	}
	require.True(t, n1.r().leaseValid())
	// The refusal arrives: f adopts x's term and forgets its leader. From
	// now on 1 is cut off: x campaigns, and f is its only peer.
	require.NoError(t, f.rn.Step(refusal[0]))
	require.Equal(t, term+1, f.r().Term)
	require.Equal(t, None, f.r().lead)
	xf := between(f.r().id, x.r().id)
	for i := 0; n1.r().leaseValid(); i++ {
		require.Less(t, i, n1.r().electionTimeout)
		require.NotEqual(t, StateLeader, x.r().state, "elected while the old leader's lease holds")
		requireNoStaleLeaseRead(t, n1, x)
		tickFlow(c, xf)
	}
	// The lease over, the old leader is left behind.
	for i := 0; i < 4*n1.r().electionTimeout && x.r().state != StateLeader && f.r().state != StateLeader; i++ {
		tickFlow(c, xf)
	}
	require.True(t, x.r().state == StateLeader || f.r().state == StateLeader, "no leader elected after the lease")
}

// Two followers asked to campaign (Campaign) while the leader's lease
// holds: each, a pre-candidate that no longer knows the leader, still
// refuses the other's pre-vote. The first refusal decides: neither wins.
func TestLeaseSurvivesTwoCampaigns(t *testing.T) {
	c := newTestCluster(t, 3, withLease)
	n1, n2, n3 := c.nodes[1], c.nodes[2], c.nodes[3]
	c.campaign(1)
	tickFlow(c, all)
	require.True(t, n1.r().leaseValid())
	no1 := func(m pb.Message) bool { return m.From != 1 && m.To != 1 }
	require.NoError(t, n3.rn.Campaign())
	require.NoError(t, n2.rn.Campaign())
	// 2's pre-vote request is lost: 3 asks 2, a pre-candidate itself.
	flow(c, func(m pb.Message) bool { return no1(m) && !(m.From == 2 && m.Type == pb.MsgPreVote) })
	for i := 0; n1.r().leaseValid(); i++ {
		require.Less(t, i, n1.r().electionTimeout)
		require.Equal(t, []uint64{1}, c.leaders())
		requireNoStaleLeaseRead(t, n1, n2)
		tickFlow(c, no1)
	}
}

// A timeout-now that arrives after the leader abandoned its transfer
// elects the transferee with votes that ignore leases: the leader holds no
// lease for the rest of the term in which it started the transfer, and
// confirms reads with a heartbeat round, which the new leader's voters do
// not acknowledge. Its next term starts with a lease again.
func TestLeaseNotAfterAbandonedTransfer(t *testing.T) {
	c := newTestCluster(t, 3, withLease)
	n1, n2 := c.nodes[1], c.nodes[2]
	c.campaign(1)
	notTimeoutNow := func(m pb.Message) bool { return m.Type != pb.MsgTimeoutNow }
	tickFlow(c, all)
	n1.rn.TransferLeader(2)
	late := filterMsgs(flow(c, notTimeoutNow), pb.MsgTimeoutNow, 2)
	require.Len(t, late, 1) // delayed in the network
	for i := 0; n1.r().transferee() != None; i++ {
		require.Less(t, i, n1.r().electionTimeout)
		tickFlow(c, notTimeoutNow) // the copies sent again are lost
	}
	for range n1.r().electionTimeout {
		tickFlow(c, all)
		require.False(t, n1.r().leaseValid(), "a lease in the term of an abandoned transfer")
		require.Empty(t, n1.r().leaseAcks)
	}
	n1.tick(1) // a heartbeat round (lost), without the lease's context
	hbs := filterMsgs(n1.ready(), pb.MsgHeartbeat, 0)
	require.NotEmpty(t, hbs)
	for _, m := range hbs {
		require.Empty(t, m.Context)
	}
	// The timeout-now arrives at last; 1 is cut off from then on.
	no1 := func(m pb.Message) bool { return m.From != 1 && m.To != 1 }
	require.NoError(t, n2.rn.Step(late[0]))
	flow(c, no1)
	require.Equal(t, StateLeader, n2.r().state)
	require.NoError(t, n2.rn.Propose([]byte("w")))
	flow(c, no1)
	require.Equal(t, StateLeader, n1.r().state)
	requireNoStaleLeaseRead(t, n1, n2)
	require.Empty(t, n1.reads, "not confirmed by a heartbeat round")

	// Leadership handed back to 1, in a new term: its lease works again.
	oldTerm := n1.r().Term
	n2.rn.TransferLeader(1)
	for i := 0; i < n1.r().electionTimeout && (n1.r().state != StateLeader || n1.r().Term == oldTerm); i++ {
		tickFlow(c, all)
	}
	require.Equal(t, StateLeader, n1.r().state)
	require.Greater(t, n1.r().Term, oldTerm)
	tickFlow(c, all)
	require.True(t, n1.r().leaseValid())
}

// The promise not to vote, and so the lease, lasts an election timeout
// capped to 2^32-1 ticks: a larger ElectionTick gives a promise of that
// many ticks (not of the timeout's low 32 bits), and a lease no longer.
func TestLeaseCappedToVoteLease(t *testing.T) {
	huge := func(c *Config) {
		withLease(c)
		c.ElectionTick = 1<<33 + 5
	}
	f := newTestNode(t, 2, []uint64{1, 2, 3}, huge)
	f.step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 3})
	f.ready()
	require.Equal(t, uint32(math.MaxUint32), f.r().voteLease)
	f.step(pb.Message{From: 3, To: 2, Type: pb.MsgPreVote, Term: 4, LogTerm: 3, Index: 10})
	require.Empty(t, f.ready(), "pre-vote dropped within the promise")

	c := newTestCluster(t, 3, huge)
	c.campaign(1)
	tickFlow(c, all)
	lead := c.nodes[1].r()
	sent := lead.ticks
	require.Equal(t, map[uint64]uint64{2: sent, 3: sent}, lead.leaseAcks)
	lead.ticks = sent + math.MaxUint32 - 1 - leaseMarginTicks
	require.True(t, lead.leaseValid())
	lead.ticks++
	require.False(t, lead.leaseValid(), "the lease outlasts the followers' promise")
}

// With lease-based reads, a follower's own Campaign (the application's
// call) within an election timeout of hearing from the leader does nothing,
// as ForgetLeader does: its vote for itself would break its promise, and
// with a voter that has not heard from the leader for a timeout it would
// win while the old leader still answers reads from its lease. A leader
// transfer's campaign is not held back (TestLeaseNotAfterAbandonedTransfer).
func TestLeaseSurvivesAFollowersCampaign(t *testing.T) {
	c := newTestCluster(t, 3, withLease)
	n1, n2 := c.nodes[1], c.nodes[2]
	c.campaign(1)
	tickFlow(c, all)
	// 3 hears nothing from 1 for an election timeout (and stays a
	// follower: its randomized timeout is longer).
	for i := 0; i < c.nodes[3].r().electionTimeout; i++ {
		n1.tick(1)
		n2.tick(1)
		c.nodes[3].tick(1)
		flow(c, between(1, 2))
	}
	require.True(t, n1.r().leaseValid())
	require.NoError(t, n2.rn.Campaign()) // the application's call, while 2's promise runs
	no1 := func(m pb.Message) bool { return m.From != 1 && m.To != 1 }
	flow(c, no1)
	require.Equal(t, StateFollower, n2.r().state, "a follower within its promise does not campaign")
	require.True(t, n1.r().leaseValid())
	requireNoStaleLeaseRead(t, n1, n2)
}

// Node 2 (AsyncStorageWrites, nothing durable yet: term 0) acknowledges the
// leader's heartbeat at once, and crashes before its HardState is written.
// Restarted at term 0, it keeps the promise its acknowledgement made (as a
// node restarting at a later term does): node 3 is not elected while node
// 1 still answers reads from the lease that acknowledgement built.
func TestLeaseSurvivesAsyncNodeLosingItsFirstTerm(t *testing.T) {
	async := func(c *Config) { c.AsyncStorageWrites = true }
	voters := []uint64{1, 2, 3}
	n1 := newTestNode(t, 1, voters, withLease)
	n3 := newTestNode(t, 3, voters, withLease)
	s2 := NewMemoryStorage()
	mk2 := func() *RawNode {
		cfg := testConfig(2, s2)
		withLease(cfg)
		async(cfg)
		rn, err := NewRawNode(cfg)
		require.NoError(t, err)
		require.NoError(t, rn.raft.restoreConfState(pb.ConfState{Voters: voters}))
		return rn
	}
	rn2 := mk2()
	// ready2 hands out node 2's Ready; its storage work is lost (crash).
	persist := false
	ready2 := func() (out []pb.Message) {
		for rn2.HasReady() {
			for _, m := range rn2.Ready().Messages {
				switch {
				case m.To == LocalAppendThread && persist:
					require.NoError(t, saveStorageAppend(s2, m))
					for _, r := range m.Responses {
						if r.To == 2 {
							require.NoError(t, rn2.Step(r))
						} else {
							out = append(out, r)
						}
					}
				case m.To == LocalApplyThread && persist:
					for _, r := range m.Responses {
						require.NoError(t, rn2.Step(r))
					}
				case m.To != LocalAppendThread && m.To != LocalApplyThread:
					out = append(out, m)
				}
			}
		}
		return out
	}
	deliver := func(ms []pb.Message, ok func(pb.Message) bool) {
		for _, m := range ms {
			if !ok(m) {
				continue
			}
			switch m.To {
			case 1:
				_ = n1.rn.Step(m)
			case 2:
				_ = rn2.Step(m)
			case 3:
				_ = n3.rn.Step(m)
			}
		}
	}
	only13 := func(m pb.Message) bool { return m.To != 2 && m.From != 2 }
	// 1 is elected with 3's votes; 2 hears nothing.
	require.NoError(t, n1.rn.Campaign())
	for i := 0; i < 10; i++ {
		deliver(append(n1.ready(), n3.ready()...), only13)
	}
	require.Equal(t, StateLeader, n1.r().state)
	// From now on 1 and 3 are cut off from each other. Tick until 3 is
	// one tick from campaigning.
	cut13 := func(m pb.Message) bool {
		return !(m.From == 1 && m.To == 3 || m.From == 3 && m.To == 1) && m.To != 2 && m.From != 2
	}
	for n3.r().electionElapsed < n3.r().randomizedElectionTimeout-1 {
		n1.tick(1)
		n3.tick(1)
		rn2.Tick()
		deliver(append(n1.ready(), n3.ready()...), cut13)
		require.Equal(t, StateLeader, n1.r().state)
	}
	// 1's next heartbeat reaches 2, which acknowledges it at once.
	n1.tick(1)
	rn2.Tick()
	hbs := filterMsgs(n1.ready(), pb.MsgHeartbeat, 2)
	require.NotEmpty(t, hbs)
	deliver(hbs, func(pb.Message) bool { return true })
	deliver(ready2(), func(m pb.Message) bool { return m.To == 1 })
	deliver(n1.ready(), func(pb.Message) bool { return false })
	require.True(t, n1.r().leaseValid())
	// 2 crashes before its term is durable and restarts at term 0.
	rn2 = mk2()
	persist = true
	require.Equal(t, uint64(0), rn2.raft.Term)
	// 3 campaigns; 2 is its only peer.
	with23 := func(m pb.Message) bool { return (m.From == 2 && m.To == 3) || (m.From == 3 && m.To == 2) }
	for i := 0; i < 30 && n3.r().state != StateLeader; i++ {
		n3.tick(1)
		rn2.Tick()
		n1.tick(1)
		for j := 0; j < 5; j++ {
			m3 := n3.ready()
			m2 := ready2()
			deliver(append(m3, m2...), with23)
		}
		if !n1.r().leaseValid() {
			break
		}
	}
	for j := 0; j < 5; j++ {
		deliver(append(n3.ready(), ready2()...), with23)
	}
	require.False(t, n3.r().state == StateLeader && n1.r().leaseValid(), "3 elected while 1's lease holds")
	if n3.r().state == StateLeader {
		requireNoStaleLeaseRead(t, n1, n3)
	}
}

// A lone voter's Campaign waits out its promise too. Voters {1,2}: leader
// 1's removal commits, and 1 sends the commit index while it still applies
// the Ready (as the contract allows); 2 applies the removal first and is
// then the only voter, but 1, not yet having applied it, still answers
// reads from a lease that 2's acknowledgement built. 2's Campaign does
// nothing then. Restarted, a single-voter cluster's Campaign likewise waits
// an election timeout, and its own timer elects it.
func TestLeaseLoneVoterWaitsOutItsPromise(t *testing.T) {
	c := newTestCluster(t, 2, withLease)
	n1, n2 := c.nodes[1], c.nodes[2]
	c.campaign(1)
	tickFlow(c, all)
	cc := pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeRemoveNode, NodeID: 1}}}
	require.NoError(t, n1.rn.ProposeConfChange(cc))
	for _, m := range n1.ready() {
		require.NoError(t, n2.rn.Step(m))
	}
	for _, m := range n2.ready() {
		require.NoError(t, n1.rn.Step(m))
	}
	rd := n1.rn.Ready() // commits the removal; 1 applies it later
	require.NoError(t, n1.storage.Save(rd.HardState, rd.Entries, rd.Snapshot))
	for _, m := range rd.Messages {
		require.NoError(t, n2.rn.Step(m))
	}
	n2.ready()
	require.Equal(t, []uint64{2}, n2.r().conf.voterIDs(), "2 applied the removal")
	require.NoError(t, n2.rn.Campaign())
	n2.ready()
	require.Equal(t, StateFollower, n2.r().state, "no campaign within the promise")
	n1.rn.ReadIndex([]byte("read")) // from the lease
	for _, e := range rd.CommittedEntries {
		if e.Type == pb.EntryConfChangeV2 {
			var cc pb.ConfChangeV2
			require.NoError(t, cc.Unmarshal(e.Data))
			n1.rn.ApplyConfChange(cc)
		}
	}
	n1.rn.Advance(rd)
	n1.ready()
	for _, rs := range n1.reads {
		require.GreaterOrEqual(t, rs.Index, n2.r().raftLog.committed, "stale read")
	}

	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1}}}}))
	require.NoError(t, s.SetHardState(pb.HardState{Term: 1, Commit: 1}))
	cfg := testConfig(1, s)
	withLease(cfg)
	rn, err := NewRawNode(cfg)
	require.NoError(t, err)
	handle := func() {
		for rn.HasReady() {
			rd := rn.Ready()
			require.NoError(t, s.Save(rd.HardState, rd.Entries, rd.Snapshot))
			rn.Advance(rd)
		}
	}
	require.NoError(t, rn.Campaign())
	handle()
	require.Equal(t, StateFollower, rn.raft.state, "restarted: no campaign within the promise")
	for i := 0; i < 2*cfg.ElectionTick && rn.raft.state != StateLeader; i++ {
		rn.Tick()
		handle()
	}
	require.Equal(t, StateLeader, rn.raft.state, "its own timer elects it")
}

// The lease ends before any follower's promise can. Heartbeat sent at tick
// t by the leader, acknowledged by 2 and 3 before their own tick of that
// round: their promises run out on their tick of round t+E-1, before the
// leader's tick of that round. 2 then campaigns and commits in that same
// round; the leader must no longer answer from its lease.
func TestLeaseEndsBeforeThePromises(t *testing.T) {
	c := newTestCluster(t, 3, withLease)
	n1, n2, n3 := c.nodes[1], c.nodes[2], c.nodes[3]
	c.campaign(1)
	tickFlow(c, all)
	n1.tick(1) // 1 ticks first and sends a heartbeat; 2 and 3 answer before their tick
	flow(c, all)
	sent := n1.r().ticks
	n2.tick(1)
	n3.tick(1)
	flow(c, all)
	no1 := func(m pb.Message) bool { return m.From != 1 && m.To != 1 }
	for n2.r().voteLease > 0 || n3.r().voteLease > 0 { // 1's heartbeats are lost
		n1.tick(1)
		n2.tick(1)
		n3.tick(1)
		flow(c, no1)
	}
	require.Equal(t, sent+uint64(n1.r().electionTimeout)-1, n1.r().ticks)
	require.False(t, n1.r().leaseValid(), "the lease outlived the promises")
	if n2.r().state != StateLeader { // the same round, before 1's next tick
		require.NoError(t, n2.rn.Campaign())
		flow(c, no1)
	}
	require.Equal(t, StateLeader, n2.r().state)
	require.NoError(t, n2.rn.Propose([]byte("w")))
	flow(c, no1)
	requireNoStaleLeaseRead(t, n1, n2)
}

// A transfer that never sent a timeout-now (its target never caught up)
// leaves the leader its lease once abandoned: no campaign that ignores the
// followers' promises can have started.
func TestLeaseKeptAfterTransferThatSentNoTimeoutNow(t *testing.T) {
	c := newTestCluster(t, 3, withLease)
	n1 := c.nodes[1]
	c.campaign(1)
	tickFlow(c, all)
	no3 := func(m pb.Message) bool { return m.From != 3 && m.To != 3 }
	require.NoError(t, n1.rn.Propose([]byte("x")))
	flow(c, no3) // 3 lags
	n1.rn.TransferLeader(3)
	for i := 0; i < 3*n1.r().electionTimeout; i++ {
		for _, m := range tickFlow(c, no3) {
			require.NotEqual(t, pb.MsgTimeoutNow, m.Type)
		}
	}
	require.Equal(t, StateLeader, n1.r().state)
	require.Equal(t, None, n1.r().leadTransferee, "abandoned")
	require.True(t, n1.r().leaseValid())
}

// A leader forgets the lease acknowledgement of a peer its configuration
// removed: added back under the same ID (perhaps a new process, which
// made no promise), it counts toward the lease only once it acknowledges
// a heartbeat again.
func TestLeaseForgetsRemovedPeersAcks(t *testing.T) {
	c := newTestCluster(t, 3, withLease)
	n1 := c.nodes[1]
	c.campaign(1)
	tickFlow(c, all)
	require.Contains(t, n1.r().leaseAcks, uint64(3))
	n1.rn.ApplyConfChange(pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: 3})
	require.NotContains(t, n1.r().leaseAcks, uint64(3))
	require.Contains(t, n1.r().leaseAcks, uint64(2))
}
