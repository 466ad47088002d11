package multiraft

import (
	"testing"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

// FuzzHostStepBytes: no batch from the network crashes a host, and a batch
// refused as malformed changes nothing.
func FuzzHostStepBytes(f *testing.F) {
	seeds := []*mrpb.Batch{
		voteBatch(),
		{From: 2, To: 1, Heartbeats: []mrpb.Heartbeat{{GroupID: 1, Term: 2, Commit: 3, Quiesce: true}}},
		{From: 2, To: 1, HeartbeatResponses: []mrpb.HeartbeatResponse{{GroupID: 2, Term: 9}}, NodeHeartbeat: true},
		{From: 2, To: 1, WakeGroups: []uint64{1, 3, 7}},
		{From: 2, To: 1, Messages: []mrpb.GroupMessage{{GroupID: 3, Message: pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 4, Index: 3, LogTerm: 1, Commit: 3, Entries: []pb.Entry{{Term: 4, Index: 4, Data: []byte("x")}}}}}},
	}
	for _, b := range seeds {
		data, err := b.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		storages := map[uint64]*raft.MemoryStorage{1: raft.NewMemoryStorage(), 2: raft.NewMemoryStorage(), 3: raft.NewMemoryStorage()}
		h, err := NewHost(Config{ID: 1, OnUnknownGroup: func(g uint64, _ pb.Message) (bool, raft.Config) {
			return g == 3, groupConfig(1, 1, g, storages[3])
		}})
		if err != nil {
			t.Fatal(err)
		}
		peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
		for g := uint64(1); g <= 2; g++ {
			if err := h.CreateGroup(g, groupConfig(1, 1, g, storages[g]), peers); err != nil {
				t.Fatal(err)
			}
		}
		before, _ := h.BasicStatus(1)
		if err := h.StepBytes(2, data); err != nil {
			if after, _ := h.BasicStatus(1); after != before || h.NumGroups() != 2 {
				t.Fatalf("refused batch changed the host: %+v -> %+v", before, after)
			}
			return
		}
		for h.HasReady() {
			rd := h.Ready()
			for _, gr := range rd.Groups {
				if err := storages[gr.GroupID].Save(gr.HardState, gr.Entries, gr.Snapshot); err != nil {
					t.Fatal(err)
				}
			}
			h.Advance(rd)
		}
	})
}
