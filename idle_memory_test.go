package raft

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// idleGroups is how many groups the idle-memory measurement builds: enough
// that per-group bytes dwarf the noise of the heap statistics.
const idleGroups = 10_000

// idleFollower is one idle group as a multi-group host keeps it: a RawNode
// and its own MemoryStorage.
type idleFollower struct {
	rn *RawNode
	s  *MemoryStorage
}

// newIdleFollower builds node 1 of a bootstrapped 3-voter group and settles
// it as a follower of node 2: it hears one heartbeat in term 2, persists and
// answers it, and has nothing left to do. Then it is ticked twice, as an
// idle group is (well short of an election timeout): a whole tick without
// a Ready releases the buffers a busy node keeps.
func newIdleFollower(tb testing.TB) idleFollower {
	s := NewMemoryStorage()
	rn, err := NewRawNode(&Config{
		ID:              1,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         s,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		Logger:          DiscardLogger,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := rn.Bootstrap([]Peer{{ID: 1}, {ID: 2}, {ID: 3}}); err != nil {
		tb.Fatal(err)
	}
	settle := func() { handleGroupReadys(tb, rn, s) }
	settle()
	if err := rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 2, Commit: 3}); err != nil {
		tb.Fatal(err)
	}
	settle()
	rn.Tick()
	rn.Tick()
	if rn.HasReady() {
		tb.Fatal("an idle follower has a Ready after two ticks")
	}
	if st := rn.BasicStatus(); st.RaftState != StateFollower || st.Lead != 2 || st.Commit != 3 {
		tb.Fatalf("group not settled: state %v lead %d commit %d", st.RaftState, st.Lead, st.Commit)
	}
	return idleFollower{rn: rn, s: s}
}

// handleGroupReady handles one Ready of rn as the idle groups' application
// does: it persists to s, applies conf changes, and returns a copy of the
// messages, after Advance.
func handleGroupReady(tb testing.TB, rn *RawNode, s *MemoryStorage) []pb.Message {
	rd := rn.Ready()
	if err := s.Append(rd.Entries); err != nil {
		tb.Fatal(err)
	}
	if !IsEmptyHardState(rd.HardState) {
		_ = s.SetHardState(rd.HardState)
	}
	for _, e := range rd.CommittedEntries {
		if e.Type == pb.EntryConfChange {
			cc, err := pb.UnmarshalConfChange(e)
			if err != nil {
				tb.Fatal(err)
			}
			rn.ApplyConfChange(cc)
		}
	}
	msgs := append([]pb.Message(nil), rd.Messages...)
	rn.Advance(rd)
	return msgs
}

// handleGroupReadys handles rn's Readys until it has none.
func handleGroupReadys(tb testing.TB, rn *RawNode, s *MemoryStorage) {
	for rn.HasReady() {
		handleGroupReady(tb, rn, s)
	}
}

// idleFollowerHeap builds n idle followers and returns the live heap they
// hold, in bytes per group: HeapAlloc after a GC, before and after.
func idleFollowerHeap(tb testing.TB, n int) float64 {
	return groupHeap(tb, n, newIdleFollower)
}

// BenchmarkIdleFollowerHeap reports the live heap of one idle follower
// group (RawNode + MemoryStorage, 3 voters) as B/group; ns/op is the time
// to build idleGroups of them and is not the point.
func BenchmarkIdleFollowerHeap(b *testing.B) {
	var perGroup float64
	for b.Loop() {
		perGroup = idleFollowerHeap(b, idleGroups)
	}
	b.ReportMetric(perGroup, "B/group")
}

// idleFollowerHeapCeiling is the most an idle follower group may hold: a
// regression guard, 13 bytes over the 829 B measured alone (832 in a run
// of the whole package): raft 256, its log 144, RawNode 112, the
// configuration 48, the node's own random source 16 (no
// Config.RandomSource here), MemoryStorage 80 with its 144-byte array and
// 24 bytes of conf change payloads. Each of those is a Go size class: a
// struct growing into the next class, or an allocation an idle follower
// does not need, adds 16 bytes or more and fails here.
const idleFollowerHeapCeiling = 842

func TestIdleFollowerHeap(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes")
	}
	got := idleFollowerHeap(t, idleGroups)
	t.Logf("idle follower group: %.0f B", got)
	if got > idleFollowerHeapCeiling {
		t.Fatalf("idle follower group holds %.0f B of heap, ceiling %d B", got, idleFollowerHeapCeiling)
	}
}

// Leader-only state (the tracker with the peers' Progress and their
// Inflights, read-index queue, lease acknowledgements) and the candidate's
// (the tracker with its votes) do not exist on a follower: the role
// creates them when it begins, and stepping down drops them again.
// The log is allocated once per group: it must stay in the 144-byte size
// class (see unstable.arrayLen and unstable.prevTerm).
func TestRaftLogSize(t *testing.T) {
	if got := unsafe.Sizeof(raftLog{}); got > 144 {
		t.Fatalf("raftLog is %d bytes, want at most 144", got)
	}
}

// The protocol state is allocated once per group: it must stay in the
// 256-byte size class. What most nodes never need goes to seldomState or,
// if only a leader needs it, to leaderState.
func TestRaftSize(t *testing.T) {
	if got := unsafe.Sizeof(raft{}); got > 256 {
		t.Fatalf("raft is %d bytes, want at most 256", got)
	}
}

// A RawNode too is allocated once per group: it must stay in the 112-byte
// size class.
func TestRawNodeSize(t *testing.T) {
	if got := unsafe.Sizeof(RawNode{}); got > 112 {
		t.Fatalf("RawNode is %d bytes, want at most 112", got)
	}
}

func TestLeaderOnlyStateIsLazy(t *testing.T) {
	requireNoLeaderState := func(t *testing.T, r *raft) {
		t.Helper()
		require.Nil(t, r.trk)
		require.Nil(t, r.leaderState)
	}
	f := newIdleFollower(t)
	requireNoLeaderState(t, f.rn.raft)

	c := newTestCluster(t, 3)
	c.campaign(1)
	lead := c.nodes[1].r()
	require.Len(t, lead.trk.Progress, 3)
	for id, pr := range lead.trk.Progress {
		require.NotNil(t, pr.Inflights, "leader's progress of peer %d", id)
	}
	requireNoLeaderState(t, c.nodes[2].r())
	c.nodes[1].rn.ReadIndex([]byte("r1"))
	require.NotNil(t, lead.readOnly.pending)

	// Heartbeat responses under lease-based reads leave acknowledgements.
	lead.leaseAcks = map[uint64]uint64{2: lead.ticks}

	lead.becomeFollower(lead.Term+1, None)
	requireNoLeaderState(t, lead)
}

// Bootstrap's membership entries leave no unstable array behind once they
// are persisted: a group that is created and never ticked (a multi-group
// host's idle group) holds none, not an array with room to grow.
func TestBootstrapLeavesNoUnstableArray(t *testing.T) {
	s := NewMemoryStorage()
	rn, err := NewRawNode(&Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s, MaxInflightMsgs: 16, Logger: DiscardLogger})
	require.NoError(t, err)
	require.NoError(t, rn.Bootstrap([]Peer{{ID: 1}, {ID: 2}, {ID: 3}}))
	rd := rn.Ready()
	require.Len(t, rd.Entries, 3)
	require.NoError(t, s.Append(rd.Entries))
	require.NoError(t, s.SetHardState(rd.HardState))
	rn.Advance(rd)
	u := &rn.raft.raftLog.unstable
	require.Nil(t, u.entries)
	require.Zero(t, u.arrayLen)
	require.Equal(t, uint64(3), rn.raft.raftLog.lastIndex())
}

// ReleaseMemory leaves a leader that has handled its Readys holding none
// of the buffers kept for the next one: message slots (also those for its
// own acknowledgements), the chunk size they grew to and the unstable
// array.
func TestReleaseMemoryDropsReadyBuffers(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3})
	rn := n.rn
	require.NoError(t, rn.Campaign())
	n.ready()
	n.step(pb.Message{Type: pb.MsgVoteResp, From: 2, To: 1, Term: rn.raft.Term})
	n.ready()
	// More Readys than a lightly loaded node hands out between two ticks
	// (lightReadys): it keeps its buffers for the next.
	for range lightReadys + 1 {
		require.NoError(t, rn.Propose([]byte("x")))
		n.ready()
		for _, id := range []uint64{2, 3} {
			n.step(pb.Message{Type: pb.MsgAppResp, From: id, To: 1, Term: rn.raft.Term, Index: rn.raft.raftLog.lastIndex()})
		}
	}
	require.NotEmpty(t, n.ready(), "the commit index goes out")
	require.Equal(t, StateLeader, rn.BasicStatus().RaftState)
	require.NotNil(t, rn.ack.steps, "the leader acknowledged its own entries")
	require.NotNil(t, rn.raft.msgs, "slots left in the chunk its messages to peers were queued in")
	require.NotZero(t, rn.raft.msgChunk)

	rn.ReleaseMemory()
	require.Nil(t, rn.ack.steps)
	require.Nil(t, rn.raft.msgs)
	require.Nil(t, rn.raft.msgsAfterAppend)
	require.Zero(t, rn.raft.msgChunk)
	require.Nil(t, rn.raft.raftLog.unstable.entries)
}

// heartbeatTicks is how many ticks the heartbeating groups below run
// before their heap is measured: enough for any buffer that grows with
// traffic to have grown.
const heartbeatTicks = 200

// newHeartbeatingFollower is newIdleFollower's group as a running cluster
// keeps it without quiescing it: its leader sends a heartbeat every tick
// (HeartbeatTick 1) and it answers each, heartbeatTicks times.
func newHeartbeatingFollower(tb testing.TB) idleFollower {
	f := newIdleFollower(tb)
	for range heartbeatTicks {
		f.rn.Tick()
		if err := f.rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 2, Commit: 3}); err != nil {
			tb.Fatal(err)
		}
		for f.rn.HasReady() {
			rd := f.rn.Ready()
			if len(rd.Messages) != 1 || rd.Messages[0].Type != pb.MsgHeartbeatResp {
				tb.Fatalf("a heartbeat's Ready hands out %v", rd.Messages)
			}
			f.rn.Advance(rd)
		}
	}
	return f
}

// newHeartbeatingLeader builds node 1 of a bootstrapped 3-voter group as
// its leader, every entry acknowledged, and runs it heartbeatTicks ticks:
// each tick it sends its followers a heartbeat, and they answer.
func newHeartbeatingLeader(tb testing.TB) idleFollower {
	s := NewMemoryStorage()
	rn, err := NewRawNode(&Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: DiscardLogger,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := rn.Bootstrap([]Peer{{ID: 1}, {ID: 2}, {ID: 3}}); err != nil {
		tb.Fatal(err)
	}
	// handle persists and applies the Readys and answers the followers'
	// part of each message as they would.
	handle := func() {
		for rn.HasReady() {
			msgs := handleGroupReady(tb, rn, s)
			for _, m := range msgs {
				var resp pb.Message
				switch m.Type {
				case pb.MsgVote:
					resp = pb.Message{Type: pb.MsgVoteResp}
				case pb.MsgApp:
					resp = pb.Message{Type: pb.MsgAppResp, Index: m.Index + uint64(len(m.Entries))}
				case pb.MsgHeartbeat:
					resp = pb.Message{Type: pb.MsgHeartbeatResp}
				default:
					continue
				}
				resp.From, resp.To, resp.Term = m.To, 1, m.Term
				if err := rn.Step(resp); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	handle()
	if err := rn.Campaign(); err != nil {
		tb.Fatal(err)
	}
	handle()
	for range heartbeatTicks {
		rn.Tick()
		handle()
	}
	if st := rn.BasicStatus(); st.RaftState != StateLeader || st.Applied != st.Commit {
		tb.Fatalf("leader not settled: %+v", st)
	}
	return idleFollower{rn: rn, s: s}
}

// groupHeap builds n groups with build and returns the live heap they hold,
// in bytes per group.
func groupHeap(tb testing.TB, n int, build func(testing.TB) idleFollower) float64 {
	groups := make([]idleFollower, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range groups {
		groups[i] = build(tb)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(groups)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// Ceilings on the live heap of a group that heartbeats every tick, a few
// dozen bytes over what it measures (814 B for the follower alone, 832 B in
// a run of the whole package; 2,021 B for the leader, whose leader-only
// state is most of it: the peers' Progress and Inflights). A node that
// keeps the message chunk it hands out heartbeats from holds up to 64
// slots of 160 bytes (11,678 B for the follower); these fail then.
const (
	heartbeatingFollowerHeapCeiling = 860
	heartbeatingLeaderHeapCeiling   = 2080
)

// TestHeartbeatingGroupHeap: a group that is idle but not quiesced (its
// leader sends a heartbeat every tick, its followers answer each) holds no
// more message memory than one that is quiet: each of its few Readys per
// tick allocates only the slots it hands out, and keeps none.
func TestHeartbeatingGroupHeap(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes")
	}
	for _, tt := range []struct {
		name    string
		build   func(testing.TB) idleFollower
		ceiling float64
	}{
		{"follower", newHeartbeatingFollower, heartbeatingFollowerHeapCeiling},
		{"leader", newHeartbeatingLeader, heartbeatingLeaderHeapCeiling},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := groupHeap(t, 2000, tt.build)
			t.Logf("heartbeating %s: %.0f B", tt.name, got)
			if got > tt.ceiling {
				t.Fatalf("a heartbeating %s holds %.0f B of heap, ceiling %.0f B", tt.name, got, tt.ceiling)
			}
		})
	}
}

// BenchmarkHeartbeatingGroupHeap reports the live heap of a heartbeating
// follower and leader (see TestHeartbeatingGroupHeap) as B/group.
func BenchmarkHeartbeatingGroupHeap(b *testing.B) {
	for _, r := range []struct {
		name  string
		build func(testing.TB) idleFollower
	}{{"follower", newHeartbeatingFollower}, {"leader", newHeartbeatingLeader}} {
		b.Run(r.name, func(b *testing.B) {
			var perGroup float64
			for b.Loop() {
				perGroup = groupHeap(b, 2000, r.build)
			}
			b.ReportMetric(perGroup, "B/group")
		})
	}
}

// TestHeartbeatTickAllocations: a heartbeating group's nodes allocate one
// chunk per tick, holding exactly the messages the tick hands out: the
// leader's heartbeats to all its followers (a broadcast reserves its room
// at once) and the follower's answer.
func TestHeartbeatTickAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	run := func(rn *RawNode, step func()) float64 {
		return testing.AllocsPerRun(100, func() {
			rn.Tick()
			step()
			for rn.HasReady() {
				rn.Advance(rn.Ready())
			}
		})
	}
	l := newHeartbeatingLeader(t)
	require.Equal(t, 1.0, run(l.rn, func() {}), "the leader's heartbeats to two followers")
	f := newHeartbeatingFollower(t)
	hb := pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 2, Commit: 3}
	require.Equal(t, 1.0, run(f.rn, func() { require.NoError(t, f.rn.Step(hb)) }), "the follower's answer")
}
