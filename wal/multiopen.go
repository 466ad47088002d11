package wal

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	pb "github.com/raftcore/raft/raftpb"
)

// OpenMulti opens the MultiLog in dir, creating the directory and an
// empty log if there is none, and locks it against other processes (an
// error wrapping ErrLocked if one has it). Options mean what they mean
// for Open; CacheSize is shared by all the groups.
//
// Opening replays the log into every group's storage (Groups lists them;
// Removed the groups removed, whose records are ignored): a write that a
// crash left unfinished at the end of the log is cut off; damage anywhere
// else returns an error wrapping ErrCorrupt that names the file and
// offset.
func OpenMulti(dir string, opts Options) (*MultiLog, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	lock, err := lockDir(o.FS, dir)
	if err != nil {
		return nil, err
	}
	ml := &MultiLog{
		dir: dir, fs: o.FS, opts: o, lock: lock,
		pins:    make(map[uint64]int),
		groups:  make(map[uint64]*GroupStorage),
		removed: make(map[uint64]struct{}),
	}
	if err := ml.recover(); err != nil {
		for _, seg := range ml.segs {
			seg.f.Close()
		}
		lock.Close()
		return nil, err
	}
	return ml, nil
}

// multiReplay is the state of a MultiLog's replay: one replay per group.
type multiReplay struct {
	groups map[uint64]*replay
	// newest is each group's newest snapshot file; older lists the
	// others, to remove.
	newest map[uint64]uint64
	older  []string
	// broken holds, for each group whose records do not fit together
	// (an entry that does not follow, a snapshot without its file), the
	// first such error: it is returned at the end of the replay unless
	// the group turns out removed (a removed group's snapshot file is
	// deleted once the removal is durable).
	broken map[uint64]error
	// removed holds the groups removed so far.
	removed map[uint64]struct{}
	reader  replay // its buffer reads the segments
}

// recover loads the groups' newest snapshots and replays the segments.
func (ml *MultiLog) recover() error {
	if err := removeTemporaries(ml.fs, ml.dir); err != nil {
		return err
	}
	names, err := ml.fs.ReadDir(ml.dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	r := newMultiReplay(names)
	ml.removed = r.removed
	seqs := numbered(names, segmentExt)
	if err := checkSegmentList(ml.dir, seqs, len(r.newest) > 0); err != nil {
		return err
	}
	if len(seqs) == 0 {
		hdr := ml.checkpoint(1)
		seg, off, err := createSegmentWith(ml.fs, ml.dir, 1, ml.opts.SegmentSize+int64(len(hdr)), hdr)
		if err != nil {
			return err
		}
		ml.segs, ml.tailOff, ml.tailHdr = []*segment{seg}, off, off
		return syncOpened(ml.fs, ml.dir, nil, ml.opts.NoSync)
	}
	for i, seq := range seqs {
		if err := ml.replaySegment(r, seq, i == len(seqs)-1); err != nil {
			return err
		}
	}
	if err := syncOpened(ml.fs, ml.dir, ml.segs[len(ml.segs)-1], ml.opts.NoSync); err != nil {
		return err
	}
	if err := ml.rebuild(r); err != nil {
		return err
	}
	for _, name := range r.older {
		removeFile(ml.fs, filepath.Join(ml.dir, name))
	}
	for id, index := range r.newest {
		if _, ok := ml.removed[id]; ok {
			removeFile(ml.fs, filepath.Join(ml.dir, groupSnapshotName(id, index)))
		}
	}
	return nil
}

// newMultiReplay starts the replay of the log whose directory holds the
// files names: it finds each group's newest snapshot file.
func newMultiReplay(names []string) *multiReplay {
	r := &multiReplay{
		groups: make(map[uint64]*replay), newest: make(map[uint64]uint64),
		broken: make(map[uint64]error), removed: make(map[uint64]struct{}),
	}
	for _, n := range names {
		id, index, ok := parseGroupSnapshotName(n)
		if !ok {
			continue
		}
		if old, ok := r.newest[id]; ok {
			if old > index {
				r.older = append(r.older, n)
				continue
			}
			r.older = append(r.older, groupSnapshotName(id, old))
		}
		r.newest[id] = index
	}
	return r
}

// replaySegment reads one segment and feeds its records to the groups'
// replays. The last segment is opened for writing, with a torn tail cut
// off.
func (ml *MultiLog) replaySegment(r *multiReplay, seq uint64, last bool) error {
	path := filepath.Join(ml.dir, segmentName(seq))
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := ml.fs.OpenFile(path, flag, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	ml.segs = append(ml.segs, &segment{seq: seq, path: path, f: f})
	data, err := r.reader.read(f)
	if err != nil {
		return fmt.Errorf("wal: read %s: %w", path, err)
	}
	end, torn, hdr, err := r.scan(data, path, seq, last, nil)
	if err != nil {
		return err
	}
	ml.tailHdr = hdr
	if last {
		ml.tailOff = int64(end)
		if size := ml.tailHdr + ml.opts.SegmentSize; torn || int64(len(data)) < size {
			return resetTail(f, path, int64(end), size)
		}
	}
	return nil
}

// scan checks the segment seq (data, read from path; last if it is the
// last segment) and feeds its records to the groups' replays, calling
// each (if not nil) with every record once it is checked. It returns the
// end of the intact records, whether a torn write follows them, and the
// size of the segment's header record with the checkpoint after it.
func (r *multiReplay) scan(data []byte, path string, seq uint64, last bool, each func(t recType, p []byte, off int) error) (end int, torn bool, hdr int64, err error) {
	return scanChecked(data, path, last,
		func(t recType, p []byte) (int64, error) { return multiHeader(t, p, seq, len(data)) },
		func(t recType, p []byte, off int) error { return r.record(t, p, seq, off, path) },
		each)
}

// multiHeader checks the header record of segment seq, of size bytes,
// and returns the size of the header and the checkpoint after it.
func multiHeader(t recType, p []byte, seq uint64, size int) (int64, error) {
	if t != recMultiHeader {
		return 0, fmt.Errorf("segment does not start with a multi-group header")
	}
	if len(p) != 16 || binary.LittleEndian.Uint64(p) != seq {
		return 0, fmt.Errorf("not the header of segment %d", seq)
	}
	ckpt := binary.LittleEndian.Uint64(p[8:])
	if ckpt > uint64(size) {
		return 0, fmt.Errorf("checkpoint of %d bytes in a segment of %d", ckpt, size)
	}
	return int64(frameSize(len(p))) + int64(ckpt), nil
}

// record feeds one record to its group's replay. Records of a removed
// group are ignored.
func (r *multiReplay) record(t recType, p []byte, seq uint64, off int, path string) error {
	switch t {
	case recGroupEntry, recGroupHardState, recGroupSnapshot, recGroupRemoved:
	default:
		return fmt.Errorf("unexpected record")
	}
	id, body, err := splitGroup(p)
	if err != nil {
		return err
	}
	if _, ok := r.removed[id]; ok {
		return nil
	}
	if t == recGroupRemoved {
		if len(body) != 0 {
			return fmt.Errorf("removal of group %d with %d more bytes", id, len(body))
		}
		r.removed[id] = struct{}{}
		delete(r.groups, id)
		delete(r.broken, id)
		return nil
	}
	if r.broken[id] != nil {
		return nil
	}
	g := r.groups[id]
	if g == nil {
		g = &replay{snapIndex: r.newest[id]}
		r.groups[id] = g
	}
	switch t {
	case recGroupEntry:
		var e pb.Entry
		if err := decodeEntry(body, &e); err != nil {
			return err
		}
		err = g.entry(loc{term: e.Term, seq: seq, off: uint32(off), size: uint32(len(p))}, e.Index)
	case recGroupHardState:
		var hs pb.HardState
		if err := hs.Unmarshal(body); err != nil {
			return err
		}
		g.hs = hs
		return nil
	case recGroupSnapshot:
		index, term, perr := parseSnapshotRecord(body)
		if perr != nil {
			return perr
		}
		err = g.snapshot(index, term)
	}
	if err != nil {
		r.broken[id] = corruptf(path, int64(off), "%s record: group %d: %v", t, id, err)
	}
	return nil
}

// live returns the groups not removed (sorted), or the first error of a
// group whose records do not fit together.
func (r *multiReplay) live() ([]uint64, error) {
	for _, err := range r.broken {
		return nil, err
	}
	ids := make([]uint64, 0, len(r.groups)+len(r.newest))
	for id := range r.groups {
		ids = append(ids, id)
	}
	for id := range r.newest {
		if _, ok := r.groups[id]; !ok {
			if _, gone := r.removed[id]; !gone {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// finish joins group id's replayed log with its newest snapshot, whose
// metadata is snap (see replay.finish); a group without records gets an
// empty replay.
func (r *multiReplay) finish(dir, tail string, id uint64, snap pb.SnapshotMetadata) (locIndex, bool, error) {
	rg := r.groups[id]
	if rg == nil {
		rg = &replay{snapIndex: snap.Index}
		r.groups[id] = rg
	}
	locs, restart, err := rg.finish(dir, tail, snap.Index, snap.Term)
	if err != nil {
		return locs, false, fmt.Errorf("group %d: %w", id, err)
	}
	return locs, restart, nil
}

// rebuild joins each group's replayed log with its newest snapshot (as
// Open does for one log) and records, in one unsynced write, that the
// logs of the groups that need it restart after their snapshot.
func (ml *MultiLog) rebuild(r *multiReplay) error {
	tail := ml.segs[len(ml.segs)-1].path
	ids, err := r.live()
	if err != nil {
		return err
	}
	var restart []byte
	for _, id := range ids {
		g := &GroupStorage{ml: ml, id: id}
		if index, ok := r.newest[id]; ok {
			snap, err := readSnapshotPath(ml.fs, filepath.Join(ml.dir, groupSnapshotName(id, index)), index)
			if err != nil {
				return err
			}
			g.snap = snap
		}
		locs, again, err := r.finish(ml.dir, tail, id, g.snap.Metadata)
		if err != nil {
			return err
		}
		snapIndex, snapTerm := g.snap.Metadata.Index, g.snap.Metadata.Term
		g.hs, g.base, g.baseTerm, g.locs = r.groups[id].hs, snapIndex, snapTerm, locs
		if again {
			restart = appendGroupSnapshot(restart, id, snapIndex, snapTerm)
		}
		if locs.len() > 0 {
			ml.setPin(g, locs.at(0).seq)
		}
		ml.groups[id] = g
	}
	if len(restart) > 0 {
		// No sync of its own: the next synced Save makes it durable
		// with the entries that need it.
		if _, _, err := ml.write(restart, false); err != nil {
			return err
		}
	}
	return nil
}
