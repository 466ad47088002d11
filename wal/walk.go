package wal

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	iofs "io/fs"
	"path/filepath"
	"slices"

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
	// "snapshot-file", each with GroupID set. A damaged snapshot file
	// older than its log's newest, which Open removes unread, is
	// "stale-snapshot-file" (without Snapshot). A file gone by the time
	// Walk read it is "vanished"; "directory-changed" (last, without a
	// file) says the checks across files were not made (see Walk).
	Kind      string
	GroupID   uint64
	Entry     *pb.Entry
	HardState *pb.HardState
	Snapshot  *pb.Snapshot // for "snapshot" records, metadata index and term only
}

// Walk reads every snapshot file and segment in dir, in order, and calls fn
// with each record; it stops at the first error fn returns. It only reads:
// it takes no lock and changes nothing, so it may run beside a Storage or
// MultiLog that has the directory open (it then sees the records written
// so far).
//
// It checks what Open (or OpenMulti, for a multi-group log) checks, with
// the same code: every record, and that the files make one log, with
// segments numbered without a gap, each starting with its header, and
// each log continuing its snapshot. Damage is returned as an error
// wrapping ErrCorrupt, after the records before the damaged one (a log
// that does not continue its snapshot, after all the records).
//
// A file listed in dir but gone when Walk comes to read it (a server
// beside it compacted its log) is reported as a "vanished" record. If
// files vanished, or the checks across files fail while the files in dir
// have changed since Walk listed them, the records read are not one state
// of the log: Walk goes on without those checks and reports a
// "directory-changed" record last.
func Walk(dir string, fn func(Record) error) error {
	w := &walker{fs: osFS{}, dir: dir, fn: fn, groupSnaps: make(map[uint64]pb.SnapshotMetadata)}
	names, err := w.fs.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	w.names = names
	if err := w.snapshots(); err != nil {
		return err
	}
	seqs := numbered(names, segmentExt)
	if err := checkSegmentList(dir, seqs, len(logFiles(names)) > len(seqs)); err != nil {
		return err
	}
	for i, seq := range seqs {
		if err := w.segment(seq, i == len(seqs)-1); err != nil {
			return err
		}
	}
	return w.finish()
}

// walker is the state of a Walk.
type walker struct {
	fs    FS
	dir   string
	fn    func(Record) error
	names []string // in dir when the Walk began
	// snap is the newest snapshot file's metadata; groupSnaps each
	// group's.
	snap       pb.SnapshotMetadata
	groupSnaps map[uint64]pb.SnapshotMetadata
	// The checks Open makes, on the log (single) or on the groups' logs
	// (multi, from the first segment read on, if it has a multi-group
	// header). checkErr is the first error they found; they stop there.
	replaying bool
	multi     bool
	single    replay
	groups    *multiReplay
	tail      string // the last segment read
	checkErr  error
	// vanished says a file listed was gone when read; dirChanged that
	// the files in dir changed while the walk read them.
	vanished   bool
	dirChanged bool
}

// read calls read with the path of the file name and returns ok false,
// having reported it as vanished, if the file is gone.
func (w *walker) read(name string, read func(path string) error) (ok bool, err error) {
	err = read(filepath.Join(w.dir, name))
	if errors.Is(err, iofs.ErrNotExist) {
		w.vanished = true
		return false, w.fn(Record{File: name, Kind: "vanished"})
	}
	return err == nil, err
}

// snapshots reports every snapshot file, of a log or of a MultiLog's
// groups. Damage in a file older than its log's newest is reported as a
// "stale-snapshot-file" record, not as an error: Open reads only the
// newest and removes the others unread.
func (w *walker) snapshots() error {
	// The snapshot files among w.names, and the index of each log's
	// newest.
	type log struct {
		group bool
		id    uint64
	}
	type snapFile struct {
		name  string
		log   log
		index uint64
	}
	var files []snapFile
	newest := make(map[log]uint64)
	for _, n := range w.names {
		index, ok := parseHexName(n, snapshotExt)
		id, gindex, group := parseGroupSnapshotName(n)
		if group {
			index = gindex
		} else if !ok {
			continue
		}
		l := log{group, id}
		files = append(files, snapFile{n, l, index})
		newest[l] = max(newest[l], index)
	}
	for _, f := range files {
		n, id, index, group := f.name, f.log.id, f.index, f.log.group
		var snap pb.Snapshot
		ok, err := w.read(n, func(path string) (err error) {
			snap, err = readSnapshotPath(w.fs, path, index)
			return err
		})
		if errors.Is(err, ErrCorrupt) && index < newest[f.log] {
			if err := w.fn(Record{File: n, Kind: "stale-snapshot-file", GroupID: id}); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !ok {
			continue // gone since the listing (reported by read)
		}
		// Names sort by index (by group, then index): the last read is
		// the newest.
		if group {
			w.groupSnaps[id] = snap.Metadata
		} else {
			w.snap = snap.Metadata
		}
		if err := w.fn(Record{File: n, Kind: recSnapshotFile.String(), GroupID: id, Snapshot: &snap}); err != nil {
			return err
		}
	}
	return nil
}

// segment reports the records of segment seq, the last one if last.
func (w *walker) segment(seq uint64, last bool) error {
	name := segmentName(seq)
	var data []byte
	ok, err := w.read(name, func(path string) (err error) {
		data, err = readFile(w.fs, path)
		if err != nil && !errors.Is(err, iofs.ErrNotExist) {
			err = fmt.Errorf("wal: %w", err)
		}
		return err
	})
	if err != nil || !ok {
		return err
	}
	path := filepath.Join(w.dir, name)
	// A record the checks refuse ends the walk, after the records
	// before it, unless the directory changed under the walk.
	stop, failed := len(data), w.check(data, path, seq, last)
	if failed != nil {
		changed, err := w.changed()
		if err != nil || changed {
			failed = err
		}
		var ce *CorruptError
		if errors.As(failed, &ce) {
			stop = int(ce.Offset)
		}
	}
	end, torn, err := scanSegment(data, path, last, func(t recType, p []byte, off int) error {
		if off >= stop {
			return errStopWalk
		}
		rec, err := decodeRecord(t, p)
		if err != nil {
			return err
		}
		rec.File, rec.Offset = name, int64(off)
		return w.fn(rec)
	})
	switch {
	case failed != nil:
		return failed
	case err != nil:
		return err
	case torn:
		return w.fn(Record{File: name, Offset: int64(end), Kind: "torn-tail"})
	}
	return nil
}

// errStopWalk stops the scan of a segment at a record the checks refuse.
var errStopWalk = errors.New("wal: stop")

// check feeds segment seq to the checks Open or OpenMulti makes, unless
// they have failed already, and returns their error if they fail now. The
// first segment read says which checks.
func (w *walker) check(data []byte, path string, seq uint64, last bool) error {
	if !w.replaying {
		w.replaying = true
		t, _, _, st := readFrame(data, 0)
		w.multi = st == frameOK && t == recMultiHeader
		if w.multi {
			w.groups = newMultiReplay(w.names)
		} else {
			w.single = replay{snapIndex: w.snap.Index}
		}
	}
	w.tail = path
	if w.checkErr != nil {
		return nil
	}
	if w.multi {
		_, _, _, w.checkErr = w.groups.scan(data, path, seq, last, nil)
	} else {
		_, _, _, w.checkErr = w.single.scan(data, path, seq, last, nil)
	}
	return w.checkErr
}

// changed reports whether the segments and snapshot files in the
// directory are not the ones the walk began with (or files vanished).
func (w *walker) changed() (bool, error) {
	if w.vanished || w.dirChanged {
		return true, nil
	}
	now, err := w.fs.ReadDir(w.dir)
	if err != nil {
		return false, fmt.Errorf("wal: %w", err)
	}
	w.dirChanged = !slices.Equal(logFiles(now), logFiles(w.names))
	return w.dirChanged, nil
}

// finish makes the last of Open's checks, joining each log with its
// snapshot, and returns the first error the checks found, unless the
// directory changed while Walk read it.
func (w *walker) finish() error {
	if w.replaying && w.checkErr == nil && !w.vanished {
		if w.checkErr = w.join(); w.checkErr != nil {
			changed, err := w.changed()
			if err != nil || !changed {
				return cmp.Or(err, w.checkErr)
			}
		}
	}
	if w.vanished || w.dirChanged {
		return w.fn(Record{Kind: "directory-changed"})
	}
	return nil
}

// join joins each log replayed with its snapshot, as Open does.
func (w *walker) join() error {
	if !w.multi {
		_, _, err := w.single.finish(w.dir, w.tail, w.snap.Index, w.snap.Term)
		return err
	}
	ids, err := w.groups.live()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, _, err := w.groups.finish(w.dir, w.tail, id, w.groupSnaps[id]); err != nil {
			return err
		}
	}
	return nil
}

// logFiles returns the segments and snapshot files among names, sorted.
func logFiles(names []string) []string {
	var files []string
	for _, n := range names {
		_, seg := parseHexName(n, segmentExt)
		_, snap := parseHexName(n, snapshotExt)
		_, _, group := parseGroupSnapshotName(n)
		if seg || snap || group {
			files = append(files, n)
		}
	}
	slices.Sort(files)
	return files
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
