package raft_test

import (
	"fmt"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/multiraft"
	"github.com/raftcore/raft/multiraft/multiraftpb"
	"github.com/raftcore/raft/raftpb"
)

// Three nodes host two groups each in one process, joined by a queue of
// marshaled batches; group 1 elects node 1, group 2 node 2, and each
// applies one proposal (group 1's a hop later: node 3 forwards it).
func Example_manyGroups() {
	type delivery struct {
		from, to uint64
		data     []byte
	}
	var wire []delivery
	hosts := map[uint64]*multiraft.Host{}
	storages := map[uint64]map[uint64]*raft.MemoryStorage{} // node → group → storage
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	for _, node := range []uint64{1, 2, 3} {
		h, err := multiraft.NewHost(multiraft.Config{ID: node})
		if err != nil {
			panic(err)
		}
		hosts[node], storages[node] = h, map[uint64]*raft.MemoryStorage{}
		for _, group := range []uint64{1, 2} {
			st := raft.NewMemoryStorage()
			storages[node][group] = st
			cfg := raft.Config{ElectionTick: 10, HeartbeatTick: 1, Storage: st,
				MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: raft.DiscardLogger}
			if err := h.CreateGroup(group, cfg, peers); err != nil {
				panic(err)
			}
		}
	}
	send := func(b *multiraftpb.Batch) {
		data, err := b.Marshal()
		if err != nil {
			panic(err)
		}
		wire = append(wire, delivery{b.From, b.To, data})
	}
	apply := func(node, group uint64, e raftpb.Entry) {
		if node == 3 && e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
			fmt.Printf("node 3, group %d applied %s\n", group, e.Data)
		}
	}
	settle := func() {
		for busy := true; busy; {
			busy = false
			for _, node := range []uint64{1, 2, 3} {
				h := hosts[node]
				if h.HasReady() {
					if err := handleHostReady(h, storages[node], send, func(g uint64, e raftpb.Entry) { apply(node, g, e) }); err != nil {
						panic(err)
					}
					busy = true
				}
			}
			for len(wire) > 0 {
				d := wire[0]
				wire = wire[1:]
				if err := hosts[d.to].StepBytes(d.from, d.data); err != nil {
					panic(err)
				}
				busy = true
			}
		}
	}
	settle()
	_ = hosts[1].Campaign(1)
	_ = hosts[2].Campaign(2)
	settle()
	_ = hosts[3].Propose(1, []byte("x=1")) // forwarded to node 1
	_ = hosts[2].Propose(2, []byte("y=2"))
	settle()
	// Output:
	// node 3, group 2 applied y=2
	// node 3, group 1 applied x=1
}

// handleHostReady runs one host Ready through the contract.
func handleHostReady(h *multiraft.Host, storages map[uint64]*raft.MemoryStorage,
	send func(*multiraftpb.Batch), apply func(group uint64, e raftpb.Entry)) error {
	// readme:begin many-groups
	rd := h.Ready()
	// 1. Persist each group's snapshot, entries and hard state.
	for _, g := range rd.Groups {
		if err := storages[g.GroupID].Save(g.HardState, g.Entries, g.Snapshot); err != nil {
			return err
		}
	}
	// 2. Send: one batch per destination node, every group's messages in it.
	for _, b := range rd.Batches {
		send(b)
	}
	// 3. Apply each group's committed entries.
	for _, g := range rd.Groups {
		for _, e := range g.CommittedEntries {
			if e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2 {
				cc, err := raftpb.UnmarshalConfChange(e)
				if err != nil {
					return err
				}
				if _, err := h.ApplyConfChange(g.GroupID, cc); err != nil {
					return err
				}
			}
			apply(g.GroupID, e)
		}
	}
	// 4. Acknowledge.
	h.Advance(rd)
	// readme:end
	return nil
}
