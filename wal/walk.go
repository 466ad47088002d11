package wal

import (
	"encoding/binary"
	"fmt"
	"path/filepath"

	pb "github.com/raftcore/raft/raftpb"
)

// Record is one record of a log directory, as Walk reports it. Exactly one
// of Entry, HardState and Snapshot is set, except for a torn tail.
type Record struct {
	File   string // base name of the file
	Offset int64  // of the record in the file
	// Kind is "segment-header", "entry", "hard-state", "snapshot" (a
	// snapshot applied to the log), "snapshot-file" (the stored
	// snapshot), or "torn-tail" (an unfinished write at the end of the last
	// segment, which Open will cut off). A MultiLog's records are
	// "multi-segment-header", "group-entry", "group-hard-state",
	// "group-snapshot" and "group-removed", and its snapshot files
	// "snapshot-file", each with GroupID set.
	Kind      string
	GroupID   uint64
	Entry     *pb.Entry
	HardState *pb.HardState
	Snapshot  *pb.Snapshot // for "snapshot" records, metadata index and term only
}

// Walk reads every snapshot file and segment in dir, in order, and calls fn
// with each record; it stops at the first error fn returns. It only reads:
// it takes no lock and changes nothing, so it may run beside a Storage
// that has the directory open (it then sees the records written so far).
// Damage is returned as an error wrapping ErrCorrupt, after the records
// before it.
func Walk(dir string, fn func(Record) error) error {
	fs := osFS{}
	snaps, err := listNumbered(fs, dir, snapshotExt)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	for _, idx := range snaps {
		snap, err := readSnapshotFile(fs, dir, idx)
		if err != nil {
			return err
		}
		if err := fn(Record{File: snapshotName(idx), Kind: recSnapshotFile.String(), Snapshot: &snap}); err != nil {
			return err
		}
	}
	if err := walkGroupSnapshots(fs, dir, fn); err != nil {
		return err
	}
	seqs, err := listNumbered(fs, dir, segmentExt)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	for i, seq := range seqs {
		name := segmentName(seq)
		data, err := readFile(fs, filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		end, torn, err := scanSegment(data, filepath.Join(dir, name), i == len(seqs)-1, func(t recType, p []byte, off int) error {
			rec, err := decodeRecord(t, p)
			if err != nil {
				return err
			}
			rec.File, rec.Offset = name, int64(off)
			return fn(rec)
		})
		if err != nil {
			return err
		}
		if torn {
			if err := fn(Record{File: name, Offset: int64(end), Kind: "torn-tail"}); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkGroupSnapshots calls fn with each snapshot file of a MultiLog's
// groups.
func walkGroupSnapshots(fs FS, dir string, fn func(Record) error) error {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	for _, n := range names {
		id, index, ok := parseGroupSnapshotName(n)
		if !ok {
			continue
		}
		snap, err := readSnapshotPath(fs, filepath.Join(dir, n), index)
		if err != nil {
			return err
		}
		if err := fn(Record{File: n, Kind: recSnapshotFile.String(), GroupID: id, Snapshot: &snap}); err != nil {
			return err
		}
	}
	return nil
}

func decodeRecord(t recType, p []byte) (Record, error) {
	rec := Record{Kind: t.String()}
	switch t {
	case recMultiHeader:
		if len(p) != 16 {
			return rec, fmt.Errorf("multi-group segment header of %d bytes", len(p))
		}
		return rec, nil
	case recGroupEntry, recGroupHardState, recGroupSnapshot, recGroupRemoved:
		id, body, err := splitGroup(p)
		if err != nil {
			return rec, err
		}
		if t == recGroupRemoved {
			rec.GroupID = id
			return rec, nil
		}
		// The rest is the record of one group's log.
		rec, err = decodeRecord(map[recType]recType{recGroupEntry: recEntry, recGroupHardState: recHardState, recGroupSnapshot: recSnapshot}[t], body)
		rec.Kind, rec.GroupID = t.String(), id
		return rec, err
	case recSegmentHeader:
		_, hs, err := parseSegmentHeader(p)
		rec.HardState = &hs
		return rec, err
	case recEntry:
		var e pb.Entry
		if err := decodeEntry(p, &e); err != nil {
			return rec, err
		}
		rec.Entry = &e
	case recHardState:
		var hs pb.HardState
		if err := hs.Unmarshal(p); err != nil {
			return rec, err
		}
		rec.HardState = &hs
	case recSnapshot:
		index, term, err := parseSnapshotRecord(p)
		rec.Snapshot = &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: index, Term: term}}
		return rec, err
	default:
		return rec, fmt.Errorf("unexpected record")
	}
	return rec, nil
}

// parseSnapshotRecord decodes the payload of a recSnapshot record.
func parseSnapshotRecord(p []byte) (index, term uint64, err error) {
	if len(p) != 16 {
		return 0, 0, fmt.Errorf("snapshot record of %d bytes", len(p))
	}
	return binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:]), nil
}
