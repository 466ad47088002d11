package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// The scenarios below are a process that dies (or fails stop and is
// restarted, as ErrFailed advises) between a write and its sync, with no
// power loss: the next Open sees the unsynced data in the page cache. It
// must make durable what it reads, or a later power failure loses what
// the restarted process acknowledged on top of it. An injected error
// stands in for the death: the operation does not happen and the Storage
// stops.

// entriesOf returns entries from ... to of term, each with size bytes of
// data.
func entriesOf(term, from, to uint64, size int) (es []pb.Entry) {
	for i := from; i <= to; i++ {
		es = append(es, pb.Entry{Term: term, Index: i, Data: bytes.Repeat([]byte{byte(i)}, size)})
	}
	return es
}

// reopenScenario is one death and restart; it returns an error when an
// acknowledged Save is lost or the log does not reopen after the power
// failure that follows.
type reopenScenario struct {
	name string
	run  func() error
}

var reopenScenarios = []reopenScenario{
	{"segment renamed, directory not synced", reopenAfterUnsyncedRename},
	{"entry written, not synced", reopenAfterUnsyncedEntry},
	{"snapshot file renamed, directory not synced", reopenAfterUnsyncedSnapshot},
	{"directory created, parents not synced", reopenAfterUnsyncedMkdir},
	{"multi-group log: segment renamed, directory not synced", reopenMultiAfterUnsyncedRename},
}

// TestReopenMakesDurable runs every scenario.
func TestReopenMakesDurable(t *testing.T) {
	for _, sc := range reopenScenarios {
		t.Run(sc.name, func(t *testing.T) {
			if err := sc.run(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// allReopenScenarios runs every scenario and returns the first failure.
func allReopenScenarios() error {
	for _, sc := range reopenScenarios {
		if err := sc.run(); err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
	}
	return nil
}

// afterPowerLoss crashes fs, reopens the log and checks its first and
// last index.
func afterPowerLoss(fs *crashfs.FS, first, last uint64) error {
	fs.Crash(crashfs.DropUnsynced, 0)
	s, err := powerOpen(fs)
	if err != nil {
		return fmt.Errorf("reopen after the power failure: %w", err)
	}
	defer s.Close()
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	if f != first || l != last {
		return fmt.Errorf("after the power failure the log holds %d...%d, want %d...%d", f, l, first, last)
	}
	return nil
}

// failedLife opens a log on fs, saves hs and ents, then makes the next
// Save (fail's) fail by injecting EIO into the first op of its kind, as a
// process that dies after that failure; it returns the log opened again.
func failedLife(fs *crashfs.FS, hs pb.HardState, ents []pb.Entry, op crashfs.Op, fail func(*wal.Storage) error) (*wal.Storage, error) {
	s, err := powerOpen(fs)
	if err != nil {
		return nil, err
	}
	if err := s.Save(hs, ents, pb.Snapshot{}); err != nil {
		return nil, err
	}
	fs.InjectFault(op, 1, syscall.EIO)
	if err := fail(s); !errors.Is(err, syscall.EIO) {
		return nil, fmt.Errorf("the Save with an injected error returned %v", err)
	}
	s.Close()
	return powerOpen(fs)
}

// A rotation renamed the new segment into place; the process died before
// the directory sync. The restarted process writes into that segment.
func reopenAfterUnsyncedRename() error {
	fs := crashfs.New()
	s, err := failedLife(fs, pb.HardState{Term: 1, Vote: 1}, entriesOf(1, 1, 1, 3900), crashfs.OpSyncDir, func(s *wal.Storage) error {
		return s.Save(pb.HardState{}, entriesOf(1, 2, 2, 3900), pb.Snapshot{})
	})
	if err != nil {
		return err
	}
	if err := s.Save(pb.HardState{Term: 1, Vote: 1, Commit: 1}, entriesOf(1, 2, 3, 10), pb.Snapshot{}); err != nil {
		return err
	}
	return afterPowerLoss(fs, 1, 3)
}

// A Save's sync failed. The restarted process reads the entry back and
// builds on it, across a rotation.
func reopenAfterUnsyncedEntry() error {
	fs := crashfs.New()
	s, err := failedLife(fs, pb.HardState{Term: 1, Vote: 1}, entriesOf(1, 1, 2, 10), crashfs.OpSync, func(s *wal.Storage) error {
		return s.Save(pb.HardState{}, entriesOf(1, 3, 3, 10), pb.Snapshot{})
	})
	if err != nil {
		return err
	}
	if last, _ := s.LastIndex(); last != 3 {
		s.Close()
		return fmt.Errorf("reopened with the last index %d, want 3 (the entry is in the page cache)", last)
	}
	if err := s.Save(pb.HardState{}, entriesOf(1, 4, 4, 4000), pb.Snapshot{}); err != nil {
		return err
	}
	return afterPowerLoss(fs, 1, 4)
}

// A Save with a snapshot renamed its file into place; the process died
// before the directory sync. The restarted process appends after the
// snapshot.
func reopenAfterUnsyncedSnapshot() error {
	fs := crashfs.New()
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 10, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1}}}}
	s, err := failedLife(fs, pb.HardState{Term: 1, Vote: 1}, entriesOf(1, 1, 2, 10), crashfs.OpSyncDir, func(s *wal.Storage) error {
		return s.Save(pb.HardState{Term: 2, Commit: 10}, nil, snap)
	})
	if err != nil {
		return err
	}
	if first, _ := s.FirstIndex(); first != 11 {
		s.Close()
		return fmt.Errorf("reopened with the first index %d, want 11 (the snapshot file is in the page cache)", first)
	}
	if err := s.Save(pb.HardState{Term: 2, Commit: 10}, entriesOf(2, 11, 12, 10), pb.Snapshot{}); err != nil {
		return err
	}
	return afterPowerLoss(fs, 11, 12)
}

// The first Open created the directory and died before syncing its
// parents. The next Open creates nothing.
func reopenAfterUnsyncedMkdir() error {
	fs := crashfs.New()
	fs.InjectFault(crashfs.OpSyncDir, 1, syscall.EIO)
	if s, err := powerOpen(fs); !errors.Is(err, syscall.EIO) {
		if err == nil {
			s.Close()
		}
		return fmt.Errorf("the Open with an injected error returned %v", err)
	}
	s, err := powerOpen(fs)
	if err != nil {
		return err
	}
	if err := s.Save(pb.HardState{Term: 1, Vote: 1}, entriesOf(1, 1, 1, 10), pb.Snapshot{}); err != nil {
		return err
	}
	return afterPowerLoss(fs, 1, 1)
}

// reopenAfterUnsyncedRename for a MultiLog.
func reopenMultiAfterUnsyncedRename() error {
	const id = 7
	fs := crashfs.New()
	ml, err := multiPowerOpen(fs)
	if err != nil {
		return err
	}
	save := func(hs pb.HardState, ents []pb.Entry) error {
		return ml.Save([]wal.GroupUpdate{{GroupID: id, HardState: hs, Entries: ents}})
	}
	if err := save(pb.HardState{Term: 1, Vote: 1}, entriesOf(1, 1, 1, 3900)); err != nil {
		return err
	}
	fs.InjectFault(crashfs.OpSyncDir, 1, syscall.EIO)
	if err := save(pb.HardState{}, entriesOf(1, 2, 2, 3900)); !errors.Is(err, syscall.EIO) {
		return fmt.Errorf("the Save with an injected error returned %v", err)
	}
	ml.Close()
	if ml, err = multiPowerOpen(fs); err != nil {
		return err
	}
	if err := save(pb.HardState{Term: 1, Vote: 1, Commit: 1}, entriesOf(1, 2, 3, 10)); err != nil {
		return err
	}
	fs.Crash(crashfs.DropUnsynced, 0)
	if ml, err = multiPowerOpen(fs); err != nil {
		return fmt.Errorf("reopen after the power failure: %w", err)
	}
	defer ml.Close()
	g, err := ml.Group(id)
	if err != nil {
		return err
	}
	if last, _ := g.LastIndex(); last != 3 {
		return fmt.Errorf("after the power failure the group's last index is %d, want 3", last)
	}
	return nil
}

// A directory above the log that the process may pass through but not
// read (a shared parent with mode 0711) cannot be synced; Open goes on
// without it, as before it synced every ancestor, for the log and the
// directory holding it are synced all the same. Any other failure to sync
// an ancestor still fails Open.
func TestOpenSkipsUnreadableAncestors(t *testing.T) {
	fs := crashfs.New()
	s, err := powerOpen(fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(pb.HardState{Term: 1, Vote: 1}, []pb.Entry{{Term: 1, Index: 1}}, pb.Snapshot{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The sync of the log's directory, then of /data (the first ancestor).
	fs.InjectFault(crashfs.OpSyncDir, 2, syscall.EACCES)
	s, err = powerOpen(fs)
	if err != nil {
		t.Fatalf("Open with an unreadable ancestor: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fs.InjectFault(crashfs.OpSyncDir, 2, syscall.EIO)
	if s, err = powerOpen(fs); err == nil {
		s.Close()
		t.Fatal("Open succeeded though syncing an ancestor failed with EIO")
	}
}
