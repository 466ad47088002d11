package raft

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
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

	// A message refused as malformed comes back as an error.
	require.ErrorIs(t, n.Step(context.Background(), pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 1,
		Entries: []pb.Entry{{Index: 1, Term: 1}, {Index: 3, Term: 1}}}), ErrInvalidMessage)

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

// While the application is slow to take a Ready, the node builds it once
// and keeps it until something changes the node: a loop round that
// changes nothing (a Status call) does not rebuild it, and the Ready
// taken after a change shows the change.
func TestNodeReadyBuiltOncePerChange(t *testing.T) {
	s := NewMemoryStorage()
	n := StartNode(testConfig(1, s), []Peer{{ID: 1}}).(*node)
	defer func() {
		n.Stop()
		requireNoNodeGoroutines(t)
	}()
	idle := func() {
		for i := 0; i < 50; i++ {
			n.Status() // a loop round each, with a Ready pending
		}
	}
	idle()
	require.Equal(t, uint64(1), n.readyBuilds.Load(), "Ready builds with nothing changed")
	rd := <-n.Ready()
	require.NoError(t, s.Append(rd.Entries))
	require.NoError(t, s.SetHardState(rd.HardState))
	for _, e := range rd.CommittedEntries {
		cc, err := pb.UnmarshalConfChange(e)
		require.NoError(t, err)
		n.ApplyConfChange(cc)
	}
	n.Advance()

	require.NoError(t, n.Campaign(context.Background()))
	for n.Status().RaftState != StateLeader {
		rd := <-n.Ready()
		require.NoError(t, s.Append(rd.Entries))
		require.NoError(t, s.SetHardState(rd.HardState))
		n.Advance()
	}
	require.NoError(t, n.Propose(context.Background(), []byte("x")))
	idle()
	builds := n.readyBuilds.Load()
	idle()
	require.Equal(t, builds, n.readyBuilds.Load(), "Ready builds with nothing changed")
	require.NoError(t, n.Propose(context.Background(), []byte("y")))
	idle()
	require.Equal(t, builds+1, n.readyBuilds.Load(), "Ready builds after one change")
	rd = <-n.Ready()
	require.Equal(t, []byte("y"), rd.Entries[len(rd.Entries)-1].Data, "the Ready taken shows the last proposal")
	require.NoError(t, s.Append(rd.Entries))
	require.NoError(t, s.SetHardState(rd.HardState))
	n.Advance()
}

// Requests already waiting when a Ready is offered join that Ready
// instead of each making a Ready of their own: ten proposals queued
// behind the first come out in one Ready even though the application is
// waiting for Readys all along.
func TestNodeReadyTakesWaitingRequests(t *testing.T) {
	s := NewMemoryStorage()
	rn, err := NewRawNode(testConfig(1, s))
	require.NoError(t, err)
	require.NoError(t, rn.Bootstrap([]Peer{{ID: 1}}))
	for i := 0; rn.HasReady() || rn.raft.state != StateLeader; i++ {
		require.Less(t, i, 10, "no leader")
		if !rn.HasReady() {
			require.NoError(t, rn.Campaign())
			continue
		}
		rd := rn.Ready()
		require.NoError(t, s.Append(rd.Entries))
		require.NoError(t, s.SetHardState(rd.HardState))
		for _, e := range rd.CommittedEntries {
			if e.Type == pb.EntryConfChange {
				cc, err := pb.UnmarshalConfChange(e)
				require.NoError(t, err)
				rn.ApplyConfChange(cc)
			}
		}
		rn.Advance(rd)
	}
	n := newNode(rn)
	const queued = 10
	n.propc = make(chan stepRequest, queued)
	for i := 0; i < queued; i++ {
		n.propc <- stepRequest{m: pb.Message{Type: pb.MsgProp, Entries: []pb.Entry{{Data: []byte{byte(i)}}}}}
	}
	got := make(chan Ready)
	go func() { got <- <-n.Ready() }()
	waitBlockedIn(t, "TestNodeReadyTakesWaitingRequests.func1")
	go n.run()
	defer func() {
		n.Stop()
		requireNoNodeGoroutines(t)
	}()
	rd := <-got
	require.Len(t, rd.Entries, queued, "entries in the first Ready")
	require.NoError(t, s.Append(rd.Entries))
	n.Advance()
}

// A call that waits for the node's answer allocates nothing of its own:
// its result channel is reused.
func TestNodeStepAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	n := StartNode(testConfig(1, NewMemoryStorage()), []Peer{{ID: 1}})
	defer func() {
		n.Stop()
		requireNoNodeGoroutines(t)
	}()
	// A response from a node outside the configuration: dropped (not
	// reported, as etcd's Node.Step does not), and nothing changes.
	m := pb.Message{Type: pb.MsgHeartbeatResp, From: 9, To: 1, Term: 1}
	ctx := context.Background()
	require.NoError(t, n.Step(ctx, m))
	allocs := testing.AllocsPerRun(100, func() { _ = n.Step(ctx, m) })
	require.Zero(t, allocs, "allocations per Step")
}

// A message that takes the leader away (a vote of a higher term) while a
// Ready waits to be taken stops proposals from being taken in the same
// drain, as the main loop does: Propose waits for a leader instead of
// failing with ErrProposalNoLeader.
func TestNodeDrainStopsProposalsWithoutLeader(t *testing.T) {
	for try := 0; try < 50; try++ {
		s := NewMemoryStorage()
		require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1,
			ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}))
		rn, err := NewRawNode(testConfig(1, s))
		require.NoError(t, err)
		n := newNode(rn)
		require.NoError(t, rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 1, Commit: 1}))
		require.Equal(t, uint64(2), rn.raft.lead)
		stepErr, propErr := make(chan error, 1), make(chan error, 1)
		go func() {
			stepErr <- n.Step(context.Background(), pb.Message{Type: pb.MsgVote, From: 3, To: 1, Term: 5, LogTerm: 1, Index: 1})
		}()
		go func() { propErr <- n.Propose(context.Background(), []byte("x")) }()
		waitBlockedIn(t, "raft.(*node).Propose(")
		waitBlockedIn(t, "raft.(*node).Step(")
		n.drain(n.propc)
		require.NoError(t, <-stepErr)
		select {
		case err := <-propErr:
			require.NoError(t, err, "try %d: taken with leader %x", try, rn.raft.lead)
		default: // still waiting for a leader
		}
		close(n.done)
	}
}

// Node.Step reports malformed messages, and not the refusals of ordinary
// operation etcd raft's Node.Step does not report either.
func TestNodeStepReportsOnlyInvalidMessages(t *testing.T) {
	s := NewMemoryStorage()
	n := StartNode(testConfig(1, s), []Peer{{ID: 1}, {ID: 2}, {ID: 3}})
	defer n.Stop()
	ctx := context.Background()
	// A late answer from a peer no longer in the configuration.
	require.NoError(t, n.Step(ctx, pb.Message{Type: pb.MsgAppResp, From: 9, To: 1, Term: 1}))
	// A local message type arriving from the network.
	require.NoError(t, n.Step(ctx, pb.Message{Type: pb.MsgHup, From: 2, To: 1}))
	// A proposal forwarded to a node that knows no leader.
	require.NoError(t, n.Step(ctx, pb.Message{Type: pb.MsgProp, From: 2, To: 1, Entries: []pb.Entry{{Data: []byte("x")}}}))
	// Malformed: entries that do not follow one another.
	err := n.Step(ctx, pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 1,
		Entries: []pb.Entry{{Index: 1, Term: 1}, {Index: 3, Term: 1}}})
	require.ErrorIs(t, err, ErrInvalidMessage)
}

// A proposal whose context is already done is never taken.
func TestNodeProposeWithDoneContextProposesNothing(t *testing.T) {
	s := NewMemoryStorage()
	n := StartNode(testConfig(1, s), []Peer{{ID: 1}})
	defer n.Stop()
	rd := <-n.Ready() // the bootstrap entries, applied before campaigning
	require.NoError(t, s.Append(rd.Entries))
	require.NoError(t, s.SetHardState(rd.HardState))
	n.Advance()
	require.NoError(t, n.Campaign(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	go func() {
		for i := 0; i < 200; i++ {
			_ = n.Propose(ctx, []byte("never"))
		}
		_ = n.Propose(context.Background(), []byte("last"))
	}()
	for {
		rd := <-n.Ready()
		require.NoError(t, s.Append(rd.Entries))
		if !IsEmptyHardState(rd.HardState) {
			require.NoError(t, s.SetHardState(rd.HardState))
		}
		for _, e := range rd.Entries {
			require.NotEqual(t, "never", string(e.Data))
		}
		done := false
		for _, e := range rd.CommittedEntries {
			done = done || string(e.Data) == "last"
		}
		n.Advance()
		if done {
			return
		}
	}
}
