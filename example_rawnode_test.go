package raft_test

import (
	"fmt"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// A single-voter node driven through the Ready loop: persist, send, apply,
// Advance. A real server would also call Tick on a timer and send
// rd.Messages to its peers.
func ExampleRawNode() {
	storage := raft.NewMemoryStorage()
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              1,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		Logger:          raft.DiscardLogger,
	})
	if err != nil {
		panic(err)
	}
	if err := rn.Bootstrap([]raft.Peer{{ID: 1}}); err != nil {
		panic(err)
	}

	// handleReady follows the Ready contract.
	handleReady := func() {
		for rn.HasReady() {
			rd := rn.Ready()
			_ = storage.Save(rd.HardState, rd.Entries, rd.Snapshot)
			// (send rd.Messages here)
			for _, e := range rd.CommittedEntries {
				switch {
				case e.Type == pb.EntryConfChange:
					var cc pb.ConfChange
					_ = cc.Unmarshal(e.Data)
					rn.ApplyConfChange(cc)
				case len(e.Data) > 0:
					fmt.Printf("applied %d: %s\n", e.Index, e.Data)
				}
			}
			rn.Advance(rd)
		}
	}

	handleReady()
	_ = rn.Campaign()
	handleReady()
	for _, cmd := range []string{"x=1", "y=2", "x=3"} {
		_ = rn.Propose([]byte(cmd))
	}
	handleReady()
	st := rn.BasicStatus()
	fmt.Println(st.RaftState, "term", st.Term, "commit", st.Commit)
	// Output:
	// applied 3: x=1
	// applied 4: y=2
	// applied 5: x=3
	// StateLeader term 2 commit 5
}
