package raft

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// fuzzRoles are the roles a node is put in before a fuzzed message, and
// one start besides: fuzzTermZero.
var fuzzRoles = []StateType{StateFollower, StatePreCandidate, StateCandidate, StateLeader, fuzzTermZero}

// fuzzTermZero stands for a follower still at term 0: its storage holds a
// snapshot (index 5, term 3) but no HardState, as when an application
// seeds a new member from a snapshot.
const fuzzTermZero StateType = 100

// newFuzzNode builds node 1 of voters {1, 2, 3} and learner 4, with a log
// of terms [1 1 2 3 3] committed to 2, in the given role at term 5 or 6.
func newFuzzNode(t testing.TB, role StateType) *testNode {
	if role == fuzzTermZero {
		return newTermZeroNode(t)
	}
	n := newTestNode(t, 1, []uint64{1, 2, 3}, withLog(5, 1, 1, 2, 3, 3), withPreVote)
	require.NoError(t, n.r().restoreConfState(pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}))
	n.r().raftLog.commitTo(2)
	switch role {
	case StateFollower:
		n.r().becomeFollower(5, 2)
	case StatePreCandidate:
		n.r().becomePreCandidate()
	case StateCandidate:
		n.r().becomeCandidate()
	case StateLeader:
		n.makeLeader()
		// One follower is replicating, one still probing.
		n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: n.r().Term, Index: n.r().raftLog.lastIndex()})
	}
	n.ready()
	return n
}

// newTermZeroNode builds node 1 of voters {1, 2, 3} from a storage that
// holds a snapshot at index 5, term 3, and no HardState: it starts at term
// 0 with PreVote.
func newTermZeroNode(t testing.TB) *testNode {
	t.Helper()
	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{
		Index: 5, Term: 3, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}},
	}}))
	cfg := testConfig(1, s)
	withPreVote(cfg)
	rn, err := NewRawNode(cfg)
	require.NoError(t, err)
	n := &testNode{t: t, rn: rn, storage: s}
	t.Cleanup(func() { checkNodeInvariants(t, n) })
	return n
}

// checkStep delivers m to a node in role and checks that nothing breaks:
// no panic; a refused message changes nothing; otherwise the term and
// commit index never move back, a vote is never changed within a term,
// committed entries are never rewritten, and the node's invariants hold.
func checkStep(t testing.TB, role StateType, m pb.Message) {
	n := newFuzzNode(t, role)
	r := n.r()
	before := nodeState(n)
	var committed []pb.Entry
	if first := r.raftLog.firstIndex(); r.raftLog.committed >= first {
		committed = r.raftLog.allEntries()[:r.raftLog.committed-first+1]
	}

	err := n.rn.Step(m)
	if err != nil {
		if got := nodeState(n); got != before {
			t.Fatalf("refused %s (%v) but the state changed: %+v -> %+v", DescribeMessage(m, nil), err, before, got)
		}
		return
	}
	n.ready()
	n.tick(1)
	n.ready()
	hs := r.hardState()
	if hs.Term < before.hs.Term {
		t.Fatalf("term went back %d -> %d after %s", before.hs.Term, hs.Term, DescribeMessage(m, nil))
	}
	if hs.Term == before.hs.Term && before.hs.Vote != None && hs.Vote != before.hs.Vote {
		t.Fatalf("vote changed within term %d: %x -> %x after %s", hs.Term, before.hs.Vote, hs.Vote, DescribeMessage(m, nil))
	}
	if hs.Commit < before.hs.Commit {
		t.Fatalf("commit went back %d -> %d after %s", before.hs.Commit, hs.Commit, DescribeMessage(m, nil))
	}
	if r.raftLog.firstIndex() == 1 {
		after := r.raftLog.allEntries()
		if len(after) < len(committed) {
			t.Fatalf("committed entries lost after %s", DescribeMessage(m, nil))
		}
		for i, e := range committed {
			if after[i].Term != e.Term || after[i].Index != e.Index {
				t.Fatalf("committed entry %d rewritten after %s", e.Index, DescribeMessage(m, nil))
			}
		}
	}
	// The storage holds what the node says it persisted.
	last, err := n.storage.LastIndex()
	require.NoError(t, err)
	if last != r.raftLog.lastIndex() {
		t.Fatalf("storage last index %d, log last index %d", last, r.raftLog.lastIndex())
	}
	checkNodeInvariants(t, n)
}

// fuzzSeeds are valid and nearly valid messages of every kind.
func fuzzSeeds() []pb.Message {
	cs := pb.ConfState{Voters: []uint64{1, 2, 3}}
	return []pb.Message{
		{Type: pb.MsgApp, From: 2, To: 1, Term: 5, Index: 5, LogTerm: 3, Commit: 5, Entries: entsFrom(6, 5, 5)},
		{Type: pb.MsgApp, From: 2, To: 1, Term: 6, Index: 2, LogTerm: 1, Commit: 3, Entries: entsFrom(3, 6)},
		{Type: pb.MsgApp, From: 3, To: 1, Term: 4, Index: 1, LogTerm: 1},
		{Type: pb.MsgAppResp, From: 2, To: 1, Term: 6, Index: 6},
		{Type: pb.MsgAppResp, From: 3, To: 1, Term: 6, Index: 4, Reject: true, RejectHint: 3, LogTerm: 2},
		{Type: pb.MsgAppResp, From: 4, To: 1, Term: 6, Index: 6},
		{Type: pb.MsgVote, From: 2, To: 1, Term: 6, Index: 5, LogTerm: 3},
		{Type: pb.MsgVote, From: 3, To: 1, Term: 7, Index: 9, LogTerm: 6},
		{Type: pb.MsgPreVote, From: 2, To: 1, Term: 7, Index: 5, LogTerm: 3},
		{Type: pb.MsgVoteResp, From: 2, To: 1, Term: 6},
		{Type: pb.MsgPreVoteResp, From: 3, To: 1, Term: 6, Reject: true},
		{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 5, Commit: 4},
		{Type: pb.MsgHeartbeatResp, From: 2, To: 1, Term: 6},
		{Type: pb.MsgProp, From: 2, To: 1, Entries: []pb.Entry{{Data: []byte("p")}}},
		{Type: pb.MsgSnap, From: 2, To: 1, Term: 6, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 9, Term: 6, ConfState: cs}}},
		{Type: pb.MsgSnap, From: 2, To: 1, Term: 6, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 4, Term: 3, ConfState: cs}}},
		{Type: pb.MsgTimeoutNow, From: 2, To: 1, Term: 5},
		{Type: pb.MsgTransferLeader, From: 3, To: 1, Term: 6},
		{Type: pb.MsgReadIndex, From: 2, To: 1, Entries: []pb.Entry{{Data: []byte("r")}}},
		{Type: pb.MsgHup, From: 2, To: 1},
	}
}

// FuzzStep feeds arbitrary encoded messages to nodes in every role.
func FuzzStep(f *testing.F) {
	for _, m := range fuzzSeeds() {
		b, err := m.Marshal()
		require.NoError(f, err)
		for i := range fuzzRoles {
			f.Add(uint8(i), b)
		}
	}
	f.Fuzz(func(t *testing.T, role uint8, data []byte) {
		var m pb.Message
		if err := m.Unmarshal(data); err != nil {
			return
		}
		checkStep(t, fuzzRoles[int(role)%len(fuzzRoles)], m)
	})
}

// FuzzStepFields builds messages from fuzzed fields, which reach deeper
// than random bytes: the sender, terms and indexes are near the node's.
func FuzzStepFields(f *testing.F) {
	for _, m := range fuzzSeeds() {
		f.Add(uint8(0), int32(m.Type), uint8(m.From), uint8(m.Term), uint8(m.Index), uint8(m.LogTerm), uint8(m.Commit), uint8(len(m.Entries)), m.Reject, uint8(m.RejectHint))
	}
	f.Fuzz(func(t *testing.T, role uint8, typ int32, from, term, index, logTerm, commit, nents uint8, reject bool, hint uint8) {
		m := buildMessage(typ, from, term, index, logTerm, commit, nents, reject, hint)
		checkStep(t, fuzzRoles[int(role)%len(fuzzRoles)], m)
	})
}

// buildMessage makes a message to node 1 from small fuzzed numbers. Its
// entries follow Index with term Term, so that appends are often well
// formed.
func buildMessage(typ int32, from, term, index, logTerm, commit, nents uint8, reject bool, hint uint8) pb.Message {
	m := pb.Message{
		Type:       pb.MessageType(typ % 24),
		From:       uint64(from % 6),
		To:         1,
		Term:       uint64(term % 10),
		Index:      uint64(index % 16),
		LogTerm:    uint64(logTerm % 10),
		Commit:     uint64(commit % 16),
		Reject:     reject,
		RejectHint: uint64(hint % 16),
	}
	for i := 0; i < int(nents%5); i++ {
		m.Entries = append(m.Entries, pb.Entry{Index: m.Index + uint64(i) + 1, Term: m.Term, Data: []byte{byte(i)}})
	}
	if m.Type == pb.MsgSnap {
		m.Snapshot = &pb.Snapshot{Metadata: pb.SnapshotMetadata{
			Index: m.Index, Term: m.LogTerm, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}},
		}}
	}
	return m
}

// TestStepRandomMessages runs the fuzz check on many seeded random
// messages, so that every `go test` exercises it beyond the seed corpus.
func TestStepRandomMessages(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 11))
	runs := 20000
	if testing.Short() {
		runs = 2000
	}
	for i := 0; i < runs; i++ {
		u8 := func() uint8 { return uint8(rnd.UintN(256)) }
		m := buildMessage(int32(rnd.IntN(24)), u8(), u8(), u8(), u8(), u8(), u8(), rnd.IntN(2) == 0, u8())
		role := fuzzRoles[rnd.IntN(len(fuzzRoles))]
		checkStep(t, role, m)
	}
}

// TestStepSeedsInEveryRole runs each seed message in each role, and checks
// that the well-formed ones are accepted (so the fuzz seeds exercise the
// protocol, not just validation).
func TestStepSeedsInEveryRole(t *testing.T) {
	accepted := 0
	for _, m := range fuzzSeeds() {
		for _, role := range fuzzRoles {
			checkStep(t, role, m)
			n := newFuzzNode(t, role)
			if n.rn.Step(m) == nil {
				accepted++
			}
		}
	}
	require.Greater(t, accepted, 3*len(fuzzSeeds()), "most seeds are valid in most roles")
}
