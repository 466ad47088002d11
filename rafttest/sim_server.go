package rafttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// simServer is one incarnation of the simulation's key-value server on
// one node: its Ready loop (synchronous, or with AsyncStorageWrites its
// append and apply threads as ServerEnv.Later queues), its durable state
// machine (kvState) and its storage (a MemoryStorage, or a WAL).
type simServer struct {
	sim     *Sim
	env     *ServerEnv
	rn      *raft.RawNode
	storage simStorage
	durable *simDurable
	// stored is the HardState its storage holds.
	stored pb.HardState
	// waiting maps the ID of each operation proposed through this node to
	// its answer; reads the context of each read index asked for.
	waiting map[uint64]func(any)
	reads   map[string]*simRead
	nread   int
	// forwarded maps the ForwardID of each proposal the RawNode forwarded
	// to its data (see takeForwarded).
	forwarded map[uint64]string
	// closed is set once the node crashed.
	closed bool
	// applyQueued and applyDone count the batches handed to the apply
	// thread (Async) and those it has applied.
	applyQueued, applyDone int
}

// simDurable is what a node keeps across crashes besides its storage:
// its state machine, durable with the configuration it applied, and its
// disk (WALPowerLoss).
type simDurable struct {
	sm   *kvState
	disk *crashfs.FS
}

// simRead is a read served from the state machine once it has applied
// its read index (0 while not known yet).
type simRead struct {
	key   string
	index uint64
	done  func(any)
}

// simStorage is what a simulated node persists to: a MemoryStorage or a
// wal.Storage.
type simStorage interface {
	raft.Storage
	Save(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) error
	CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error)
	Compact(compactIndex uint64) error
}

// open opens the node's storage and builds its RawNode from it and from
// the durable state machine.
func (s *simServer) open() error {
	cfg := s.sim.cfg
	if err := s.openStorage(); err != nil {
		return err
	}
	sm := s.durable.sm
	snap, err := s.storage.Snapshot()
	if err != nil {
		return fmt.Errorf("reading snapshot: %w", err)
	}
	if sm.Applied > snap.Metadata.Index {
		// The state machine and its configuration are durable together:
		// record them as a snapshot, as a server that snapshots on
		// shutdown would.
		if _, err := s.storage.CreateSnapshot(sm.Applied, &sm.ConfState, sm.encode()); err != nil {
			return fmt.Errorf("snapshot at restart: %w", err)
		}
	}
	if s.stored, _, err = s.storage.InitialState(); err != nil {
		return err
	}
	c := s.env.Config()
	c.Storage = s.storage
	c.Applied = sm.Applied
	c.SnapshotTimeout = cfg.SnapshotTimeout
	c.StepDownOnRemoval = cfg.StepDownOnRemoval
	c.AsyncStorageWrites = cfg.Async
	c.ReuseReadyMessages = cfg.ReuseReadyMessages && !cfg.Async
	if cfg.LeaseReads {
		c.ReadOnlyOption = raft.ReadOnlyLeaseBased
	}
	if s.rn, err = raft.NewRawNode(c); err != nil {
		return err
	}
	if last, _ := s.storage.LastIndex(); last == 0 && len(s.env.Peers) > 0 {
		// A first start, or a crash before the bootstrap was persisted:
		// bootstrap, as a server does when it finds its storage empty.
		return s.rn.Bootstrap(s.env.Peers)
	}
	return nil
}

// openStorage opens the node's storage: the MemoryStorage Run keeps, or
// its WAL directory (on a disk that loses unsynced writes with
// WALPowerLoss).
func (s *simServer) openStorage() error {
	cfg := s.sim.cfg
	if cfg.WALDir == "" && !cfg.WALPowerLoss {
		s.storage = s.env.Storage
		return nil
	}
	opts := wal.Options{SegmentSize: 16 << 10, CacheSize: 4 << 10, NoSync: true}
	dir := filepath.Join(cfg.WALDir, fmt.Sprint("node-", s.env.ID))
	if cfg.WALPowerLoss {
		if s.durable.disk == nil {
			s.durable.disk = crashfs.New()
		}
		opts.NoSync, opts.FS, dir = false, s.durable.disk, "/wal"
	}
	w, err := wal.Open(dir, opts)
	if err != nil {
		return fmt.Errorf("open storage: %w", err)
	}
	s.storage = w
	return nil
}

// Close stops the server at a crash: its WAL is closed, or with
// WALPowerLoss the power fails, losing its unsynced writes (the last of
// them perhaps torn) and leaving its files open.
func (s *simServer) Close() error {
	s.closed = true
	if d := s.durable.disk; d != nil {
		d.Crash(crashfs.TearWrites, s.env.Rand.Uint64())
		return nil
	}
	if w, ok := s.storage.(*wal.Storage); ok {
		return w.Close()
	}
	return nil
}

func (s *simServer) RawNode() *raft.RawNode { return s.rn }

// Storage lets Run check the stored log.
func (s *simServer) Storage() raft.Storage { return s.storage }

// Submit proposes a client's operation, or asks for a read index to
// serve a read from the state machine (three reads in four).
func (s *simServer) Submit(op Op) {
	in := op.Input.(KVInput)
	if in.Op == KVGet && s.env.Rand.IntN(4) != 0 {
		s.nread++
		ctx := fmt.Sprintf("read %d.%d.%d", s.env.ID, s.env.Restarts, s.nread)
		s.reads[ctx] = &simRead{key: in.Key, done: op.Done}
		s.rn.ReadIndex([]byte(ctx))
		return
	}
	data, err := json.Marshal(simOp{Client: op.Client, Seq: op.ID, Get: in.Op == KVGet, Key: in.Key, Value: in.Value})
	if err != nil {
		panic(err)
	}
	s.waiting[op.ID] = op.Done
	switch res, err := s.rn.ProposeWithResult(data); {
	case err == nil && !res.Forwarded:
		s.env.Appended(res.Index, res.Term, data)
	case err == nil && res.ForwardID != 0:
		if s.forwarded == nil {
			s.forwarded = map[uint64]string{}
		}
		s.forwarded[res.ForwardID] = string(data)
	case errors.Is(err, raft.ErrProposalDropped):
		// Refused at once (no leader known, or not a member): the client
		// tries again elsewhere.
	case err != nil:
		s.env.run.violate("node %d: propose: %v", s.env.ID, err)
	}
}

// HandleReady follows the Ready contract, checking what the node is asked
// to write and apply.
func (s *simServer) HandleReady(rd raft.Ready) error {
	if err := s.takeForwarded(); err != nil {
		return err
	}
	if err := s.takeReadStates(rd); err != nil {
		return err
	}
	s.maybeLeaveJoint()
	if s.sim.cfg.Async {
		return s.handleReadyAsync(rd)
	}
	if err := s.persist(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		return err
	}
	s.env.Send(rd.Messages...)
	if rate := s.sim.cfg.HoldReadyRate; rate > 0 && s.env.Rand.Float64() < rate {
		// Applied later, while the node goes on taking messages and
		// ticks.
		s.env.HoldReady()
		s.env.run.laterSlow(s.env, "apply", s.confChangeStall(rd.CommittedEntries), func() {
			if err := s.applyReady(rd); err != nil {
				s.env.run.violate("node %d: applying a held Ready: %v", s.env.ID, err)
			}
			s.env.ReleaseReady()
		})
		return nil
	}
	return s.applyReady(rd)
}

// applyReady applies a Ready's committed entries, calls Advance and
// serves the reads it can.
func (s *simServer) applyReady(rd raft.Ready) error {
	for _, e := range rd.CommittedEntries {
		if err := s.apply(e); err != nil {
			return err
		}
	}
	s.rn.Advance(rd)
	return s.afterApply()
}

// handleReadyAsync hands the writes and applies to the append and apply
// threads, each a ServerEnv.Later queue, and sends the other messages.
func (s *simServer) handleReadyAsync(rd raft.Ready) error {
	var peers []pb.Message
	for _, m := range rd.Messages {
		switch m.To {
		case raft.LocalAppendThread:
			before := s.applyQueued
			s.env.Later("append", func() { s.appendThread(m, before) })
		case raft.LocalApplyThread:
			s.applyQueued++
			stall := int64(0)
			if s.sim.cfg.SnapshotWaitsApply {
				stall = s.confChangeStall(m.Entries)
			}
			s.env.run.laterSlow(s.env, "apply", stall, func() { s.applyThread(m) })
		default:
			peers = append(peers, m)
		}
	}
	s.env.Send(peers...)
	return s.afterApply()
}

// confChangeStall returns how many ticks longer applying ents takes: a
// server applying a conf change reconfigures its transport, which is
// slow half the time (confChangeStallTicks).
func (s *simServer) confChangeStall(ents []pb.Entry) int64 {
	for _, e := range ents {
		if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
			if s.env.Rand.IntN(2) == 0 {
				return confChangeStallTicks
			}
			return 0
		}
	}
	return 0
}

// confChangeStallTicks is how much longer a slow conf change takes to
// apply: long enough for a partition to heal and a snapshot to arrive.
const confChangeStallTicks = 30

// appendThread persists one MsgStorageAppend, then delivers its
// responses. With SnapshotWaitsApply, a snapshot waits for the apply
// thread to apply the batches handed to it before this write (applyBefore
// of them).
func (s *simServer) appendThread(m pb.Message, applyBefore int) {
	var snap pb.Snapshot
	if m.Snapshot != nil {
		snap = *m.Snapshot
		if s.sim.cfg.SnapshotWaitsApply && s.applyDone < applyBefore {
			s.env.Hurry("apply", applyBefore-s.applyDone)
		}
	}
	if err := s.persist(pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}, m.Entries, snap); err != nil {
		s.env.run.violate("node %d: append thread: %v", s.env.ID, err)
		return
	}
	var peers []pb.Message
	for _, resp := range m.Responses {
		if resp.To != s.env.ID {
			peers = append(peers, resp)
		} else if err := s.rn.Step(resp); err != nil {
			s.env.run.violate("node %d refused its own write's response %s: %v", s.env.ID, raft.DescribeMessage(resp, nil), err)
		}
	}
	s.env.Send(peers...)
}

// applyThread applies one MsgStorageApply, then steps its responses.
// Entries a snapshot installed meanwhile (by the append thread) already
// covers are skipped, as a server's apply thread skips what its state
// machine holds.
func (s *simServer) applyThread(m pb.Message) {
	s.applyDone++
	for _, e := range m.Entries {
		if e.Index <= s.durable.sm.Applied {
			continue
		}
		if err := s.apply(e); err != nil {
			s.env.run.violate("node %d: apply thread: %v", s.env.ID, err)
			return
		}
	}
	for _, resp := range m.Responses {
		if err := s.rn.Step(resp); err != nil {
			s.env.run.violate("node %d refused its apply response: %v", s.env.ID, err)
		}
	}
	if err := s.afterApply(); err != nil {
		s.env.run.violate("node %d: %v", s.env.ID, err)
	}
}

// persist writes a snapshot, entries and a hard state (a Ready's, or a
// MsgStorageAppend's), checking that no committed entry is overwritten;
// a snapshot replaces the state machine.
func (s *simServer) persist(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) error {
	if len(ents) > 0 && ents[0].Index <= s.stored.Commit {
		return fmt.Errorf("overwrites committed entries: writes from %d, commit %d", ents[0].Index, s.stored.Commit)
	}
	hasSnap := !raft.IsEmptySnap(snap)
	var sm *kvState
	if hasSnap {
		var err error
		if sm, err = s.checkSnapshot(snap); err != nil {
			return err
		}
	}
	if err := s.storage.Save(hs, ents, snap); err != nil {
		return err
	}
	if !raft.IsEmptyHardState(hs) {
		s.stored = hs
	}
	if hasSnap {
		s.durable.sm = sm
		s.env.run.event("node %d installed snapshot at %d", s.env.ID, snap.Metadata.Index)
	}
	return nil
}

// takeReadStates notes the read indexes the node's reads got. A read
// state for another node's request is a violation; one for a request of
// an earlier incarnation, or answered already, is not.
func (s *simServer) takeReadStates(rd raft.Ready) error {
	for _, rs := range rd.ReadStates {
		ctx := string(rs.RequestCtx)
		if r, ok := s.reads[ctx]; ok {
			r.index = rs.Index
		} else if !strings.HasPrefix(ctx, fmt.Sprintf("read %d.", s.env.ID)) {
			return fmt.Errorf("read state for %q, which it was not asked", ctx)
		}
	}
	return nil
}

// afterApply serves the reads whose index the state machine has reached,
// compacts the log now and then, and checks the applied index the node
// reports.
func (s *simServer) afterApply() error {
	sm := s.durable.sm
	if len(s.reads) > 0 {
		for _, ctx := range slices.Sorted(maps.Keys(s.reads)) {
			if r := s.reads[ctx]; r.index > 0 && sm.Applied >= r.index {
				v := sm.Data[r.key]
				r.done(KVOutput{Found: v != "", Value: v})
				delete(s.reads, ctx)
			}
		}
	}
	if st := s.rn.BasicStatus(); st.Applied < sm.Applied && st.Applied != 0 {
		return fmt.Errorf("reports applied %d below its state machine's %d", st.Applied, sm.Applied)
	}
	return s.maybeCompact()
}
