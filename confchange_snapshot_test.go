package raft

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// confChangeEntry is a committed-to-be entry at index (term 2) carrying cc.
func confChangeEntry(t *testing.T, index uint64, cc pb.ConfChangeI) pb.Entry {
	t.Helper()
	typ, data, err := pb.MarshalConfChange(cc)
	require.NoError(t, err)
	return pb.Entry{Index: index, Term: 2, Type: typ, Data: data}
}

// applyConfChanges calls ApplyConfChange for every conf change entry of
// ents, as an application applying them does, and returns the last
// ConfState it got back (nil if ents held none).
func applyConfChanges(t *testing.T, apply func(pb.ConfChangeI) *pb.ConfState, ents []pb.Entry) *pb.ConfState {
	t.Helper()
	var cs *pb.ConfState
	for _, e := range ents {
		if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
			cc, err := pb.UnmarshalConfChange(e)
			require.NoError(t, err)
			cs = apply(cc)
		}
	}
	return cs
}

var removeNode3 = pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: 3}

// handOutConfChange makes follower 2 (of 1, 2, 3) receive entries 1 and 2,
// the second a conf change cc, both committed, and returns the Ready that
// hands them out for applying (persisted, not yet applied or advanced).
func handOutConfChange(t *testing.T, n *testNode, cc pb.ConfChangeI) Ready {
	t.Helper()
	require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 2, Commit: 2,
		Entries: []pb.Entry{{Index: 1, Term: 2}, confChangeEntry(t, 2, cc)}}))
	rd := n.rn.Ready()
	require.NoError(t, n.storage.Save(rd.HardState, rd.Entries, rd.Snapshot))
	require.Len(t, rd.CommittedEntries, 2)
	return rd
}

// A conf change the application applies from entries handed out before a
// snapshot that the node installed meanwhile (the application still
// applying them when the leader's MsgSnap was stepped) changes nothing:
// the snapshot's configuration already holds it and every later change.
// Here 3 was removed at index 2 and added back by index 10: removing it
// again on top of the snapshot would leave this node alone with a
// configuration of 1 and 2 (and put it in its next snapshot).
func TestStaleConfChangeAfterSnapshotIgnored(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3})
	rd := handOutConfChange(t, n, removeNode3)
	require.NoError(t, n.rn.Step(snapMsg(10, 2, 1, 2, 3)))

	cs := applyConfChanges(t, n.rn.ApplyConfChange, rd.CommittedEntries)
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 3}}, *cs, "the snapshot's configuration comes back")
	n.rn.Advance(rd)
	n.ready()
	require.Equal(t, uint64(10), n.r().raftLog.applied)
	require.Equal(t, []uint64{1, 2, 3}, n.r().conf.voterIDs())
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 3}}, n.r().confState())
}

// The worse form: an old enter-joint change (with auto-leave) replayed on a
// snapshot taken after the joint configuration was left would take the
// node back into a joint configuration no other node is in, which no leader
// would ever end.
func TestStaleEnterJointAfterSnapshotIgnored(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3})
	enter := pb.ConfChangeV2{Transition: pb.ConfChangeTransitionAuto, Changes: []pb.ConfChangeSingle{
		{Type: pb.ConfChangeAddNode, NodeID: 4}, {Type: pb.ConfChangeRemoveNode, NodeID: 3}}}
	rd := handOutConfChange(t, n, enter)
	require.NoError(t, n.rn.Step(snapMsg(10, 2, 1, 2, 4)))

	cs := applyConfChanges(t, n.rn.ApplyConfChange, rd.CommittedEntries)
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 4}}, *cs)
	n.rn.Advance(rd)
	n.ready()
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 4}}, n.r().confState(), "not joint")
}

// The same conf change with no snapshot in between is applied as usual.
func TestConfChangeWithoutSnapshotApplied(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3})
	rd := handOutConfChange(t, n, removeNode3)
	cs := applyConfChanges(t, n.rn.ApplyConfChange, rd.CommittedEntries)
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2}}, *cs)
	n.rn.Advance(rd)
	require.Equal(t, []uint64{1, 2}, n.r().conf.voterIDs())
}

// A snapshot whose last entry the log already holds only moves the commit
// index: the configuration is not replaced, and the conf change entries
// before it, handed out or not, are applied as usual.
func TestConfChangeBeforeSnapshotPointInLogApplied(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3})
	require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 2, Commit: 2,
		Entries: []pb.Entry{{Index: 1, Term: 2}, confChangeEntry(t, 2, removeNode3), {Index: 3, Term: 2}}}))
	rd := n.rn.Ready()
	require.NoError(t, n.storage.Save(rd.HardState, rd.Entries, rd.Snapshot))
	require.NoError(t, n.rn.Step(snapMsg(3, 2, 1, 2)))
	require.Equal(t, uint64(3), n.r().raftLog.committed)

	cs := applyConfChanges(t, n.rn.ApplyConfChange, rd.CommittedEntries)
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2}}, *cs)
	n.rn.Advance(rd)
	n.ready()
	require.Equal(t, []uint64{1, 2}, n.r().conf.voterIDs())
}

// Once the snapshot is applied, conf changes from the entries after it are
// applied as usual: the first comes in the Ready after the one carrying the
// snapshot.
func TestConfChangeAfterAppliedSnapshotApplied(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3})
	rd := handOutConfChange(t, n, removeNode3)
	require.NoError(t, n.rn.Step(snapMsg(10, 2, 1, 2, 3)))
	applyConfChanges(t, n.rn.ApplyConfChange, rd.CommittedEntries)
	n.rn.Advance(rd)

	// The leader's next append, committed at once, comes while the
	// snapshot is not yet persisted: the Ready that carries the snapshot
	// hands out no entry after it.
	require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 2, Index: 10, LogTerm: 2, Commit: 11,
		Entries: []pb.Entry{confChangeEntry(t, 11, removeNode3)}}))
	rd = n.rn.Ready()
	require.False(t, IsEmptySnap(rd.Snapshot))
	require.Empty(t, rd.CommittedEntries)
	require.NoError(t, n.storage.Save(rd.HardState, rd.Entries, rd.Snapshot))
	n.rn.Advance(rd)

	rd = n.rn.Ready()
	require.Len(t, rd.CommittedEntries, 1)
	cs := applyConfChanges(t, n.rn.ApplyConfChange, rd.CommittedEntries)
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2}}, *cs)
	n.rn.Advance(rd)
	require.Equal(t, []uint64{1, 2}, n.r().conf.voterIDs())
}

// laggingApply bootstraps async follower 2 of 1, 2, 3 and hands the
// bootstrap entries (conf changes adding 1, 2 and 3) to its apply thread,
// which holds them: the returned MsgStorageApply is not yet applied.
func laggingApply(t *testing.T) (*asyncNode, pb.Message) {
	t.Helper()
	n := newAsyncNode(t, 2, []Peer{{ID: 1}, {ID: 2}, {ID: 3}})
	appendMsg, _, _ := takeAsync(n.rn.Ready())
	n.queued = append(n.queued, appendMsg)
	n.flush(1)
	_, lagging, _ := takeAsync(n.rn.Ready())
	require.Len(t, lagging.Entries, 3)
	return n, lagging
}

// With AsyncStorageWrites the apply thread may lag the append thread: the
// leader's snapshot (in which 3 was removed) is persisted, and counts as
// applied, while the apply thread still applies the entries handed out
// before it. Their conf changes are ignored (adding 3 back would give this
// node a configuration of its own), and the entries after the snapshot
// are handed out only once the apply thread reported the earlier ones:
// the conf change among them is then applied as usual, however late the
// application steps back the lagging batch's response.
func TestAsyncStaleConfChangeAfterSnapshotIgnored(t *testing.T) {
	n, lagging := laggingApply(t)

	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgSnap, From: 1, To: 2, Term: 2, Snapshot: &pb.Snapshot{
		Metadata: pb.SnapshotMetadata{Index: 10, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}}}))
	appendMsg, _, _ := takeAsync(n.rn.Ready())
	require.NotNil(t, appendMsg.Snapshot)
	n.queued = append(n.queued, appendMsg)
	n.flush(1)
	require.Equal(t, uint64(10), n.rn.Status().Applied, "the snapshot is applied")

	// Entry 11, a conf change adding 4, is committed and persisted; it is
	// not handed to the apply thread while the lagging batch is out.
	add4 := pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 4}
	require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 2, Index: 10, LogTerm: 2, Commit: 11,
		Entries: []pb.Entry{confChangeEntry(t, 11, add4)}}))
	for n.rn.HasReady() {
		appendMsg, applyMsg, _ := takeAsync(n.rn.Ready())
		require.Empty(t, applyMsg.Entries, "entries after the snapshot wait for the lagging batch")
		if appendMsg.Type == pb.MsgStorageAppend {
			n.queued = append(n.queued, appendMsg)
			n.flush(1)
		}
	}

	// The apply thread now applies the lagging batch.
	cs := applyConfChanges(t, n.rn.ApplyConfChange, lagging.Entries)
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2}}, *cs, "the snapshot's configuration comes back")
	for _, resp := range lagging.Responses {
		require.NoError(t, n.rn.Step(resp))
	}
	require.Equal(t, []uint64{1, 2}, n.rn.raft.conf.voterIDs())

	n.process()
	require.Equal(t, []uint64{11}, entryIndexes(n.applied))
	require.Equal(t, []uint64{1, 2, 4}, n.rn.raft.conf.voterIDs(), "the change after the snapshot is applied")
	require.Equal(t, uint64(11), n.rn.Status().Applied)
}

// An application may report a batch applied before it applies the batch's
// conf changes (stepping the apply thread's response first). Until the
// snapshot installed meanwhile is applied, those changes are stale all the
// same, and ignored.
func TestAsyncStaleConfChangeReportedFirstIgnored(t *testing.T) {
	n, lagging := laggingApply(t)
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgSnap, From: 1, To: 2, Term: 2, Snapshot: &pb.Snapshot{
		Metadata: pb.SnapshotMetadata{Index: 10, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}}}))
	for _, resp := range lagging.Responses {
		require.NoError(t, n.rn.Step(resp))
	}
	require.Equal(t, uint64(3), n.rn.Status().Applied)

	cs := applyConfChanges(t, n.rn.ApplyConfChange, lagging.Entries)
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2}}, *cs)
	n.process()
	require.Equal(t, uint64(10), n.rn.Status().Applied)
	require.Equal(t, []uint64{1, 2}, n.rn.raft.conf.voterIDs())
}

// With AsyncStorageWrites and no snapshot, the lagging apply thread's conf
// changes are applied as usual, whenever it gets to them.
func TestAsyncLaggingConfChangeWithoutSnapshotApplied(t *testing.T) {
	n, lagging := laggingApply(t)
	require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 2, Index: 3, LogTerm: 1, Commit: 4,
		Entries: []pb.Entry{confChangeEntry(t, 4, removeNode3)}}))
	appendMsg, _, _ := takeAsync(n.rn.Ready())
	n.queued = append(n.queued, appendMsg)
	n.flush(1)

	applyConfChanges(t, n.rn.ApplyConfChange, lagging.Entries)
	for _, resp := range lagging.Responses {
		require.NoError(t, n.rn.Step(resp))
	}
	n.process()
	require.Equal(t, []uint64{4}, entryIndexes(n.applied))
	require.Equal(t, []uint64{1, 2}, n.rn.raft.conf.voterIDs())
}

func entryIndexes(ents []pb.Entry) []uint64 {
	out := make([]uint64, len(ents))
	for i, e := range ents {
		out[i] = e.Index
	}
	return out
}

// Node steps messages in while the application handles a Ready: a snapshot
// arriving then makes the conf changes of that Ready stale, and
// Node.ApplyConfChange ignores them as RawNode does.
func TestNodeStaleConfChangeAfterSnapshotIgnored(t *testing.T) {
	s := NewMemoryStorage()
	n := StartNode(testConfig(2, s), []Peer{{ID: 1}, {ID: 2}, {ID: 3}})
	defer func() {
		n.Stop()
		requireNoNodeGoroutines(t)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd Ready
	select {
	case rd = <-n.Ready():
	case <-ctx.Done():
		t.Fatal("no Ready")
	}
	require.Len(t, rd.CommittedEntries, 3)
	require.NoError(t, s.Save(rd.HardState, rd.Entries, rd.Snapshot))

	// The snapshot removed 3; re-adding it from the old entries would
	// make a configuration no other node has.
	require.NoError(t, n.Step(ctx, pb.Message{Type: pb.MsgSnap, From: 1, To: 2, Term: 2, Snapshot: &pb.Snapshot{
		Metadata: pb.SnapshotMetadata{Index: 10, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}}}))
	cs := applyConfChanges(t, n.ApplyConfChange, rd.CommittedEntries)
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2}}, *cs)
	n.Advance()

	select {
	case rd = <-n.Ready():
	case <-ctx.Done():
		t.Fatal("no Ready with the snapshot")
	}
	require.Equal(t, uint64(10), rd.Snapshot.Metadata.Index)
	require.NoError(t, s.Save(rd.HardState, rd.Entries, rd.Snapshot))
	n.Advance()
	st := n.Status()
	require.Equal(t, uint64(10), st.Applied)
	require.Equal(t, "voters=(1 2)", st.Config.String())
}

// warnLogger records warnings.
type warnLogger struct {
	Logger
	warnings []string
}

func (l *warnLogger) Warningf(format string, v ...any) {
	l.warnings = append(l.warnings, fmt.Sprintf(format, v...))
}

// An application that drops an apply batch a snapshot superseded, instead
// of reporting it applied, stalls the node's applying (committed entries
// wait for that report): the node says so once, after an election timeout.
func TestAsyncUnreportedSupersededBatchWarns(t *testing.T) {
	n, _ := laggingApply(t) // its response is never stepped
	logger := &warnLogger{Logger: DiscardLogger}
	n.rn.raft.raftLog.unstable.logger = logger
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgSnap, From: 1, To: 2, Term: 2, Snapshot: &pb.Snapshot{
		Metadata: pb.SnapshotMetadata{Index: 10, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}}))
	n.process()
	for range 3 * n.rn.raft.electionTimeout {
		n.rn.Tick()
		n.process()
	}
	var held []string
	for _, w := range logger.warnings {
		if strings.Contains(w, "answer every MsgStorageApply") {
			held = append(held, w)
		}
	}
	require.Len(t, held, 1, "warnings: %q", logger.warnings)
}
