package wal

import (
	"fmt"
	"os"
	"path/filepath"

	pb "github.com/raftcore/raft/raftpb"
)

// Snapshots live in their own files, named after their index, one record
// each. Only the newest is kept.

func snapshotName(index uint64) string { return fmt.Sprintf("%016x%s", index, snapshotExt) }

// writeSnapshotFile stores snap durably: written to a temporary file,
// synced, renamed into place, and the directory synced.
func writeSnapshotFile(fs FS, dir string, snap pb.Snapshot) error {
	return writeSnapshotFileNamed(fs, dir, snapshotName(snap.Metadata.Index), snap)
}

// writeSnapshotFileNamed stores snap durably in dir under name.
func writeSnapshotFileNamed(fs FS, dir, name string, snap pb.Snapshot) error {
	b, err := snap.Marshal()
	if err != nil {
		return fmt.Errorf("wal: marshal snapshot: %w", err)
	}
	rec := appendRecord(make([]byte, 0, frameSize(len(b))), recSnapshotFile, b)
	path := filepath.Join(dir, name)
	tmp := path + tmpExt
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wal: write snapshot: %w", err)
	}
	_, err = f.Write(rec)
	if err == nil {
		err = syncFile(syncSnapFile, f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(fs, syncSnapDir, dir)
	}
	if err != nil {
		fs.Remove(tmp)
		return fmt.Errorf("wal: write snapshot %s: %w", path, err)
	}
	return nil
}

// readSnapshotFile reads and checks the snapshot file for index.
func readSnapshotFile(fs FS, dir string, index uint64) (pb.Snapshot, error) {
	return readSnapshotPath(fs, filepath.Join(dir, snapshotName(index)), index)
}

// readSnapshotPath reads and checks the snapshot file path, which holds
// the snapshot at index.
func readSnapshotPath(fs FS, path string, index uint64) (pb.Snapshot, error) {
	data, err := readFile(fs, path)
	if err != nil {
		return pb.Snapshot{}, fmt.Errorf("wal: read snapshot: %w", err)
	}
	// The file is written whole and synced before its rename: one that
	// lost even the padding of its record (readFrame accepts that, as
	// the tail of a segment may) is damage.
	t, payload, next, st := readFrame(data, 0)
	if st != frameOK || t != recSnapshotFile || next > len(data) || !allZero(data[next:]) {
		return pb.Snapshot{}, corruptf(path, 0, "not a single intact snapshot record")
	}
	var snap pb.Snapshot
	if err := snap.Unmarshal(payload); err != nil {
		return pb.Snapshot{}, corruptf(path, headerSize+1, "snapshot: %v", err)
	}
	if snap.Metadata.Index != index {
		return pb.Snapshot{}, corruptf(path, 0, "snapshot at index %d in a file named for index %d", snap.Metadata.Index, index)
	}
	return snap, nil
}
