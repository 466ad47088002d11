package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	pb "github.com/raftcore/raft/raftpb"
)

const (
	segmentExt  = ".wal"
	snapshotExt = ".snap"
	tmpExt      = ".tmp"
	lockName    = "LOCK"
)

// segment is one file of the log. Segments are numbered from 1 with no
// gaps; records are appended to the last one only.
type segment struct {
	seq  uint64
	path string
	// f serves reads (ReadAt) and, for the last segment, writes.
	f File
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentExt) }

// parseHexName returns the number in a name like 00000000000000a1.wal.
func parseHexName(name, ext string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, ext)
	if !ok || len(base) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(base, 16, 64)
	return v, err == nil
}

// listNumbered returns the numbers of the files in dir named like
// parseHexName wants, ascending.
func listNumbered(fs FS, dir, ext string) ([]uint64, error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	return numbered(names, ext), nil
}

// numbered returns the numbers of the files in names named like
// "%016x"+ext, sorted.
func numbered(names []string, ext string) []uint64 {
	var nums []uint64
	for _, n := range names {
		if v, ok := parseHexName(n, ext); ok {
			nums = append(nums, v)
		}
	}
	slices.Sort(nums)
	return nums
}

// segmentHeader is the payload of a recSegmentHeader record.
func segmentHeader(seq uint64, hs pb.HardState) []byte {
	b := make([]byte, 8, 8+hs.Size())
	binary.LittleEndian.PutUint64(b, seq)
	hsb, err := hs.Marshal()
	if err != nil {
		panic(fmt.Sprintf("wal: marshal hard state: %v", err))
	}
	return append(b, hsb...)
}

func parseSegmentHeader(p []byte) (seq uint64, hs pb.HardState, err error) {
	if len(p) < 8 {
		return 0, hs, errors.New("segment header too short")
	}
	seq = binary.LittleEndian.Uint64(p)
	err = hs.Unmarshal(p[8:])
	return seq, hs, err
}

// createSegment creates segment seq in dir, preallocated to size bytes and
// opened with a header record carrying hs, durably: it is written under a
// temporary name, synced, renamed and the directory synced, so a segment
// file always starts with its header.
func createSegment(fs FS, dir string, seq uint64, size int64, hs pb.HardState) (*segment, int64, error) {
	return createSegmentWith(fs, dir, seq, size, appendRecord(nil, recSegmentHeader, segmentHeader(seq, hs)))
}

// createSegmentWith creates segment seq as createSegment does, starting
// with the records hdr (a header record and any records that must be in
// the segment from its creation on).
func createSegmentWith(fs FS, dir string, seq uint64, size int64, hdr []byte) (*segment, int64, error) {
	path := filepath.Join(dir, segmentName(seq))
	tmp := path + tmpExt
	f, err := fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("wal: create segment %s: %w", path, err)
	}
	err = f.Preallocate(max(size, int64(len(hdr))))
	if err == nil {
		_, err = f.WriteAt(hdr, 0)
	}
	if err == nil {
		err = syncFile(syncSegmentFile, f)
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(fs, syncSegmentDir, dir)
	}
	if err != nil {
		f.Close()
		fs.Remove(tmp)
		return nil, 0, fmt.Errorf("wal: create segment %s: %w", path, err)
	}
	return &segment{seq: seq, path: path, f: f}, int64(len(hdr)), nil
}

// scanSegment calls fn for every intact record of a segment's data, in
// order, and returns the offset where the written data ends. A damaged
// record is corruption, except at the tail of the last segment, where a
// write that did not finish is expected after a crash (see tornAt); then
// scanning stops there and torn is true.
func scanSegment(data []byte, path string, last bool, fn func(t recType, payload []byte, off int) error) (end int, torn bool, err error) {
	off := 0
	for {
		t, payload, next, st := readFrame(data, off)
		if st == frameOK {
			if err := fn(t, payload, off); err != nil {
				return off, false, corruptf(path, int64(off), "%s record: %v", t, err)
			}
			off = next
			continue
		}
		if st == frameEnd && allZero(data[min(off, len(data)):]) {
			return off, false, nil
		}
		if last && tornAt(data, off, st) {
			return off, true, nil
		}
		return off, false, corruptf(path, int64(off), "%s", describeDamage(st))
	}
}

func describeDamage(st frameStatus) string {
	switch st {
	case frameEnd:
		return "zero record header followed by data"
	case frameShort:
		return "record runs past the end of the file"
	}
	return "record length or checksum mismatch"
}
