package wal_test

import (
	"fmt"
	"os"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/multiraft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
)

// A one-node host of three groups keeps them all in one MultiLog: each
// host Ready is one Save. The node removes group 3, restarts from the log
// (groups from Groups, tombstones from Removed), and its groups replay
// what they committed.
func ExampleMultiLog() {
	dir, err := os.MkdirTemp("", "multilog-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	// start opens the log and a host with every group it holds (or, the
	// first time, groups 1 to 3).
	start := func() (*wal.MultiLog, *multiraft.Host) {
		ml, err := wal.OpenMulti(dir, wal.Options{})
		if err != nil {
			panic(err)
		}
		h, err := multiraft.NewHost(multiraft.Config{ID: 1, Tombstones: ml.Removed()})
		if err != nil {
			panic(err)
		}
		ids, peers := ml.Groups(), []raft.Peer(nil)
		if len(ids) == 0 {
			ids, peers = []uint64{1, 2, 3}, []raft.Peer{{ID: 1}}
		}
		for _, id := range ids {
			st, err := ml.Group(id)
			if err != nil {
				panic(err)
			}
			cfg := raft.Config{ElectionTick: 10, HeartbeatTick: 1, Storage: st,
				MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: raft.DiscardLogger}
			if err := h.CreateGroup(id, cfg, peers); err != nil {
				panic(err)
			}
		}
		return ml, h
	}
	// settle handles the host's Readys: one Save for all the groups.
	settle := func(ml *wal.MultiLog, h *multiraft.Host, apply func(group uint64, data string)) {
		for h.HasReady() {
			rd := h.Ready()
			ups := make([]wal.GroupUpdate, len(rd.Groups))
			for i, g := range rd.Groups {
				ups[i] = wal.GroupUpdate{GroupID: g.GroupID, HardState: g.HardState, Entries: g.Entries, Snapshot: g.Snapshot}
			}
			if err := ml.Save(ups); err != nil {
				panic(err)
			}
			// A one-node host sends nothing; apply.
			for _, g := range rd.Groups {
				for _, e := range g.CommittedEntries {
					if e.Type == pb.EntryNormal && len(e.Data) > 0 {
						apply(g.GroupID, string(e.Data))
					}
				}
			}
			h.Advance(rd)
		}
	}

	applied := map[uint64][]string{}
	apply := func(group uint64, data string) { applied[group] = append(applied[group], data) }
	ml, h := start()
	settle(ml, h, apply)
	for _, id := range []uint64{1, 2, 3} {
		_ = h.Campaign(id)
	}
	settle(ml, h, apply)
	for _, id := range []uint64{1, 2, 3} {
		_ = h.Propose(id, fmt.Appendf(nil, "x=%d", id))
		_ = h.Propose(id, fmt.Appendf(nil, "y=%d", id))
	}
	settle(ml, h, apply)
	fmt.Println("before the restart:", applied)

	// Remove group 3: from the host, then durably from the log.
	if err := h.RemoveGroup(3); err != nil {
		panic(err)
	}
	if err := ml.RemoveGroup(3); err != nil {
		panic(err)
	}
	if err := ml.Close(); err != nil {
		panic(err)
	}

	applied = map[uint64][]string{}
	ml, h = start()
	defer ml.Close()
	settle(ml, h, apply)
	fmt.Println("groups", ml.Groups(), "removed", ml.Removed(), "host tombstones", h.Tombstones())
	fmt.Println("replayed after the restart:", applied)
	// Output:
	// before the restart: map[1:[x=1 y=1] 2:[x=2 y=2] 3:[x=3 y=3]]
	// groups [1 2] removed [3] host tombstones [3]
	// replayed after the restart: map[1:[x=1 y=1] 2:[x=2 y=2]]
}
