// Package raft is raftcore's Raft consensus core: the protocol as a
// deterministic state machine with no goroutines, clocks, disks or sockets of
// its own. The application persists, sends and applies what the core asks
// for in Ready batches.
//
// # Starting a node
//
// A node reads its persisted state through a Storage. A brand-new cluster
// bootstraps each member with the initial membership:
//
//	storage := raft.NewMemoryStorage()
//	node, err := raft.NewRawNode(&raft.Config{
//		ID:              1,
//		ElectionTick:    10,
//		HeartbeatTick:   1,
//		Storage:         storage,
//		MaxSizePerMsg:   1 << 20,
//		MaxInflightMsgs: 256,
//		CheckQuorum:     true,
//		PreVote:         true,
//	})
//	if err != nil { ... }
//	err = node.Bootstrap([]raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}})
//
// A restarting node skips Bootstrap: NewRawNode restores its term, vote,
// commit index, log and configuration from the Storage.
//
// # The Ready loop
//
// Time enters through Tick, peers' messages through Step, the application's
// commands through Propose. Whenever HasReady reports work, handle one Ready
// in this order, then Advance:
//
//	for {
//		select {
//		case <-ticker.C:
//			node.Tick()
//		case m := <-received:
//			if err := node.Step(m); err != nil {
//				log.Printf("dropped message: %v", err) // nothing changed
//			}
//		case cmd := <-commands:
//			_ = node.Propose(cmd) // ErrProposalDropped: retry later
//		}
//		for node.HasReady() {
//			rd := node.Ready()
//			// 1. Persist: the snapshot, the entries, the hard state, in
//			//    that order (fsync when rd.MustSync).
//			if err := storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
//				return err
//			}
//			// 2. Send, only after persisting.
//			send(rd.Messages)
//			// 3. Apply the snapshot, then the committed entries in order.
//			for _, e := range rd.CommittedEntries {
//				if e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2 {
//					cc, _ := raftpb.UnmarshalConfChange(e)
//					node.ApplyConfChange(cc)
//				}
//				apply(e)
//			}
//			// 4. Acknowledge.
//			node.Advance(rd)
//		}
//	}
//
// # Errors and panics
//
// Messages from the network are validated by Step: a malformed or
// inconsistent one is refused with an error (ErrInvalidMessage,
// ErrStepLocalMsg, ErrStepPeerNotFound) and changes nothing. The core panics
// only when the embedding program breaks the API contract (for example
// Advance without Ready) or when local storage is corrupt; the panic message
// names the broken rule.
package raft
