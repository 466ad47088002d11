package raft

import (
	"math"
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

// fuzzKind picks a role and whether the node uses AsyncStorageWrites from
// one fuzzed byte.
func fuzzKind(b uint8) (role StateType, async bool) {
	return fuzzRoles[int(b)%len(fuzzRoles)], int(b)/len(fuzzRoles)%2 == 1
}

// newFuzzNode builds node 1 of voters {1, 2, 3} and learner 4, with a log
// of terms [1 1 2 3 3] committed to 2, in the given role at term 5 or 6.
// With async, the node is set up as usual and then continues with
// AsyncStorageWrites (settle drives it); a leader then also has a proposal
// whose write is handed out but not done: held are that Ready's messages,
// for settle to complete.
func newFuzzNode(t testing.TB, role StateType, async bool) (n *testNode, held []pb.Message) {
	n = newFuzzNodeSync(t, role)
	n.rn.asyncWrite = async
	if async && role == StateLeader {
		require.NoError(t, n.rn.Propose([]byte("held")))
		held = n.rn.Ready().Messages
	}
	return n, held
}

func newFuzzNodeSync(t testing.TB, role StateType) *testNode {
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

// settle handles every pending Ready as the contract asks, synchronously
// or, with AsyncStorageWrites, by doing the storage threads' work inline
// and stepping their responses back (which the node must accept), after
// completing the messages of a Ready handed out earlier (held).
func (n *testNode) settle(held []pb.Message) {
	n.t.Helper()
	if !n.rn.asyncWrite {
		for _, m := range n.ready() {
			n.checkAddressee(m)
		}
		return
	}
	n.handleAsync(held)
	for n.rn.HasReady() {
		n.handleAsync(n.rn.Ready().Messages)
	}
}

// handleAsync does what an AsyncStorageWrites Ready's messages ask of the
// storage threads, and checks those for the network.
func (n *testNode) handleAsync(msgs []pb.Message) {
	n.t.Helper()
	for _, m := range msgs {
		switch m.To {
		case LocalAppendThread:
			require.NoError(n.t, saveStorageAppend(n.storage, m))
		case LocalApplyThread:
			for _, e := range m.Entries {
				if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
					cc, err := pb.UnmarshalConfChange(e)
					require.NoError(n.t, err)
					n.rn.ApplyConfChange(cc)
				}
				n.applied = append(n.applied, e)
			}
		default:
			n.checkAddressee(m)
			continue
		}
		for _, resp := range m.Responses {
			if resp.To == n.r().id {
				require.NoError(n.t, n.rn.Step(resp), "the node refused its own %s", DescribeMessage(resp, nil))
			} else {
				n.checkAddressee(resp)
			}
		}
	}
}

// checkAddressee checks that a message for the network is addressed to a
// node, not to a storage thread.
func (n *testNode) checkAddressee(m pb.Message) {
	n.t.Helper()
	if IsLocalMsgTarget(m.To) {
		n.t.Fatalf("%s for the network is addressed to a storage thread", DescribeMessage(m, nil))
	}
}

// checkStep delivers m to a node in role and checks that nothing breaks:
// no panic, also through the election timeouts that follow; a refused
// message changes nothing; otherwise the term and commit index never move
// back, a vote is never changed within a term, committed entries are never
// rewritten, and the node's invariants hold.
func checkStep(t testing.TB, role StateType, async bool, m pb.Message) {
	n, held := newFuzzNode(t, role, async)
	r := n.r()
	before, beforeLog := nodeState(n), r.raftLog.String()
	var committed []pb.Entry
	if first := r.raftLog.firstIndex(); r.raftLog.committed >= first {
		committed = r.raftLog.allEntries()[:r.raftLog.committed-first+1]
	}

	err := n.rn.Step(m)
	if err != nil {
		if got, gotLog := nodeState(n), r.raftLog.String(); got != before || gotLog != beforeLog {
			t.Fatalf("refused %s (%v) but the state changed: %+v %s -> %+v %s", DescribeMessage(m, nil), err, before, beforeLog, got, gotLog)
		}
		return
	}
	checkOwnProgress(t, n, m)
	// Long enough for an election (and a second one) to follow: a bad
	// value taken in may only bite when the node campaigns.
	n.settle(held)
	for i := 0; i < 2*r.randomizedElectionTimeout+1; i++ {
		n.tick(1)
		n.settle(nil)
		checkOwnProgress(t, n, m)
	}
	if IsLocalMsgTarget(r.lead) || IsLocalMsgTarget(r.Vote) {
		t.Fatalf("after %s the node follows %x and voted for %x: a storage thread's ID", DescribeMessage(m, nil), r.lead, r.Vote)
	}
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

// checkOwnProgress checks that a leader counts of its own log only what
// is durable.
func checkOwnProgress(t testing.TB, n *testNode, m pb.Message) {
	t.Helper()
	r := n.r()
	if r.state != StateLeader {
		return
	}
	if pr := r.trk.Progress[r.id]; pr != nil && pr.Match > r.durableIndex() {
		t.Fatalf("after %s the leader's own match %d is past its durable index %d", DescribeMessage(m, nil), pr.Match, r.durableIndex())
	}
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
		// Values near the end of the range, and senders that are not
		// peers: a storage thread, and the node itself.
		{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: math.MaxUint64},
		{Type: pb.MsgVote, From: 3, To: 1, Term: maxTerm - 1, Index: 5, LogTerm: 3},
		{Type: pb.MsgSnap, From: 2, To: 1, Term: 6, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: math.MaxUint64, Term: 6, ConfState: cs}}},
		{Type: pb.MsgApp, From: 2, To: 1, Term: 6, Index: math.MaxUint64 - 1, LogTerm: 6, Entries: entsFrom(math.MaxUint64, 6)},
		{Type: pb.MsgHeartbeat, From: LocalAppendThread, To: 1, Term: 6},
		{Type: pb.MsgAppResp, From: 1, To: 1, Term: 6, Index: 10, Reject: true, RejectHint: 1},
		{Type: pb.MsgAppResp, From: 1, To: 1, Term: 6, Index: 7},
		{Type: pb.MsgVoteResp, From: 1, To: 1, Term: 6},
		{Type: pb.MsgStorageApplyResp, From: LocalApplyThread, To: 1, Entries: []pb.Entry{{Index: 1000}}},
		{Type: pb.MsgStorageAppendResp, From: LocalAppendThread, To: 1, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1000}}},
		{Type: pb.MsgStorageAppendResp, From: LocalAppendThread, To: 1, Index: 5, LogTerm: 3},
	}
}

// FuzzStep feeds arbitrary encoded messages to nodes in every role.
func FuzzStep(f *testing.F) {
	for _, m := range fuzzSeeds() {
		b, err := m.Marshal()
		require.NoError(f, err)
		for i := range 2 * len(fuzzRoles) {
			f.Add(uint8(i), b)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		var m pb.Message
		if err := m.Unmarshal(data); err != nil {
			return
		}
		role, async := fuzzKind(kind)
		checkStep(t, role, async, m)
	})
}

// FuzzStepFields builds messages from fuzzed fields, which reach deeper
// than random bytes: the sender, terms and indexes are near the node's.
func FuzzStepFields(f *testing.F) {
	for i, m := range fuzzSeeds() {
		f.Add(uint8(i), int32(m.Type), uint8(m.From), uint8(m.Term), uint8(m.Index), uint8(m.LogTerm), uint8(m.Commit), uint8(len(m.Entries)), m.Reject, uint8(m.RejectHint), uint8(0))
	}
	f.Add(uint8(0), int32(pb.MsgHeartbeat), uint8(2), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), false, uint8(0), uint8(fuzzHugeTerm))
	f.Add(uint8(0), int32(pb.MsgSnap), uint8(2), uint8(6), uint8(1), uint8(6), uint8(0), uint8(0), false, uint8(0), uint8(fuzzHugeIndex))
	f.Add(uint8(len(fuzzRoles)+3), int32(pb.MsgAppResp), uint8(1), uint8(6), uint8(9), uint8(0), uint8(0), uint8(0), true, uint8(1), uint8(0))
	f.Add(uint8(len(fuzzRoles)), int32(pb.MsgStorageApplyResp), uint8(fuzzApplyThread), uint8(0), uint8(9), uint8(0), uint8(0), uint8(1), false, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, kind uint8, typ int32, from, term, index, logTerm, commit, nents uint8, reject bool, hint, huge uint8) {
		m := buildMessage(typ, from, term, index, logTerm, commit, nents, reject, hint, huge)
		role, async := fuzzKind(kind)
		checkStep(t, role, async, m)
	})
}

// The bits of buildMessage's huge argument, and the from values that name
// the storage threads.
const (
	// fuzzHugeTerm moves the term (and log term) to the end of the range.
	fuzzHugeTerm = 1 << iota
	// fuzzHugeIndex moves the index (and so the entries and a snapshot's
	// index) there.
	fuzzHugeIndex
	// fuzzHugeCommit moves the commit index and reject hint there.
	fuzzHugeCommit
	// fuzzAtLimit makes the moved values land around maxTerm and maxIndex
	// rather than MaxUint64.
	fuzzAtLimit

	fuzzApplyThread  = 6
	fuzzAppendThread = 7
)

// buildMessage makes a message to node 1 from small fuzzed numbers. Its
// entries follow Index with term Term, so that appends are often well
// formed. huge moves some values to the end of the range (see fuzzHugeTerm).
func buildMessage(typ int32, from, term, index, logTerm, commit, nents uint8, reject bool, hint, huge uint8) pb.Message {
	m := pb.Message{
		Type:       pb.MessageType(typ % 24),
		From:       uint64(from % 8),
		To:         1,
		Term:       uint64(term % 10),
		Index:      uint64(index % 16),
		LogTerm:    uint64(logTerm % 10),
		Commit:     uint64(commit % 16),
		Reject:     reject,
		RejectHint: uint64(hint % 16),
	}
	switch m.From {
	case fuzzApplyThread:
		m.From = LocalApplyThread
	case fuzzAppendThread:
		m.From = LocalAppendThread
	}
	top := uint64(math.MaxUint64 - 4)
	if huge&fuzzAtLimit != 0 {
		top = maxIndex - 2
	}
	if huge&fuzzHugeTerm != 0 {
		m.Term += top
		m.LogTerm += top
	}
	if huge&fuzzHugeIndex != 0 {
		m.Index = top + m.Index%3
	}
	if huge&fuzzHugeCommit != 0 {
		m.Commit = top + m.Commit%4
		m.RejectHint = top + m.RejectHint%4
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
		var huge uint8
		if rnd.IntN(8) == 0 {
			huge = u8()
		}
		m := buildMessage(int32(rnd.IntN(24)), u8(), u8(), u8(), u8(), u8(), u8(), rnd.IntN(2) == 0, u8(), huge)
		role, async := fuzzKind(u8())
		checkStep(t, role, async, m)
	}
}

// TestStepSeedsInEveryRole runs each seed message in each role, and checks
// that the well-formed ones are accepted (so the fuzz seeds exercise the
// protocol, not just validation).
func TestStepSeedsInEveryRole(t *testing.T) {
	accepted := 0
	for _, m := range fuzzSeeds() {
		for _, role := range fuzzRoles {
			for _, async := range []bool{false, true} {
				checkStep(t, role, async, m)
				n, _ := newFuzzNode(t, role, async)
				if n.rn.Step(m) == nil {
					accepted++
				}
			}
		}
	}
	require.Greater(t, accepted, 2*3*20, "most of the 20 well-formed seeds are valid in most roles")
}
