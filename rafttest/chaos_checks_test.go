package rafttest

import (
	"strings"
	"testing"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// storedNode returns a node of term 3 whose stored log holds ents, and
// which persisted commit index commit.
func storedNode(t *testing.T, commit uint64, ents ...pb.Entry) *chaosNode {
	t.Helper()
	ms := raft.NewMemoryStorage()
	if err := ms.Append(ents); err != nil {
		t.Fatal(err)
	}
	if err := ms.SetHardState(pb.HardState{Term: 3}); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: ms, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 1, Logger: simLogger})
	if err != nil {
		t.Fatal(err)
	}
	return &chaosNode{id: 1, rn: rn, log: ms, persisted: pb.HardState{Term: 3, Commit: commit}}
}

// The checks a StorageServer gets: a new leader's stored log holds every
// entry committed before its term, and a node's stored log the committed
// entries up to the commit index it persisted.
func TestChaosStoredLogChecks(t *testing.T) {
	committed := map[uint64]entryRecord{
		1: {term: 1, seenTerm: 1},
		2: {term: 1, seenTerm: 1},
		3: {term: 2, seenTerm: 2},
	}
	for _, tt := range []struct {
		name  string
		check func(*chaosRun, *chaosNode)
		n     *chaosNode
		// seen3 is the highest term when entry 3 was first applied.
		seen3 uint64
		want  string // "" for no violation
	}{
		{"leader holds all", (*chaosRun).checkLeaderLog, storedNode(t, 0, pb.Entry{Index: 1, Term: 1}, pb.Entry{Index: 2, Term: 1}, pb.Entry{Index: 3, Term: 2}), 2, ""},
		{"leader lacks one", (*chaosRun).checkLeaderLog, storedNode(t, 0, pb.Entry{Index: 1, Term: 1}, pb.Entry{Index: 2, Term: 1}), 2, "leader 1 of term 3 lacks committed entry 3"},
		{"leader may lack one of its term", (*chaosRun).checkLeaderLog, storedNode(t, 0, pb.Entry{Index: 1, Term: 1}, pb.Entry{Index: 2, Term: 1}), 3, ""},
		{"leader holds another", (*chaosRun).checkLeaderLog, storedNode(t, 0, pb.Entry{Index: 1, Term: 1}, pb.Entry{Index: 2, Term: 2}), 2, "holds term 2 at committed index 2"},
		{"node holds what it committed", (*chaosRun).checkStoredLog, storedNode(t, 2, pb.Entry{Index: 1, Term: 1}, pb.Entry{Index: 2, Term: 1}, pb.Entry{Index: 3, Term: 3}), 2, ""},
		{"node holds another", (*chaosRun).checkStoredLog, storedNode(t, 2, pb.Entry{Index: 1, Term: 1}, pb.Entry{Index: 2, Term: 2}), 2, "node 1 stores term 2 at committed index 2"},
		{"node lost one", (*chaosRun).checkStoredLog, storedNode(t, 2, pb.Entry{Index: 1, Term: 1}), 2, "node 1 stores no entry at committed index 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &chaosRun{committed: map[uint64]entryRecord{}}
			for i, rec := range committed {
				r.committed[i] = rec
			}
			rec := r.committed[3]
			rec.seenTerm = tt.seen3
			r.committed[3] = rec
			tt.check(r, tt.n)
			got := strings.Join(r.violations, "; ")
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Fatalf("violations %q, want %q", got, tt.want)
			}
		})
	}
}
