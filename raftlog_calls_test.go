package raft

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft/invariants"
	pb "github.com/raftcore/raft/raftpb"
)

// lastIndexCounter is a MemoryStorage that counts LastIndex calls.
type lastIndexCounter struct {
	*MemoryStorage
	calls int
}

func (s *lastIndexCounter) LastIndex() (uint64, error) {
	s.calls++
	return s.MemoryStorage.LastIndex()
}

// Looking up the term of a stable entry does not ask Storage for its last
// index (a lock round trip on every append response the leader handles);
// lookups past the end still fail as before.
func TestRaftLogTermOfStableEntrySkipsLastIndex(t *testing.T) {
	ms := NewMemoryStorage()
	require.NoError(t, ms.Append(entsFrom(1, 1, 1, 2, 2, 2)))
	s := &lastIndexCounter{MemoryStorage: ms}
	l := newLog(s, DiscardLogger)
	s.calls = 0
	term, err := l.term(4)
	require.NoError(t, err)
	require.Equal(t, uint64(2), term)
	require.Zero(t, s.calls, "Storage.LastIndex calls for a stable entry's term")
	_, err = l.term(7)
	require.ErrorIs(t, err, ErrUnavailable)
}

// With the unstable tail empty the log's last index is the one before the
// tail's offset: Storage is not asked, at start and after the tail was
// written and acknowledged.
func TestRaftLogLastIndexOfStableLogSkipsStorage(t *testing.T) {
	ms := NewMemoryStorage()
	require.NoError(t, ms.Append(entsFrom(1, 1, 1, 1)))
	s := &lastIndexCounter{MemoryStorage: ms}
	l := newLog(s, DiscardLogger)
	s.calls = 0
	require.Equal(t, uint64(3), l.lastIndex())
	l.append(entsFrom(4, 2, 2)...)
	require.NoError(t, ms.Append(l.nextUnstableEnts()))
	l.acceptUnstable()
	l.stableTo(entryID{term: 2, index: 5})
	require.Equal(t, uint64(5), l.lastIndex())
	if !invariants.Enabled { // the invariants cross-check asks Storage
		require.Zero(t, s.calls, "Storage.LastIndex calls with an empty unstable tail")
	}
}

// termCounter is a MemoryStorage that counts Term and FirstIndex calls.
type termCounter struct {
	*MemoryStorage
	calls int
}

func (s *termCounter) Term(i uint64) (uint64, error) {
	s.calls++
	return s.MemoryStorage.Term(i)
}

func (s *termCounter) FirstIndex() (uint64, error) {
	s.calls++
	return s.MemoryStorage.FirstIndex()
}

// The term of the entry right before the unstable tail (the previous
// entry of the next append a leader sends, and of the next one a follower
// receives) and reads of the tail itself come without asking Storage.
func TestRaftLogTermBeforeTailSkipsStorage(t *testing.T) {
	ms := NewMemoryStorage()
	require.NoError(t, ms.Append(entsFrom(1, 1, 1, 1)))
	s := &termCounter{MemoryStorage: ms}
	l := newLog(s, DiscardLogger)
	l.append(entsFrom(4, 2, 2)...)
	require.NoError(t, ms.Append(l.nextUnstableEnts()))
	l.acceptUnstable()
	l.stableTo(entryID{term: 2, index: 5})
	l.append(entsFrom(6, 2)...)
	s.calls = 0
	term, err := l.term(5)
	require.NoError(t, err)
	require.Equal(t, uint64(2), term)
	ents, err := l.entries(6, noLimit)
	require.NoError(t, err)
	require.Equal(t, entsFrom(6, 2), ents)
	_, err = l.term(7)
	require.ErrorIs(t, err, ErrUnavailable)
	if !invariants.Enabled { // the invariants cross-check asks Storage
		require.Zero(t, s.calls, "Storage.Term and FirstIndex calls")
	}
}

// Reading stable entries (committed entries to apply, or entries for a
// follower) asks Storage only for the entries: whether they were
// compacted is Storage.Entries' answer.
func TestRaftLogSliceOfStableEntriesAsksOnlyEntries(t *testing.T) {
	ms := NewMemoryStorage()
	require.NoError(t, ms.Append(entsFrom(1, 1, 1, 1, 2, 2)))
	s := &termCounter{MemoryStorage: ms}
	l := newLog(s, DiscardLogger)
	s.calls = 0
	ents, err := l.slice(2, 5, noLimit)
	require.NoError(t, err)
	require.Equal(t, entsFrom(2, 1, 1, 2), ents)
	require.Zero(t, s.calls, "Storage.Term and FirstIndex calls")

	require.NoError(t, ms.Compact(3))
	_, err = l.slice(3, 5, noLimit)
	require.ErrorIs(t, err, ErrCompacted)
	ents, err = l.slice(4, 6, noLimit)
	require.NoError(t, err)
	require.Equal(t, entsFrom(4, 2, 2), ents)
}

// With a snapshot pending in the unstable tail, everything before it is
// compacted, although Storage (which has not applied the snapshot yet)
// still holds the old entries.
func TestRaftLogSliceBeforePendingSnapshotIsCompacted(t *testing.T) {
	ms := NewMemoryStorage()
	require.NoError(t, ms.Append(entsFrom(1, 1, 1, 1, 1, 1)))
	l := newLog(ms, DiscardLogger)
	l.restore(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 10, Term: 2}})
	for _, lo := range []uint64{1, 3, 10} {
		_, err := l.slice(lo, 11, noLimit)
		require.ErrorIs(t, err, ErrCompacted, "slice from %d", lo)
	}
	ents, err := l.slice(11, 11, noLimit)
	require.NoError(t, err)
	require.Empty(t, ents)
}

// A leader deciding whether the quorum's index commits knows that entry's
// term from where its own term starts in its log: it does not ask Storage
// once per batch of acknowledged entries.
func TestLeaderCommitAsksStorageNoTerm(t *testing.T) {
	c := newBenchCluster(t, 3, false)
	leader := c.nodes[0]
	s := &termCounter{MemoryStorage: leader.s}
	leader.rn.raft.raftLog.storage = s
	for i := 0; i < 10; i++ {
		c.round(t, 64)
	}
	require.Equal(t, uint64(leader.applied), leader.rn.raft.raftLog.committed)
	if !invariants.Enabled { // the invariants cross-check asks Storage
		require.Zero(t, s.calls, "Storage.Term and FirstIndex calls")
	}
}

// A follower refusing an append whose previous term is lower than its log
// could hold there (a broken or hostile leader) looks for the hint no
// further down than its commit index, where the logs agree, instead of
// reading the term of every entry down to the start of the log.
func TestRefusalHintStopsAtCommit(t *testing.T) {
	ms := NewMemoryStorage()
	terms := make([]uint64, 1000)
	for i := range terms {
		terms[i] = 5
	}
	require.NoError(t, ms.Append(entsFrom(1, terms...)))
	require.NoError(t, ms.SetHardState(pb.HardState{Term: 5, Commit: 990}))
	s := &termCounter{MemoryStorage: ms}
	cfg := testConfig(1, ms)
	cfg.Storage = s
	rn, err := NewRawNode(cfg)
	require.NoError(t, err)
	rn.raft.becomeFollower(5, 2)
	s.calls = 0
	require.NoError(t, rn.Step(pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 5, Index: 1000, LogTerm: 1, Commit: 990}))
	require.LessOrEqual(t, s.calls, 50, "Storage.Term calls for one refusal (1,998 walking the whole log)")
	var refusal pb.Message
	for _, m := range rn.Ready().Messages {
		if m.Type == pb.MsgAppResp {
			refusal = m
		}
	}
	require.True(t, refusal.Reject)
	require.Equal(t, uint64(990), refusal.RejectHint)
	require.Equal(t, uint64(5), refusal.LogTerm)
}

// A leader handed a refusal whose hint claims a term lower than the
// follower's log could hold looks for its next probe no further down than
// what the follower acknowledged.
func TestRefusalHintLeaderStopsAtMatch(t *testing.T) {
	ms := NewMemoryStorage()
	require.NoError(t, ms.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 5,
		ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}))
	terms := make([]uint64, 999)
	for i := range terms {
		terms[i] = 5
	}
	require.NoError(t, ms.Append(entsFrom(2, terms...)))
	require.NoError(t, ms.SetHardState(pb.HardState{Term: 5, Commit: 1}))
	s := &termCounter{MemoryStorage: ms}
	cfg := testConfig(1, ms)
	cfg.Storage = s
	rn, err := NewRawNode(cfg)
	require.NoError(t, err)
	rn.raft.becomeCandidate()
	rn.raft.becomeLeader()
	pr := rn.raft.trk.Progress[2]
	pr.BecomeReplicate()
	require.True(t, pr.MaybeUpdate(990))
	s.calls = 0
	require.NoError(t, rn.Step(pb.Message{Type: pb.MsgAppResp, From: 2, To: 1, Term: rn.raft.Term,
		Index: 1000, Reject: true, RejectHint: 1000, LogTerm: 1}))
	require.LessOrEqual(t, s.calls, 50, "Storage.Term calls for one refusal (about 1,000 walking the whole log)")
	require.Equal(t, uint64(991), pr.Next)
}
