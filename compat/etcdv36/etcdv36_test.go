package etcdv36

// Written against etcd raft v3.6's documented API. Only the import paths
// below differ from the program an etcd raft user would write.

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	raft "github.com/raftcore/raft"
	"github.com/raftcore/raft/confchange"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// member is one replica: a RawNode, its storage, and its state machine, a
// list of the commands applied so far.
type member struct {
	id      uint64
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	// state is the replicated state machine.
	state []string
	// confState is the configuration the last applied conf change left.
	confState pb.ConfState
	// appliedIndex is the index of the last entry (or snapshot) applied.
	appliedIndex uint64
	reads        []raft.ReadState
}

// cluster drives its members from one goroutine and carries their
// messages.
type cluster struct {
	t       *testing.T
	members map[uint64]*member
	ids     []uint64
	logger  raft.Logger
	// drop, if set, loses the messages it returns true for.
	drop func(pb.Message) bool
}

func (c *cluster) config(id uint64, storage *raft.MemoryStorage) *raft.Config {
	return &raft.Config{
		ID:              id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          c.logger,
	}
}

// addMember starts a replica. With voters, its storage is bootstrapped
// the way etcd raft recommends: a snapshot at index 1 whose ConfState
// names the initial voters. Without, it starts empty and waits to be added.
func (c *cluster) addMember(id uint64, voters ...uint64) *member {
	c.t.Helper()
	storage := raft.NewMemoryStorage()
	if len(voters) > 0 {
		snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: voters}}}
		require.NoError(c.t, storage.ApplySnapshot(snap))
	}
	rn, err := raft.NewRawNode(c.config(id, storage))
	require.NoError(c.t, err)
	m := &member{id: id, rn: rn, storage: storage}
	if len(voters) > 0 {
		m.confState = pb.ConfState{Voters: voters}
		m.appliedIndex = 1
	}
	c.members[id] = m
	c.ids = append(c.ids, id)
	return m
}

// handleReady does what the Ready contract asks of an application and
// returns the messages to send.
func (c *cluster) handleReady(m *member) []pb.Message {
	t := c.t
	t.Helper()
	rd := m.rn.Ready()
	// 1. Persist.
	if !raft.IsEmptySnap(rd.Snapshot) {
		require.NoError(t, m.storage.ApplySnapshot(rd.Snapshot))
	}
	require.NoError(t, m.storage.Append(rd.Entries))
	if !raft.IsEmptyHardState(rd.HardState) {
		require.NoError(t, m.storage.SetHardState(rd.HardState))
	}
	// 2. The messages go out after persisting (by the caller).
	for _, msg := range rd.Messages {
		require.False(t, raft.IsLocalMsg(msg.Type), "%s is not for the network", msg.Type)
		require.False(t, raft.IsLocalMsgTarget(msg.To), "no storage thread without AsyncStorageWrites")
	}
	// 3. Apply.
	if !raft.IsEmptySnap(rd.Snapshot) {
		m.state = decodeState(rd.Snapshot.Data)
		m.confState = rd.Snapshot.Metadata.ConfState
		m.appliedIndex = rd.Snapshot.Metadata.Index
	}
	for _, e := range rd.CommittedEntries {
		c.apply(m, e)
	}
	m.reads = append(m.reads, rd.ReadStates...)
	// 4. Advance.
	m.rn.Advance(rd)
	return rd.Messages
}

func (c *cluster) apply(m *member, e pb.Entry) {
	t := c.t
	t.Helper()
	switch e.Type {
	case pb.EntryNormal:
		if len(e.Data) > 0 {
			m.state = append(m.state, string(e.Data))
		}
	case pb.EntryConfChange:
		var cc pb.ConfChange
		require.NoError(t, cc.Unmarshal(e.Data))
		m.confState = *m.rn.ApplyConfChange(cc)
	case pb.EntryConfChangeV2:
		var cc pb.ConfChangeV2
		require.NoError(t, cc.Unmarshal(e.Data))
		m.confState = *m.rn.ApplyConfChange(cc)
	}
	m.appliedIndex = e.Index
	if e.Type != pb.EntryNormal {
		// Snapshot after a configuration change (passing its ConfState,
		// as CreateSnapshot asks) and compact: a member added later
		// starts from a snapshot that names it.
		_, err := m.storage.CreateSnapshot(e.Index, &m.confState, encodeState(m.state))
		require.NoError(t, err)
		require.NoError(t, m.storage.Compact(e.Index))
	}
}

func encodeState(state []string) []byte { return []byte(strings.Join(state, "\n")) }

func decodeState(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	return strings.Split(string(data), "\n")
}

// process handles Readys and delivers messages until all is quiet.
func (c *cluster) process() {
	c.t.Helper()
	for round := 0; round < 1000; round++ {
		var msgs []pb.Message
		busy := false
		for _, id := range c.ids {
			if m := c.members[id]; m.rn.HasReady() {
				busy = true
				msgs = append(msgs, c.handleReady(m)...)
			}
		}
		if !busy {
			return
		}
		for _, msg := range msgs {
			if c.drop != nil && c.drop(msg) {
				continue
			}
			to, ok := c.members[msg.To]
			if !ok {
				continue
			}
			_ = to.rn.Step(msg)
			if msg.Type == pb.MsgSnap {
				c.members[msg.From].rn.ReportSnapshot(msg.To, raft.SnapshotFinish)
			}
		}
	}
	c.t.Fatal("the cluster did not quiesce")
}

func (c *cluster) tickAll(n int) {
	for i := 0; i < n; i++ {
		for _, id := range c.ids {
			c.members[id].rn.Tick()
		}
		c.process()
	}
}

func (c *cluster) leader() uint64 {
	c.t.Helper()
	var lead uint64
	for _, id := range c.ids {
		st := c.members[id].rn.BasicStatus()
		if st.RaftState == raft.StateLeader {
			require.Zero(c.t, lead, "two leaders")
			lead = id
		}
	}
	for _, id := range c.ids {
		require.Equal(c.t, lead, c.members[id].rn.BasicStatus().Lead, "member %d follows the leader", id)
	}
	return lead
}

// requireSameState checks that every member applied the same commands.
func (c *cluster) requireSameState(want ...string) {
	c.t.Helper()
	for _, id := range c.ids {
		require.Equal(c.t, want, c.members[id].state, "member %d", id)
	}
}

func (c *cluster) progress(lead uint64) map[uint64]raft.ProgressType {
	out := map[uint64]raft.ProgressType{}
	last, err := c.members[lead].storage.LastIndex()
	require.NoError(c.t, err)
	commit := c.members[lead].rn.Status().Commit
	c.members[lead].rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		require.Equal(c.t, last, pr.Match, "member %d caught up", id)
		if id != lead {
			// The leader has told every caught-up follower the commit
			// index: sending it again would not move theirs.
			require.False(c.t, pr.CanBumpCommit(commit), "member %d already knows commit %d", id, commit)
		}
		out[id] = typ
	})
	return out
}

func TestRawNodeCluster(t *testing.T) {
	var logs bytes.Buffer
	logger := &raft.DefaultLogger{Logger: log.New(&logs, "raft ", 0)}
	logger.EnableDebug()
	c := &cluster{t: t, members: map[uint64]*member{}, logger: logger}
	for id := uint64(1); id <= 3; id++ {
		c.addMember(id, 1, 2, 3)
	}

	// Election.
	require.NoError(t, c.members[1].rn.Campaign())
	c.process()
	require.Equal(t, uint64(1), c.leader())

	// Proposals, on the leader and forwarded by a follower.
	for _, cmd := range []string{"a", "b"} {
		require.NoError(t, c.members[1].rn.Propose([]byte(cmd)))
	}
	c.process()
	require.NoError(t, c.members[2].rn.Propose([]byte("c")))
	c.process()
	c.requireSameState("a", "b", "c")
	require.Equal(t, map[uint64]raft.ProgressType{1: raft.ProgressTypePeer, 2: raft.ProgressTypePeer, 3: raft.ProgressTypePeer}, c.progress(1))

	// A learner joins, catches up from a snapshot and the log, and is
	// promoted to voter.
	c.addMember(4)
	require.NoError(t, c.members[1].rn.ProposeConfChange(pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: 4}))
	c.process()
	require.NoError(t, c.members[1].rn.Propose([]byte("d")))
	c.process()
	c.requireSameState("a", "b", "c", "d")
	require.Equal(t, raft.ProgressTypeLearner, c.progress(1)[4])
	for _, id := range c.ids {
		require.Equal(t, []uint64{4}, c.members[id].confState.Learners, "member %d", id)
	}
	require.NoError(t, c.members[1].rn.ProposeConfChange(pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 4}))
	c.process()
	require.Equal(t, raft.ProgressTypePeer, c.progress(1)[4])
	for _, id := range c.ids {
		cs := c.members[id].confState
		require.ElementsMatch(t, []uint64{1, 2, 3, 4}, cs.Voters, "member %d", id)
		require.Empty(t, cs.Learners, "member %d", id)
	}

	// Linearizable reads, on the leader and through a follower.
	c.members[1].rn.ReadIndex([]byte("read-1"))
	c.members[3].rn.ReadIndex([]byte("read-3"))
	c.process()
	for _, id := range []uint64{1, 3} {
		m := c.members[id]
		require.Len(t, m.reads, 1, "member %d", id)
		rs := m.reads[0]
		require.Equal(t, fmt.Sprintf("read-%d", id), string(rs.RequestCtx))
		require.Equal(t, c.members[1].rn.BasicStatus().Commit, rs.Index)
		require.GreaterOrEqual(t, m.appliedIndex, rs.Index, "member %d may serve the read", id)
	}

	// Leadership moves to the promoted member; it takes proposals.
	c.members[1].rn.TransferLeader(4)
	c.process()
	require.Equal(t, uint64(4), c.leader())
	require.NoError(t, c.members[4].rn.Propose([]byte("e")))
	c.process()
	c.requireSameState("a", "b", "c", "d", "e")

	// Quiesced, the group stays silent however long; the quiesced ticks
	// still count toward the election timeout, so a member ticked
	// normally again campaigns at once, before hearing from the leader.
	for i := 0; i < 50; i++ {
		for _, id := range c.ids {
			//lint:ignore SA1019 etcd raft programs call the deprecated TickQuiesced; it must work
			c.members[id].rn.TickQuiesced()
		}
	}
	for _, id := range c.ids {
		require.False(t, c.members[id].rn.HasReady(), "member %d is silent", id)
	}
	c.members[2].rn.Tick()
	rd := c.members[2].rn.Ready()
	require.NotEmpty(t, rd.Messages)
	for _, msg := range rd.Messages {
		require.Equal(t, pb.MsgPreVote, msg.Type)
	}
	c.members[2].rn.Advance(rd) // its pre-votes are lost
	// The leader wakes the group with a heartbeat; nothing changes.
	c.members[4].rn.Tick()
	c.process()
	c.tickAll(20)
	require.Equal(t, uint64(4), c.leader())

	// The log, compacted at the conf changes, is the same everywhere from
	// the second snapshot on.
	first, err := c.members[4].storage.FirstIndex()
	require.NoError(t, err)
	last, err := c.members[4].storage.LastIndex()
	require.NoError(t, err)
	want, err := c.members[4].storage.Entries(first, last+1, 1<<30)
	require.NoError(t, err)
	for _, id := range c.ids {
		got, err := c.members[id].storage.Entries(first, last+1, 1<<30)
		require.NoError(t, err, "member %d", id)
		require.Equal(t, want, got, "member %d", id)
	}

	require.NotZero(t, logs.Len(), "the DefaultLogger was used")
}

// MemoryStorage exposes its mutex: while an application holds it, the
// storage's methods wait.
func TestMemoryStorageLock(t *testing.T) {
	ms := raft.NewMemoryStorage()
	require.NoError(t, ms.Append([]pb.Entry{{Index: 1, Term: 1}}))
	ms.Lock()
	require.False(t, ms.TryLock())
	done := make(chan uint64)
	go func() {
		last, err := ms.LastIndex()
		if err != nil {
			panic(err)
		}
		done <- last
	}()
	for i := 0; i < 100; i++ {
		select {
		case <-done:
			t.Fatal("LastIndex ran while the storage was locked")
		default:
			runtime.Gosched()
		}
	}
	ms.Unlock()
	require.Equal(t, uint64(1), <-done)
}

// A single RawNode bootstrapped with Bootstrap elects itself once it has
// applied its initial configuration, and commits proposals.
func TestRawNodeBootstrap(t *testing.T) {
	storage := raft.NewMemoryStorage()
	c := &cluster{t: t, members: map[uint64]*member{}, logger: &raft.DefaultLogger{Logger: log.New(&bytes.Buffer{}, "", 0)}}
	rn, err := raft.NewRawNode(c.config(1, storage))
	require.NoError(t, err)
	require.NoError(t, rn.Bootstrap([]raft.Peer{{ID: 1, Context: []byte("node-1")}}))
	m := &member{id: 1, rn: rn, storage: storage}
	c.members[1] = m
	c.ids = []uint64{1}
	c.process()
	require.Equal(t, []uint64{1}, m.confState.Voters)

	require.NoError(t, rn.Campaign())
	c.process()
	require.Equal(t, raft.StateLeader, rn.BasicStatus().RaftState)
	require.NoError(t, rn.Propose([]byte("x")))
	c.process()
	require.Equal(t, []string{"x"}, m.state)
	require.Len(t, rn.Status().Progress, 1, "the leader tracks itself")
}

// A Node started with StartNode, driven by a goroutine that handles its
// Readys, elects itself, commits a proposal and stops.
func TestNode(t *testing.T) {
	var logs bytes.Buffer
	raft.SetLogger(&raft.DefaultLogger{Logger: log.New(&logs, "", 0)})
	defer raft.ResetDefaultLogger()

	storage := raft.NewMemoryStorage()
	n := raft.StartNode(&raft.Config{
		ID:              1,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         storage,
		MaxSizePerMsg:   4096,
		MaxInflightMsgs: 256,
	}, []raft.Peer{{ID: 1}})

	applied := make(chan pb.Entry, 16)
	leading := make(chan struct{}, 1)
	done := make(chan struct{})
	loopErr := make(chan error, 1)
	go func() {
		defer close(loopErr)
		for {
			select {
			case rd := <-n.Ready():
				if rd.SoftState != nil && rd.SoftState.RaftState == raft.StateLeader {
					leading <- struct{}{}
				}
				if err := storage.Append(rd.Entries); err != nil {
					loopErr <- err
					return
				}
				if !raft.IsEmptyHardState(rd.HardState) {
					if err := storage.SetHardState(rd.HardState); err != nil {
						loopErr <- err
						return
					}
				}
				for _, e := range rd.CommittedEntries {
					if e.Type == pb.EntryConfChange {
						var cc pb.ConfChange
						if err := cc.Unmarshal(e.Data); err != nil {
							loopErr <- err
							return
						}
						n.ApplyConfChange(cc)
					}
					applied <- e
				}
				n.Advance()
			case <-done:
				return
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := func() pb.Entry {
		t.Helper()
		select {
		case e := <-applied:
			return e
		case err := <-loopErr:
			t.Fatalf("ready loop: %v", err)
		case <-ctx.Done():
			t.Fatal("timed out")
		}
		return pb.Entry{}
	}

	// The initial configuration is applied first; then the node may
	// campaign. A campaign is refused while a committed conf change is
	// not yet acknowledged as applied (the loop calls Advance after handing
	// the entry over), so ask again until it leads.
	require.Equal(t, pb.EntryConfChange, next().Type)
	for elected := false; !elected; {
		require.NoError(t, n.Campaign(ctx))
		select {
		case <-leading:
			elected = true
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("not elected")
		}
	}
	require.Equal(t, raft.StateLeader, n.Status().RaftState)

	require.NoError(t, n.Propose(ctx, []byte("hello")))
	for {
		if e := next(); e.Type == pb.EntryNormal && len(e.Data) > 0 {
			require.Equal(t, "hello", string(e.Data))
			break
		}
	}

	close(done)
	require.NoError(t, <-loopErr)
	n.Stop()
	require.ErrorIs(t, n.Propose(ctx, []byte("late")), raft.ErrStopped)
	require.NotZero(t, logs.Len(), "nodes without a Logger use the one set with SetLogger")
}

// The subpackages' helpers: conf changes written as text and read back,
// and a copy of a tracker configuration that does not share its maps.
// (confchange.Describe is left out: its output is raftcore's own, see
// MIGRATING.md.)
func TestSubpackageHelpers(t *testing.T) {
	ccs, err := pb.ConfChangesFromString("v1 v2 l3 r4")
	require.NoError(t, err)
	require.Equal(t, []pb.ConfChangeSingle{
		{Type: pb.ConfChangeAddNode, NodeID: 1}, {Type: pb.ConfChangeAddNode, NodeID: 2},
		{Type: pb.ConfChangeAddLearnerNode, NodeID: 3}, {Type: pb.ConfChangeRemoveNode, NodeID: 4},
	}, ccs)
	again, err := pb.ConfChangesFromString(pb.ConfChangesToString(ccs))
	require.NoError(t, err)
	require.Equal(t, ccs, again)

	tr := tracker.MakeProgressTracker(16, 0)
	cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: tr, LastIndex: 10}, pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}})
	require.NoError(t, err)
	tr.Config, tr.Progress = cfg, prs
	clone := tr.Clone()
	clone.Learners[9] = struct{}{}
	require.NotContains(t, tr.Learners, uint64(9), "a clone shares nothing with the tracker")
	require.Equal(t, []uint64{1, 2}, tr.VoterNodes())

	pr := tr.Progress[2]
	require.True(t, pr.CanBumpCommit(5))
	pr.SentCommit(5)
	require.False(t, pr.CanBumpCommit(5))
	require.True(t, pr.CanBumpCommit(6))
}
