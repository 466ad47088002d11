package raft

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

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

// Node.Propose passes on why a proposal was dropped: here a follower with
// forwarding disabled.
func TestNodeProposalDropReasons(t *testing.T) {
	peers := []Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	nn := newNodeNetWith(t, []uint64{1, 2, 3}, func(id uint64, s *MemoryStorage) Node {
		cfg := testConfig(id, s)
		cfg.DisableProposalForwarding = true
		return StartNode(cfg, peers)
	})
	nn.elect(1)
	requireDropped(t, nn.nodes[2].Propose(nn.ctx, []byte("x")), ErrProposalForwardingDisabled)
}

func TestProposalDropReasonsAreDistinct(t *testing.T) {
	reasons := []error{ErrProposalNoLeader, ErrProposalLeaderTransfer, ErrProposalForwardingDisabled, ErrProposalTooLarge, ErrProposalNodeRemoved, ErrProposalConfChangeRefused}
	for i, r := range reasons {
		require.ErrorIs(t, r, ErrProposalDropped)
		require.True(t, strings.HasPrefix(r.Error(), "raft: proposal dropped: "), r.Error())
		for j, other := range reasons {
			if i != j {
				require.NotErrorIs(t, r, other)
			}
		}
		require.NotErrorIs(t, ErrProposalDropped, r, "the general error is no particular reason")
	}
}

// ProposeWithResult through a Node: the leader reports the (index, term)
// the proposal was appended at, and the entry committed there is it; a
// follower reports that it forwarded the proposal to the leader, and
// ForwardedOutcomes later says where the leader appended it.
func TestNodeProposeWithResult(t *testing.T) {
	nn := newNodeNet(t, 1, 2)
	nn.elect(1)
	res, err := ProposeWithResult(nn.ctx, nn.nodes[1], []byte("via the leader"))
	require.NoError(t, err)
	require.False(t, res.Forwarded)
	require.Equal(t, uint64(1), res.Leader)
	st := nn.nodes[1].Status()
	require.Equal(t, st.Term, res.Term)
	nn.runUntil("the proposal to apply", func() bool { return nn.nodes[1].Status().Applied >= res.Index })
	ents, err := nn.storages[1].Entries(res.Index, res.Index+1, noLimit)
	require.NoError(t, err)
	require.Equal(t, res.Term, ents[0].Term)
	require.Equal(t, []byte("via the leader"), ents[0].Data)

	fres, err := ProposeWithResult(nn.ctx, nn.nodes[2], []byte("via a follower"))
	require.NoError(t, err)
	require.Equal(t, ProposalResult{Forwarded: true, Leader: 1, ForwardID: 1}, fres)
	var outcomes []ForwardedOutcome
	nn.runUntil("the forwarded proposal's outcome", func() bool {
		got, err := ForwardedOutcomes(nn.ctx, nn.nodes[2])
		require.NoError(t, err)
		outcomes = append(outcomes, got...)
		return len(outcomes) > 0
	})
	require.Len(t, outcomes, 1)
	out := outcomes[0]
	require.Equal(t, fres.ForwardID, out.ForwardID)
	require.False(t, out.Unknown)
	nn.runUntil("the forwarded proposal to apply", func() bool { return nn.nodes[2].Status().Applied >= out.Index })
	ents, err = nn.storages[2].Entries(out.Index, out.Index+1, noLimit)
	require.NoError(t, err)
	require.Equal(t, out.Term, ents[0].Term)
	require.Equal(t, []byte("via a follower"), ents[0].Data)

	_, err = ProposeWithResult(nn.ctx, nil, nil)
	require.ErrorIs(t, err, errNotOwnNode)
	_, err = ForwardedOutcomes(nn.ctx, nil)
	require.ErrorIs(t, err, errNotOwnNode)
}
