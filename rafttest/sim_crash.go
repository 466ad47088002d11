package rafttest

import (
	"fmt"
	"path/filepath"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// simStorage is what a simulated node persists to: a MemoryStorage or a
// wal.Storage.
type simStorage interface {
	raft.Storage
	Append([]pb.Entry) error
	SetHardState(pb.HardState) error
	ApplySnapshot(pb.Snapshot) error
	CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error)
	Compact(compactIndex uint64) error
}

// crash stops n. To lose unpersisted state, it first steps the messages
// due to it without handling the resulting Ready.
func (s *Sim) crash(n *simNode) {
	for _, m := range s.net.TakeFor(n.id) {
		_ = n.rn.Step(m)
	}
	lost := n.rn.HasReady() || len(n.writes) > 0 || len(n.applies) > 0
	n.rn = nil
	n.forwarded = nil
	n.writes = nil
	n.applies = nil
	if n.disk != nil {
		n.disk.Crash(crashfs.TearWrites, s.rnd.Uint64())
	}
	s.event("node %d crashed (unpersisted state lost: %v)", n.id, lost)
}

// openStorage gives n its storage: a fresh MemoryStorage, or its WAL
// directory opened (again).
func (s *Sim) openStorage(n *simNode) error {
	if s.cfg.WALDir == "" && !s.cfg.WALPowerLoss {
		n.storage = raft.NewMemoryStorage()
		return nil
	}
	opts := wal.Options{SegmentSize: 16 << 10, CacheSize: 4 << 10, NoSync: true}
	dir := filepath.Join(s.cfg.WALDir, fmt.Sprint("node-", n.id))
	if s.cfg.WALPowerLoss {
		// The storage a power failure left is not closed: its files are
		// gone with the machine.
		if n.disk == nil {
			n.disk = crashfs.New()
		}
		opts.NoSync, opts.FS, dir = false, n.disk, "/wal"
	} else if w, ok := n.storage.(*wal.Storage); ok {
		if err := w.Close(); err != nil {
			return err
		}
	}
	w, err := wal.Open(dir, opts)
	if err != nil {
		return err
	}
	n.storage = w
	n.config.Storage = w
	return nil
}

func (s *Sim) closeStorages() {
	for _, n := range s.nodes {
		if n.disk != nil && n.rn == nil {
			continue // lost in a power failure
		}
		if w, ok := n.storage.(*wal.Storage); ok {
			if err := w.Close(); err != nil {
				s.violate("node %d: close storage: %v", n.id, err)
			}
		}
	}
}

// restart rebuilds n from its storage and durable state machine.
func (s *Sim) restart(n *simNode) {
	if s.cfg.WALDir != "" || s.cfg.WALPowerLoss {
		if err := s.openStorage(n); err != nil {
			s.violate("node %d: reopen storage: %v", n.id, err)
			return
		}
	}
	if w, ok := n.storage.(*wal.Storage); ok && s.cfg.WALPowerLoss {
		// A power failure loses a commit index written since the last
		// sync: Raft does not need it durable.
		n.persisted.Commit = min(n.persisted.Commit, w.HardState().Commit)
	}
	snap, err := n.storage.Snapshot()
	if err != nil {
		s.violate("node %d: reading snapshot: %v", n.id, err)
		return
	}
	if n.sm.Applied > snap.Metadata.Index {
		// The state machine and its configuration are durable together:
		// record them as a snapshot, as a server that snapshots on
		// shutdown would.
		if _, err := n.storage.CreateSnapshot(n.sm.Applied, &n.sm.ConfState, n.sm.encode()); err != nil {
			s.violate("node %d: snapshot at restart: %v", n.id, err)
			return
		}
	}
	cfg := n.config
	cfg.Applied = n.sm.Applied
	rn, err := raft.NewRawNode(&cfg)
	if err != nil {
		s.violate("node %d: restart: %v", n.id, err)
		return
	}
	if last, _ := n.storage.LastIndex(); last == 0 && n.id <= uint64(len(s.peers)) {
		// It crashed before persisting its bootstrap: bootstrap again, as
		// a server does when it finds its storage empty.
		if err := rn.Bootstrap(s.peers); err != nil {
			s.violate("node %d: bootstrap after restart: %v", n.id, err)
			return
		}
	}
	n.rn = rn
	n.incarnation++
	n.restartAt = 0
	if n.campaignOnRestart {
		n.campaignOnRestart = false
		if err := rn.Campaign(); err != nil {
			s.violate("node %d: campaign after restart: %v", n.id, err)
		}
	}
	st := rn.BasicStatus()
	if st.Commit < n.persisted.Commit {
		s.violate("node %d: commit went back from %d to %d across a restart", n.id, n.persisted.Commit, st.Commit)
	}
	n.commit = st.Commit // what was not persisted is gone
	s.event("node %d restarted (term %d commit %d applied %d)", n.id, st.Term, st.Commit, n.sm.Applied)
}
