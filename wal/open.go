package wal

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	pb "github.com/raftcore/raft/raftpb"
)

// Open opens the Storage in dir, creating the directory and an empty log
// if there is none, and locks it against other processes (an error
// wrapping ErrLocked if one has it).
//
// Opening replays the log into memory (an index from entry to file and
// offset, with each entry's term): a write that a crash left unfinished at
// the end of the log is cut off; damage anywhere else returns an error
// wrapping ErrCorrupt that names the file and offset.
func Open(dir string, opts Options) (*Storage, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	fs := o.FS
	lock, err := lockDir(fs, dir)
	if err != nil {
		return nil, err
	}
	s := &Storage{dir: dir, fs: fs, opts: o, lock: lock}
	if err := s.recover(); err != nil {
		for _, seg := range s.segs {
			seg.f.Close()
		}
		lock.Close()
		return nil, err
	}
	return s, nil
}

// lockDir creates dir if it does not exist and locks it. The directory
// is made durable once the log in it is (syncOpened).
func lockDir(fs FS, dir string) (io.Closer, error) {
	if _, err := fs.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	lock, err := fs.Lock(filepath.Join(dir, lockName))
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, err
		}
		return nil, fmt.Errorf("wal: lock %s: %w", dir, err)
	}
	return lock, nil
}

// recover loads the newest snapshot and replays the segments.
func (s *Storage) recover() error {
	if err := removeTemporaries(s.fs, s.dir); err != nil {
		return err
	}
	snaps, err := listNumbered(s.fs, s.dir, snapshotExt)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if len(snaps) > 0 {
		newest := snaps[len(snaps)-1]
		if s.snap, err = readSnapshotFile(s.fs, s.dir, newest); err != nil {
			return err
		}
		for _, old := range snaps[:len(snaps)-1] {
			removeFile(s.fs, filepath.Join(s.dir, snapshotName(old)))
		}
	}
	seqs, err := listNumbered(s.fs, s.dir, segmentExt)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if err := checkSegmentList(s.dir, seqs, len(snaps) > 0); err != nil {
		return err
	}
	if len(seqs) == 0 {
		seg, off, err := createSegment(s.fs, s.dir, 1, s.opts.SegmentSize, pb.HardState{})
		if err != nil {
			return err
		}
		s.segs, s.tailOff, s.tailHdr = []*segment{seg}, off, off
		s.cacheFirst = 1
		return syncOpened(s.fs, s.dir, nil, s.opts.NoSync)
	}
	r := replay{snapIndex: s.snap.Metadata.Index}
	for i, seq := range seqs {
		if err := s.replaySegment(&r, seq, i == len(seqs)-1); err != nil {
			return err
		}
	}
	if err := syncOpened(s.fs, s.dir, s.segs[len(s.segs)-1], s.opts.NoSync); err != nil {
		return err
	}
	return s.reconcile(&r)
}

// checkSegmentList checks the segments found in dir (seqs, sorted) make
// one log: numbered without a gap, and present if there are snapshot
// files (snapshots).
func checkSegmentList(dir string, seqs []uint64, snapshots bool) error {
	if len(seqs) == 0 && snapshots {
		return corruptf(dir, 0, "snapshot files but no log segments")
	}
	for i, seq := range seqs {
		if i > 0 && seq != seqs[i-1]+1 {
			return corruptf(filepath.Join(dir, segmentName(seqs[i-1]+1)), 0, "missing segment between %d and %d", seqs[i-1], seq)
		}
	}
	return nil
}

// syncOpened makes durable the log Open has just read, before anything
// is built on it: the last segment (tail; nil when Open just created it,
// synced), the directory and every directory above it that the process
// may read. What Open reads
// is what the file system shows, which may be more than is durable: the
// process before may have died (or failed stop with ErrFailed) between a
// write and its sync, a rename and the directory sync, or creating the
// directory and syncing its parent. Raft treats what Storage serves as
// stable, so without these syncs a power failure could later take away
// data the restarted node had built on and acknowledged, or leave a log
// that does not open. The syncs cost little when there is nothing to
// flush.
//
// Only the last segment can hold unsynced writes: a segment is synced
// before the next one is created (and this sync covers the one a dead
// process wrote last), and a new segment's header before its rename; a
// rotation that failed after its rename leaves the segment before it
// synced. (A log written with NoSync promises nothing.)
// Snapshot files are synced before their rename, so only their names
// need the directory sync. A torn tail cut off by replaySegment is made
// durable here too, so that the next write, torn in turn, cannot land on
// the old garbage. With noSync (Options.NoSync) nothing is synced.
func syncOpened(fs FS, dir string, tail *segment, noSync bool) error {
	if noSync {
		return nil
	}
	if tail != nil {
		if err := syncFile(syncOpenTail, tail.f); err != nil {
			return fmt.Errorf("wal: sync %s: %w", tail.path, err)
		}
		if err := syncDir(fs, syncOpenDir, dir); err != nil {
			return fmt.Errorf("wal: sync %s: %w", dir, err)
		}
	}
	// Each directory's entry in its parent, up to the root: any of them
	// may have been created by an Open that died before syncing it.
	d := filepath.Clean(dir)
	if _, ok := fs.(osFS); ok && !filepath.IsAbs(d) {
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
	}
	for parent := filepath.Dir(d); parent != d; d, parent = parent, filepath.Dir(parent) {
		if err := syncDir(fs, syncOpenParents, parent); err != nil {
			if errors.Is(err, iofs.ErrPermission) {
				// A directory this process may pass through but not
				// read (a shared parent, mode 0711): not one an Open
				// of this process created, so nothing of the log's
				// depends on syncing it.
				continue
			}
			return fmt.Errorf("wal: sync %s: %w", parent, err)
		}
	}
	return nil
}

func removeTemporaries(fs FS, dir string) error {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, tmpExt) {
			if err := removeFile(fs, filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("wal: %w", err)
			}
		}
	}
	return nil
}

// replay rebuilds the live log from the records, in the order they were
// written: an entry at index i replaces the entries at i and after.
type replay struct {
	snapIndex uint64 // of the newest snapshot file
	hs        pb.HardState
	// The live log is start ... start+len(locs)-1. prevKnown says the term
	// of start-1 is prevTerm (after a snapshot record); otherwise the log
	// begins with the first entry replayed, whose predecessors were in
	// segments deleted after a snapshot covered them.
	start     uint64
	prevKnown bool
	prevTerm  uint64
	locs      locIndex
	// buf is reused for every segment: nothing keeps a reference to a
	// segment's data once it is replayed.
	buf []byte
}

// read returns the whole of f, in r.buf.
func (r *replay) read(f File) ([]byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	n := int(size)
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := f.ReadAt(r.buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return r.buf, nil
}

func (r *replay) entry(l loc, index uint64) error {
	last := r.start + uint64(r.locs.len()) - 1
	switch {
	case r.locs.len() == 0 && !r.prevKnown:
		r.start = index
	case r.locs.len() == 0 && index != r.start:
		return fmt.Errorf("entry %d does not follow the snapshot at %d", index, r.start-1)
	case index == last+1:
	case index >= r.start && index <= last:
		r.locs.truncate(int(index - r.start))
	case index < r.start && !r.prevKnown:
		r.start = index
		r.locs.reset()
	default:
		return fmt.Errorf("entry %d does not fit a log of %d...%d", index, r.start, last)
	}
	r.locs.append(l)
	return nil
}

func (r *replay) snapshot(index, term uint64) error {
	if index > r.snapIndex {
		return fmt.Errorf("snapshot %d applied but the newest snapshot file is %d", index, r.snapIndex)
	}
	r.start, r.prevKnown, r.prevTerm = index+1, true, term
	r.locs.reset()
	return nil
}

// replaySegment reads one segment and feeds its records to r. The last
// segment is opened for writing, with a torn tail cut off.
func (s *Storage) replaySegment(r *replay, seq uint64, last bool) error {
	path := filepath.Join(s.dir, segmentName(seq))
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := s.fs.OpenFile(path, flag, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	s.segs = append(s.segs, &segment{seq: seq, path: path, f: f})
	data, err := r.read(f)
	if err != nil {
		return fmt.Errorf("wal: read %s: %w", path, err)
	}
	end, torn, hdr, err := r.scan(data, path, seq, last, nil)
	if err != nil {
		return err
	}
	s.tailHdr = hdr
	if last {
		s.tailOff = int64(end)
		if torn || int64(len(data)) < s.opts.SegmentSize {
			return resetTail(f, path, int64(end), s.opts.SegmentSize)
		}
	}
	return nil
}

// scan checks the segment seq (data, read from path; last if it is the
// last segment) and feeds its records to r, calling each (if not nil)
// with every record once it is checked. It returns the end of the intact
// records, whether a torn write follows them, and the size of the
// segment's header record.
func (r *replay) scan(data []byte, path string, seq uint64, last bool, each func(t recType, p []byte, off int) error) (end int, torn bool, hdr int64, err error) {
	return scanChecked(data, path, last,
		func(t recType, p []byte) (int64, error) { return r.header(t, p, seq) },
		func(t recType, p []byte, off int) error { return r.record(t, p, seq, off) },
		each)
}

// scanChecked scans the segment data (read from path; last if it is the
// last segment), checking its first record with header and every other
// with record, then calling each (if not nil) with every record checked.
// It returns the end of the intact records, whether a torn write follows
// them, and what header returned.
func scanChecked(data []byte, path string, last bool, header func(t recType, p []byte) (int64, error),
	record, each func(t recType, p []byte, off int) error) (end int, torn bool, hdr int64, err error) {
	end, torn, err = scanSegment(data, path, last, func(t recType, p []byte, off int) error {
		var err error
		if off == 0 {
			hdr, err = header(t, p)
		} else {
			err = record(t, p, off)
		}
		if err == nil && each != nil {
			err = each(t, p, off)
		}
		return err
	})
	if err == nil && end == 0 {
		err = corruptf(path, 0, "segment without a header")
	}
	return end, torn, hdr, err
}

// header checks the header record of segment seq and returns its size.
func (r *replay) header(t recType, p []byte, seq uint64) (int64, error) {
	if t == recMultiHeader {
		return 0, fmt.Errorf("a segment of a multi-group log (open it with OpenMulti)")
	}
	if t != recSegmentHeader {
		return 0, fmt.Errorf("segment does not start with a header")
	}
	hseq, hs, err := parseSegmentHeader(p)
	if err == nil && hseq != seq {
		err = fmt.Errorf("header of segment %d in the file of segment %d", hseq, seq)
	}
	r.hs = hs
	return int64(frameSize(len(p))), err
}

func (r *replay) record(t recType, p []byte, seq uint64, off int) error {
	switch t {
	case recEntry:
		var e pb.Entry
		if err := decodeEntry(p, &e); err != nil {
			return err
		}
		return r.entry(loc{term: e.Term, seq: seq, off: uint32(off), size: uint32(len(p))}, e.Index)
	case recHardState:
		return r.hs.Unmarshal(p)
	case recSnapshot:
		index, term, err := parseSnapshotRecord(p)
		if err != nil {
			return err
		}
		return r.snapshot(index, term)
	}
	return fmt.Errorf("unexpected record")
}

// resetTail zeroes the last segment after the end of its intact data (a
// torn write must not be read back later, after new records) and
// preallocates it again. syncOpened makes it durable.
func resetTail(f File, path string, end, size int64) error {
	err := f.Truncate(end)
	if err == nil {
		err = f.Preallocate(size)
	}
	if err != nil {
		return fmt.Errorf("wal: cut the torn tail of %s: %w", path, err)
	}
	return nil
}

// reconcile joins the replayed log with the newest snapshot (see join).
func (s *Storage) reconcile(r *replay) error {
	snapIndex, snapTerm := s.snap.Metadata.Index, s.snap.Metadata.Term
	tail := s.segs[len(s.segs)-1].path
	s.hs = r.hs
	s.base, s.baseTerm = snapIndex, snapTerm
	locs, restart, err := r.finish(s.dir, tail, snapIndex, snapTerm)
	if err != nil {
		return err
	}
	s.locs = locs
	s.cacheFirst = s.lastIndex() + 1
	if restart {
		return s.restartAfterSnapshot(snapIndex, snapTerm)
	}
	return nil
}

// finish joins the replayed log with the newest snapshot (see join) and
// checks the hard state commits no entry past the joined log's end.
func (r *replay) finish(dir, tail string, snapIndex, snapTerm uint64) (locs locIndex, restart bool, err error) {
	locs, restart, err = r.join(dir, tail, snapIndex, snapTerm)
	if err == nil && r.hs.Commit > snapIndex+uint64(locs.len()) {
		err = corruptf(tail, 0, "hard state commits %d past the last index %d", r.hs.Commit, snapIndex+uint64(locs.len()))
	}
	return locs, restart, err
}

// join returns the replayed log joined with the newest snapshot (the
// entries after it): entries the snapshot covers are dropped; entries that
// do not continue it (left from a history the snapshot replaced, when a
// crash came between writing the snapshot file and its record in the log)
// are dropped too. restart says the log must record that it restarts
// after the snapshot (see restartAfterSnapshot). Errors name the last
// segment, tail, or the segment of the entry that does not fit.
func (r *replay) join(dir, tail string, snapIndex, snapTerm uint64) (locs locIndex, restart bool, err error) {
	first, n := r.start, uint64(r.locs.len())
	switch {
	case r.prevKnown && first-1 == snapIndex && r.prevTerm != snapTerm:
		return locs, false, corruptf(tail, 0, "log continues a snapshot at %d of term %d, the snapshot file has term %d", snapIndex, r.prevTerm, snapTerm)
	case n == 0 || first+n-1 < snapIndex:
		// Everything replayed is covered by the snapshot.
	case first <= snapIndex:
		if r.locs.at(int(snapIndex-first)).term == snapTerm {
			r.locs.dropFront(int(snapIndex - first + 1))
			locs = r.locs
		}
	case first == snapIndex+1:
		locs = r.locs
	default:
		return locs, false, corruptf(filepath.Join(dir, segmentName(r.locs.at(0).seq)), int64(r.locs.at(0).off),
			"log starts at %d but the snapshot ends at %d", first, snapIndex)
	}
	restart = snapIndex > 0 && locs.len() == 0 && !(r.prevKnown && first == snapIndex+1)
	return locs, restart, nil
}

// restartAfterSnapshot records in the log that it restarts after the
// snapshot, when the log does not continue it: a crash came after the
// snapshot file of a Save was durable but before its record in the log
// was. Without the record, the entries saved next would not join the log
// replayed before them. It needs no sync of its own: the next Save's sync
// makes it durable with the entries that need it.
func (s *Storage) restartAfterSnapshot(index, term uint64) error {
	rec := appendSnapshotRecord(nil, index, term)
	if err := s.rotateIfFull(len(rec)); err != nil {
		return err
	}
	tail := s.segs[len(s.segs)-1]
	if _, err := tail.f.WriteAt(rec, s.tailOff); err != nil {
		return fmt.Errorf("wal: write %s: %w", tail.path, err)
	}
	s.tailOff += int64(len(rec))
	s.dirty = true
	return nil
}
