package rafttest

import (
	"slices"
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

// confNode returns a node at rest that applied up to 5, restored from a
// snapshot there with configuration cs.
func confNode(t *testing.T, id uint64, cs pb.ConfState) *chaosNode {
	t.Helper()
	ms := raft.NewMemoryStorage()
	if err := ms.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 5, Term: 1, ConfState: cs}}); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: ms, Applied: 5, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 1, Logger: simLogger})
	if err != nil {
		t.Fatal(err)
	}
	return &chaosNode{id: id, rn: rn}
}

// Nodes at rest that applied the same conf changes must have the same
// configuration, and so must a snapshot handed to a node.
func TestChaosConfChecks(t *testing.T) {
	three := pb.ConfState{Voters: []uint64{1, 2, 3}}
	r := &chaosRun{confAt: map[uint64]confSeen{}}
	r.noteConfChange(pb.Entry{Index: 4, Type: pb.EntryConfChangeV2})
	r.noteConfChange(pb.Entry{Index: 2, Type: pb.EntryConfChange})
	r.noteConfChange(pb.Entry{Index: 3, Type: pb.EntryNormal})
	if got := []uint64{r.confKey(1), r.confKey(3), r.confKey(4), r.confKey(9)}; !slices.Equal(got, []uint64{0, 2, 4, 4}) {
		t.Fatalf("conf keys %v", got)
	}
	r.checkConf(confNode(t, 1, three))
	r.checkConf(confNode(t, 2, pb.ConfState{Voters: []uint64{3, 2, 1}}))
	r.compareConf(3, "is handed a snapshot with", 6, three)
	if len(r.violations) != 0 {
		t.Fatalf("violations for the same configuration: %v", r.violations)
	}
	r.checkConf(confNode(t, 3, pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}))
	r.compareConf(2, "is handed a snapshot with", 5, pb.ConfState{Voters: []uint64{1, 2}})
	got := strings.Join(r.violations, "; ")
	for _, want := range []string{"node 3 has configuration voters=(1 2 3) learners=(4) at applied index 5, but node 1 had voters=(1 2 3)", "node 2 is handed a snapshot with configuration voters=(1 2)"} {
		if !strings.Contains(got, want) {
			t.Fatalf("violations %q, want %q", got, want)
		}
	}
}
