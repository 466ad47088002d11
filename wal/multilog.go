package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// ErrGroupRemoved is wrapped by the errors a MultiLog returns for a group
// that was removed (RemoveGroup): its storage serves nothing more, and the
// group cannot be saved to again.
var ErrGroupRemoved = errors.New("wal: group removed")

// MultiLog is one write-ahead log shared by many Raft groups, for a host
// of many groups on one node (package multiraft): every group's records
// go to the same segment files, so one write and one sync make a whole
// host Ready durable. Each group reads its log through its own
// GroupStorage (a raft.Storage); Save writes the work of many groups at
// once; snapshots and compaction are per group.
//
// All methods are safe for concurrent use. Writers (Save, RemoveGroup and
// the groups' CreateSnapshot and Compact) are serialized; reads go on
// while a Save writes and syncs, and see each Save whole once it
// returned.
type MultiLog struct {
	dir  string
	fs   FS
	opts Options
	lock io.Closer

	// wmu serializes writers. The fields below up to mu are the writer's
	// own, under wmu.
	wmu     sync.Mutex
	tailOff int64 // end of the written data in the last segment
	tailHdr int64 // end of the last segment's header and checkpoint records
	dirty   bool  // the last segment has writes not yet synced
	buf     []byte
	offs    []uint32 // reused: record offsets of a Save's entries
	plan    []saved  // reused: the checked updates of a Save
	// cacheQ[cacheHead:] are the Saves whose entries are in the groups'
	// caches, oldest first; cacheBytes their size (see multicache.go).
	cacheQ     []cacheRef
	cacheHead  int
	cacheBytes int
	saveGen    uint64 // counts Saves
	failed     error
	// pins counts, for each segment, the groups whose oldest needed
	// record is in it: a segment is deleted once neither it nor an older
	// one is pinned. Invariant: pins[seq] == number of live groups g with
	// g.pin == seq.
	pins map[uint64]int

	// mu guards the state readers see, including every group's. Writers
	// hold wmu too when they change it.
	mu      sync.RWMutex
	closed  bool
	segs    []*segment // oldest first, consecutive seqs; the last is written to
	groups  map[uint64]*GroupStorage
	removed map[uint64]struct{}
}

// GroupUpdate is one group's part of a Save: what its raft.Ready asks to
// persist (as in Storage.Save).
type GroupUpdate struct {
	GroupID   uint64
	HardState pb.HardState
	Entries   []pb.Entry
	Snapshot  pb.Snapshot
}

// Dir returns the directory the log keeps its files in.
func (ml *MultiLog) Dir() string { return ml.dir }

// Group returns the storage of group id, creating an empty one for a group
// the log does not hold yet (it becomes durable with the group's first
// Save). It returns an error wrapping ErrGroupRemoved for a removed group,
// ErrClosed after Close. Calls for the same id return the same storage.
func (ml *MultiLog) Group(id uint64) (*GroupStorage, error) {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	if ml.closed {
		return nil, ErrClosed
	}
	return ml.groupLocked(id)
}

// groupLocked returns group id, creating it. Holds mu.
func (ml *MultiLog) groupLocked(id uint64) (*GroupStorage, error) {
	if id == 0 {
		return nil, errors.New("wal: group ID must not be zero")
	}
	if _, ok := ml.removed[id]; ok {
		return nil, fmt.Errorf("%w: %d", ErrGroupRemoved, id)
	}
	g := ml.groups[id]
	if g == nil {
		g = &GroupStorage{ml: ml, id: id}
		ml.groups[id] = g
	}
	return g, nil
}

// Groups returns the IDs of the groups the log holds state for (a hard
// state, entries or a snapshot), sorted: after OpenMulti, the groups to
// restart.
func (ml *MultiLog) Groups() []uint64 {
	ml.mu.RLock()
	defer ml.mu.RUnlock()
	ids := make([]uint64, 0, len(ml.groups))
	for id, g := range ml.groups {
		if !g.empty() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Removed returns the IDs of the removed groups, sorted: the host's
// tombstones (multiraft.Config.Tombstones), kept by the log for good.
func (ml *MultiLog) Removed() []uint64 {
	ml.mu.RLock()
	defer ml.mu.RUnlock()
	ids := make([]uint64, 0, len(ml.removed))
	for id := range ml.removed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Segments returns how many segment files the log holds, the one being
// written to included, 0 after Close.
func (ml *MultiLog) Segments() int {
	ml.mu.RLock()
	defer ml.mu.RUnlock()
	if ml.closed {
		return 0
	}
	return len(ml.segs)
}

// OldestSegmentHolders returns the IDs of the groups that keep the oldest
// segment file from being deleted, sorted: each needs a record in it after
// a restart (an entry after its snapshot or its compaction point,
// whichever is lower). Once each has snapshotted and compacted past its
// entries there (CreateSnapshot, then Compact), the segment is deleted,
// with the segments after it that no group needs.
//
// A group that writes little keeps the segment of its last entries for as
// long as it does not compact, and with it every later segment, however
// often the other groups compact: a host that snapshots a group every so
// many entries should also snapshot these groups once the log holds more
// than a few segments (Segments). It returns nil while the log has one
// segment (the last one is never deleted), and after Close.
func (ml *MultiLog) OldestSegmentHolders() []uint64 {
	// The pins are the writers': wmu, not mu, guards them.
	ml.wmu.Lock()
	defer ml.wmu.Unlock()
	ml.mu.RLock()
	defer ml.mu.RUnlock()
	if ml.closed || len(ml.segs) < 2 {
		return nil
	}
	oldest := ml.segs[0].seq
	ids := make([]uint64, 0, ml.pins[oldest])
	for id, g := range ml.groups {
		if g.pin == oldest {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// RemoveGroup removes group id durably: a record of the removal is
// written and synced, the group's storage serves nothing more (errors
// wrapping ErrGroupRemoved), its snapshot file is deleted and its records
// no longer keep segments. The log remembers the removal for good
// (Removed). Removing a group the log never held records it too.
func (ml *MultiLog) RemoveGroup(id uint64) error {
	ml.wmu.Lock()
	defer ml.wmu.Unlock()
	if err := ml.writable(); err != nil {
		return err
	}
	ml.mu.RLock()
	_, gone := ml.removed[id]
	g := ml.groups[id]
	ml.mu.RUnlock()
	if gone {
		return fmt.Errorf("%w: %d", ErrGroupRemoved, id)
	}
	if id == 0 {
		return errors.New("wal: group ID must not be zero")
	}
	var p [8]byte
	binary.LittleEndian.PutUint64(p[:], id)
	if _, _, err := ml.write(appendRecord(ml.buf[:0], recGroupRemoved, p[:]), true); err != nil {
		return err
	}
	ml.mu.Lock()
	ml.removed[id] = struct{}{}
	delete(ml.groups, id)
	if g != nil {
		g.removed = true
		g.cache = nil
	}
	ml.mu.Unlock()
	if g != nil {
		ml.setPin(g, 0)
		if i := g.snap.Metadata.Index; i > 0 {
			removeFile(ml.fs, filepath.Join(ml.dir, groupSnapshotName(id, i)))
		}
	}
	return ml.dropSegments()
}

// write writes the records in buf at the end of the log, in one write,
// starting a new segment first if they do not fit the last one, and syncs
// if sync is set. It returns the segment and offset written at.
func (ml *MultiLog) write(buf []byte, sync bool) (*segment, int64, error) {
	if err := ml.rotateIfFull(len(buf)); err != nil {
		return nil, 0, err
	}
	tail := ml.segs[len(ml.segs)-1]
	if ml.tailOff+int64(len(buf)) > 1<<32-1 {
		return nil, 0, fmt.Errorf("wal: a write of %d bytes does not fit a segment", len(buf))
	}
	if _, err := tail.f.WriteAt(buf, ml.tailOff); err != nil {
		return nil, 0, ml.fail(fmt.Errorf("wal: write %s: %w", tail.path, err))
	}
	off := ml.tailOff
	ml.tailOff += int64(len(buf))
	ml.dirty = true
	if sync {
		if err := ml.sync(syncSave); err != nil {
			return nil, 0, err
		}
	}
	return tail, off, nil
}

// rotateIfFull starts a new segment when n more bytes do not fit the last
// one (unless it holds nothing but its header records). The checkpoint at
// the start of a segment does not count: a segment holds SegmentSize
// bytes of Saves however many groups the checkpoint lists.
func (ml *MultiLog) rotateIfFull(n int) error {
	tail := ml.segs[len(ml.segs)-1]
	if ml.tailOff-ml.tailHdr+int64(n) <= ml.opts.SegmentSize || ml.tailOff == ml.tailHdr {
		return nil
	}
	if ml.dirty {
		if err := ml.sync(syncRotate); err != nil {
			return err
		}
	}
	hdr := ml.checkpoint(tail.seq + 1)
	seg, off, err := createSegmentWith(ml.fs, ml.dir, tail.seq+1, ml.opts.SegmentSize+int64(len(hdr)), hdr)
	if err != nil {
		return ml.fail(err)
	}
	ml.mu.Lock()
	ml.segs = append(ml.segs, seg)
	ml.mu.Unlock()
	ml.tailOff, ml.tailHdr, ml.dirty = off, off, false
	return nil
}

// checkpoint returns the records a new segment seq starts with: its
// header (the sequence number and the bytes of checkpoint records after
// it), every group's hard state and every removed group, so that older
// segments can be deleted without losing either. Holds wmu (Group may
// add groups meanwhile: the map is read under mu).
func (ml *MultiLog) checkpoint(seq uint64) []byte {
	ml.mu.RLock()
	defer ml.mu.RUnlock()
	var p [8]byte
	var hp [16]byte
	binary.LittleEndian.PutUint64(hp[:], seq)
	buf := appendRecord(nil, recMultiHeader, hp[:])
	hdrEnd := len(buf)
	ids := make([]uint64, 0, len(ml.groups))
	for id, g := range ml.groups {
		if !raft.IsEmptyHardState(g.hs) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		buf = appendGroupHardState(buf, id, ml.groups[id].hs)
	}
	ids = ids[:0]
	for id := range ml.removed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		binary.LittleEndian.PutUint64(p[:], id)
		buf = appendRecord(buf, recGroupRemoved, p[:])
	}
	// The header is sealed again with the checkpoint's length.
	binary.LittleEndian.PutUint64(buf[headerSize+1+8:], uint64(len(buf)-hdrEnd))
	return seal(buf, 0, len(hp))
}

func (ml *MultiLog) sync(site syncSite) error {
	if !ml.opts.NoSync {
		tail := ml.segs[len(ml.segs)-1]
		if err := syncData(site, tail.f); err != nil {
			return ml.fail(fmt.Errorf("wal: sync %s: %w", tail.path, err))
		}
	}
	ml.dirty = false
	return nil
}

// fail stops the log after a write, sync, create, rename or removal
// failed, as Storage does. It returns err.
func (ml *MultiLog) fail(err error) error {
	ml.failed = err
	return err
}

func (ml *MultiLog) writable() error {
	if ml.closed {
		return ErrClosed
	}
	if ml.failed != nil {
		return fmt.Errorf("%w: %w", ErrFailed, ml.failed)
	}
	return nil
}

// setPin moves g's pin to segment seq (0: none). Holds wmu.
func (ml *MultiLog) setPin(g *GroupStorage, seq uint64) {
	if g.pin == seq {
		return
	}
	if g.pin != 0 {
		if ml.pins[g.pin]--; ml.pins[g.pin] == 0 {
			delete(ml.pins, g.pin)
		}
	}
	if seq != 0 {
		ml.pins[seq]++
	}
	g.pin = seq
}

// dropSegments deletes the oldest segments while no group needs a record
// in them: no group is pinned to them, every group's hard state and every
// removal is in the checkpoint of a later segment. The last segment
// stays. Holds wmu.
func (ml *MultiLog) dropSegments() error {
	var gone []*segment
	ml.mu.Lock()
	for len(ml.segs) > 1 && ml.pins[ml.segs[0].seq] == 0 {
		gone = append(gone, ml.segs[0])
		ml.segs = ml.segs[1:]
	}
	ml.mu.Unlock()
	if len(gone) == 0 {
		return nil
	}
	for _, seg := range gone {
		seg.f.Close()
		if err := removeFile(ml.fs, seg.path); err != nil {
			return ml.fail(fmt.Errorf("wal: remove %s: %w", seg.path, err))
		}
	}
	if err := syncDir(ml.fs, syncCompactDir, ml.dir); err != nil {
		return ml.fail(fmt.Errorf("wal: sync %s: %w", ml.dir, err))
	}
	return nil
}

// segment returns the open segment seq. Holds mu or wmu.
func (ml *MultiLog) segment(seq uint64) *segment { return ml.segs[seq-ml.segs[0].seq] }

// Close syncs what is written, closes the files and releases the
// directory. Every method of the log and its groups returns ErrClosed
// afterwards.
func (ml *MultiLog) Close() error {
	ml.wmu.Lock()
	defer ml.wmu.Unlock()
	ml.mu.Lock()
	defer ml.mu.Unlock()
	if ml.closed {
		return ErrClosed
	}
	ml.closed = true
	var err error
	if ml.dirty && ml.failed == nil && !ml.opts.NoSync {
		err = ml.segs[len(ml.segs)-1].f.Datasync()
	}
	for _, seg := range ml.segs {
		if cerr := seg.f.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := ml.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// groupSnapshotName names the snapshot file of group id at index.
func groupSnapshotName(id, index uint64) string {
	return fmt.Sprintf("%016x-%016x%s", id, index, snapshotExt)
}

// parseGroupSnapshotName returns the group and index of a name made by
// groupSnapshotName.
func parseGroupSnapshotName(name string) (id, index uint64, ok bool) {
	base, ok := strings.CutSuffix(name, snapshotExt)
	if !ok || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	id, err1 := strconv.ParseUint(base[:16], 16, 64)
	index, err2 := strconv.ParseUint(base[17:], 16, 64)
	return id, index, err1 == nil && err2 == nil
}

// appendGroupEntry appends e of group id as a recGroupEntry record,
// marshaled in place.
func appendGroupEntry(buf []byte, id uint64, e *pb.Entry) []byte {
	n := e.Size()
	buf, start, p := appendFrame(buf, recGroupEntry, 8+n)
	binary.LittleEndian.PutUint64(p, id)
	if _, err := e.MarshalToSizedBuffer(p[8:]); err != nil {
		panic(fmt.Sprintf("wal: marshal entry %d of group %d: %v", e.Index, id, err)) // sized above: cannot fail
	}
	return seal(buf, start, 8+n)
}

// appendGroupHardState appends hs of group id as a recGroupHardState
// record.
func appendGroupHardState(buf []byte, id uint64, hs pb.HardState) []byte {
	n := hs.Size()
	buf, start, p := appendFrame(buf, recGroupHardState, 8+n)
	binary.LittleEndian.PutUint64(p, id)
	if _, err := hs.MarshalToSizedBuffer(p[8:]); err != nil {
		panic(fmt.Sprintf("wal: marshal hard state of group %d: %v", id, err)) // sized above: cannot fail
	}
	return seal(buf, start, 8+n)
}

// appendGroupSnapshot appends a recGroupSnapshot record: group id's log
// restarts after index, of term.
func appendGroupSnapshot(buf []byte, id, index, term uint64) []byte {
	var p [24]byte
	binary.LittleEndian.PutUint64(p[:], id)
	binary.LittleEndian.PutUint64(p[8:], index)
	binary.LittleEndian.PutUint64(p[16:], term)
	return appendRecord(buf, recGroupSnapshot, p[:])
}

// splitGroup returns the group ID a group record's payload starts with,
// and the rest.
func splitGroup(p []byte) (uint64, []byte, error) {
	if len(p) < 8 {
		return 0, nil, fmt.Errorf("group record of %d bytes", len(p))
	}
	id := binary.LittleEndian.Uint64(p)
	if id == 0 {
		return 0, nil, errors.New("group record of group 0")
	}
	return id, p[8:], nil
}
