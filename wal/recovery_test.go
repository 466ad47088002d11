package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// batchRecord is where one Save's records ended up in the last segment.
type batchRecord struct {
	ents []pb.Entry
	hs   pb.HardState
	// entryEnd[i] is where the body of ents[i]'s record ends; hsEnd where
	// the hard state's does. A record is intact when the file holds its
	// body whole (the padding after it does not matter).
	entryEnd []int64
	hsEnd    int64
}

// writeBatches saves n batches of small entries into a fresh directory
// and returns where each one's records are.
func writeBatches(t *testing.T, dir string, rng *rand.Rand, n int) []batchRecord {
	t.Helper()
	s, err := Open(dir, Options{SegmentSize: 16 << 10})
	require.NoError(t, err)
	var out []batchRecord
	next := uint64(1)
	for k := range n {
		b := batchRecord{hs: pb.HardState{Term: uint64(k + 1), Vote: 2, Commit: next - 1}}
		off := s.tailOff
		for range 1 + rng.IntN(3) {
			e := pb.Entry{Index: next, Term: uint64(k + 1), Data: make([]byte, 1+rng.IntN(120))}
			for i := range e.Data {
				e.Data[i] = byte(1 + rng.IntN(255))
			}
			b.ents = append(b.ents, e)
			off += int64(frameSize(e.Size()))
			b.entryEnd = append(b.entryEnd, off-int64(frameSize(e.Size()))+headerSize+1+int64(e.Size()))
			next++
		}
		b.hsEnd = off + headerSize + 1 + int64(b.hs.Size())
		require.NoError(t, s.Save(b.hs, b.ents, pb.Snapshot{}))
		require.Equal(t, off+int64(frameSize(b.hs.Size())), s.tailOff, "record layout")
		out = append(out, b)
	}
	require.NoError(t, s.Close())
	return out
}

// intactPrefix is what Open must recover when the segment holds only its
// first n bytes: every record whose body is whole, in order.
func intactPrefix(batches []batchRecord, n int64) (ents []pb.Entry, hs pb.HardState) {
	for _, b := range batches {
		for i, e := range b.ents {
			if b.entryEnd[i] > n {
				return ents, hs
			}
			ents = append(ents, e)
		}
		if b.hsEnd > n {
			return ents, hs
		}
		hs = b.hs
	}
	return ents, hs
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	names, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, n := range names {
		if n.Name() == lockName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, n.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, n.Name()), b, 0o600))
	}
	return to
}

func requireLog(t *testing.T, s *Storage, ents []pb.Entry, hs pb.HardState, msg string) {
	t.Helper()
	last, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(len(ents)), last, "%s: LastIndex", msg)
	if len(ents) > 0 {
		got, err := s.Entries(1, last+1, math.MaxUint64)
		require.NoError(t, err)
		require.Equal(t, ents, got, msg)
	}
	require.Equal(t, hs, s.HardState(), "%s: hard state", msg)
}

// TestOpenCutsTornTail cuts the segment at every byte offset inside its
// last records, both by truncating the file (a partial last record) and by
// zeroing from the offset on (the zeroed preallocated space after a
// partial write): Open always succeeds with the longest intact prefix, and
// writing on from there reads back cleanly.
func TestOpenCutsTornTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	batches := writeBatches(t, dir, rng, 30)
	seg := filepath.Join(dir, segmentName(1))
	data, err := os.ReadFile(seg)
	require.NoError(t, err)
	end := batches[len(batches)-1].hsEnd
	from := batches[len(batches)-4].hsEnd - 1
	for at := from; at <= end; at++ {
		for _, mode := range []string{"truncate", "zero"} {
			cut := at
			msg := fmt.Sprintf("%s at %d", mode, cut)
			d := copyDir(t, dir)
			p := filepath.Join(d, segmentName(1))
			if mode == "truncate" {
				require.NoError(t, os.Truncate(p, cut))
			} else {
				// Unwritten sectors are zero: a torn write ends at a
				// sector boundary.
				cut = (cut + sectorSize - 1) / sectorSize * sectorSize
				b := append([]byte(nil), data...)
				clear(b[cut:])
				require.NoError(t, os.WriteFile(p, b, 0o600))
			}
			s, err := Open(d, Options{SegmentSize: 16 << 10, NoSync: true})
			require.NoError(t, err, msg)
			ents, hs := intactPrefix(batches, cut)
			requireLog(t, s, ents, hs, msg)
			if cut%7 == 0 {
				// Write on over the cut and read everything back after
				// reopening: nothing of the torn write is misread.
				e := pb.Entry{Index: uint64(len(ents)) + 1, Term: 99, Data: []byte("after the cut")}
				hs2 := pb.HardState{Term: 99, Commit: hs.Commit}
				require.NoError(t, s.Save(hs2, []pb.Entry{e}, pb.Snapshot{}), msg)
				require.NoError(t, s.Close())
				s, err = Open(d, Options{SegmentSize: 16 << 10, NoSync: true})
				require.NoError(t, err, msg)
				requireLog(t, s, append(ents, e), hs2, msg+", written on")
			}
			require.NoError(t, s.Close())
		}
	}
}

// recordOffsets returns the offset of every record in a segment's data.
func recordOffsets(t *testing.T, data []byte) []int {
	t.Helper()
	var offs []int
	_, _, err := scanSegment(data, "", false, func(_ recType, _ []byte, off int) error {
		offs = append(offs, off)
		return nil
	})
	require.NoError(t, err)
	return offs
}

// TestOpenRefusesCorruption flips bytes inside records that are followed
// by others, in the last segment and in an earlier one: Open must fail with
// ErrCorrupt naming the file and the damaged record, never serve a shorter
// log.
func TestOpenRefusesCorruption(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentSize: 8 << 10})
	require.NoError(t, err)
	for i := uint64(1); i <= 150; i++ {
		e := pb.Entry{Index: i, Term: 1, Data: make([]byte, 1+rng.IntN(200))}
		require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: i - 1}, []pb.Entry{e}, pb.Snapshot{}))
	}
	nsegs := len(s.segs)
	require.NoError(t, s.Close())
	require.Greater(t, nsegs, 2)

	for _, seq := range []uint64{1, uint64(nsegs)} {
		name := segmentName(seq)
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		offs := recordOffsets(t, data)
		require.Greater(t, len(offs), 3)
		// Every byte of one record in the middle, one random byte of
		// every other record but the last.
		var flips []int
		mid := offs[len(offs)/2]
		for i := range int(recordBodyEnd(data, mid)) - mid {
			flips = append(flips, mid+i)
		}
		for _, off := range offs[:len(offs)-1] {
			flips = append(flips, off+rng.IntN(int(recordBodyEnd(data, off))-off))
		}
		for _, at := range flips {
			d := copyDir(t, dir)
			b := append([]byte(nil), data...)
			b[at] ^= byte(1 + rng.IntN(255))
			require.NoError(t, os.WriteFile(filepath.Join(d, name), b, 0o600))
			_, err := Open(d, Options{SegmentSize: 8 << 10})
			require.ErrorIs(t, err, ErrCorrupt, "segment %d, byte %d flipped", seq, at)
			var ce *CorruptError
			require.True(t, errors.As(err, &ce))
			require.Equal(t, filepath.Join(d, name), ce.File)
			rec := offs[0]
			for _, off := range offs {
				if off <= at {
					rec = off
				}
			}
			require.Equal(t, int64(rec), ce.Offset, "segment %d, byte %d flipped: %v", seq, at, err)
		}
	}
}

// TestOpenRefusesGarbledHeader: a record header in the last segment
// overwritten with garbage whose length reaches past the end of the file,
// records after it: its type byte is none a Save writes, so it is damage,
// not a torn write (which leaves header and type whole).
func TestOpenRefusesGarbledHeader(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentSize: 8 << 10})
	require.NoError(t, err)
	for i := uint64(1); i <= 10; i++ {
		require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: i - 1}, []pb.Entry{{Index: i, Term: 1, Data: []byte("entry")}}, pb.Snapshot{}))
	}
	require.NoError(t, s.Close())
	name := filepath.Join(dir, segmentName(1))
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	offs := recordOffsets(t, data)
	at := offs[len(offs)/2]
	copy(data[at:], []byte{0, 0, 0x10, 0, 0xef, 0xbe, 0xad, 0xde, 0xab}) // 1 MiB, a bad CRC, no such type
	require.NoError(t, os.WriteFile(name, data, 0o600))
	_, err = Open(dir, Options{SegmentSize: 8 << 10})
	var ce *CorruptError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, int64(at), ce.Offset)
}

// recordBodyEnd is where the body of the record at off ends.
func recordBodyEnd(data []byte, off int) int64 {
	_, p, _, _ := readFrame(data, off)
	return int64(off+headerSize+1) + int64(len(p))
}

// TestOpenRefusesMissingPieces: a segment missing from the middle, a
// snapshot without its log, a damaged snapshot file.
func TestOpenRefusesMissingPieces(t *testing.T) {
	// build returns the directory and the segment holding entry 52.
	build := func(t *testing.T) (string, uint64) {
		dir := t.TempDir()
		s, err := Open(dir, Options{SegmentSize: 4096})
		require.NoError(t, err)
		for i := uint64(1); i <= 100; i++ {
			e := pb.Entry{Index: i, Term: 1, Data: make([]byte, 100)}
			require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: i}, []pb.Entry{e}, pb.Snapshot{}))
		}
		_, err = s.CreateSnapshot(50, &pb.ConfState{Voters: []uint64{1}}, []byte("state"))
		require.NoError(t, err)
		seq := s.loc(52).seq
		require.NoError(t, s.Close())
		return dir, seq
	}
	t.Run("segment gap", func(t *testing.T) {
		dir, _ := build(t)
		require.NoError(t, os.Remove(filepath.Join(dir, segmentName(3))))
		_, err := Open(dir, Options{SegmentSize: 4096})
		require.ErrorIs(t, err, ErrCorrupt)
		require.Contains(t, err.Error(), "missing segment")
	})
	t.Run("log starts after the snapshot", func(t *testing.T) {
		dir, seq := build(t)
		// Segments wholly covered by the snapshot may go (Compact deletes
		// them); the one holding the entry after it may not.
		for i := uint64(1); i < seq; i++ {
			require.NoError(t, os.Remove(filepath.Join(dir, segmentName(i))))
		}
		s, err := Open(dir, Options{SegmentSize: 4096})
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.NoError(t, os.Remove(filepath.Join(dir, segmentName(seq))))
		_, err = Open(dir, Options{SegmentSize: 4096})
		require.ErrorIs(t, err, ErrCorrupt)
		require.Contains(t, err.Error(), "but the snapshot ends at 50")
	})
	t.Run("snapshot without log", func(t *testing.T) {
		dir, _ := build(t)
		seqs, err := listNumbered(osFS{}, dir, segmentExt)
		require.NoError(t, err)
		for _, seq := range seqs {
			require.NoError(t, os.Remove(filepath.Join(dir, segmentName(seq))))
		}
		_, err = Open(dir, Options{SegmentSize: 4096})
		require.ErrorIs(t, err, ErrCorrupt)
	})
	t.Run("damaged snapshot file", func(t *testing.T) {
		dir, _ := build(t)
		p := filepath.Join(dir, snapshotName(50))
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		b[len(b)/2] ^= 0x40
		require.NoError(t, os.WriteFile(p, b, 0o600))
		_, err = Open(dir, Options{SegmentSize: 4096})
		require.ErrorIs(t, err, ErrCorrupt)
		require.Contains(t, err.Error(), snapshotName(50))
	})
	t.Run("cut snapshot file", func(t *testing.T) {
		// Written whole and synced before its rename, a snapshot file
		// shorter than written is damage, even when only its padding is
		// gone (the file of "state" ends in padding).
		for _, cut := range []int{1, 3, headerSize} {
			dir, _ := build(t)
			p := filepath.Join(dir, snapshotName(50))
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, b[:len(b)-cut], 0o600))
			_, err = Open(dir, Options{SegmentSize: 4096})
			require.ErrorIs(t, err, ErrCorrupt, "cut %d", cut)
			require.Contains(t, err.Error(), p)
			err = Walk(dir, func(Record) error { return nil })
			require.ErrorIs(t, err, ErrCorrupt, "cut %d", cut)
			require.Contains(t, err.Error(), p)
		}
	})
	t.Run("intact", func(t *testing.T) {
		dir, _ := build(t)
		s, err := Open(dir, Options{SegmentSize: 4096})
		require.NoError(t, err)
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		require.Equal(t, [2]uint64{51, 100}, [2]uint64{first, last})
		require.NoError(t, s.Close())
	})
}

// TestOpenLocked: a second Open of a directory in use fails with
// ErrLocked until the first is closed.
func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentSize: 4096})
	require.NoError(t, err)
	_, err = Open(dir, Options{SegmentSize: 4096})
	require.ErrorIs(t, err, ErrLocked)
	require.Contains(t, err.Error(), dir)
	require.NoError(t, s.Close())
	s, err = Open(dir, Options{SegmentSize: 4096})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Close(), ErrClosed)
	_, err = s.LastIndex()
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, s.Append([]pb.Entry{{Index: 1, Term: 1}}), ErrClosed)
}

// TestOpenCutsTornEntryEmbeddingRecords: an entry whose data holds intact
// records (here a copy of a segment) is torn at every sector boundary
// inside it, and the file cut at every record boundary inside it: Open
// cuts the entry off and serves the entries before it. The records inside
// the entry are its data, not records of the log.
func TestOpenCutsTornEntryEmbeddingRecords(t *testing.T) {
	opts := Options{SegmentSize: 16 << 10}
	inner := t.TempDir()
	s, err := Open(inner, opts)
	require.NoError(t, err)
	for i := uint64(1); i <= 40; i++ {
		require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: i - 1}, []pb.Entry{{Index: i, Term: 1, Data: []byte("inner")}}, pb.Snapshot{}))
	}
	end := s.tailOff
	require.NoError(t, s.Close())
	copied, err := os.ReadFile(filepath.Join(inner, segmentName(1)))
	require.NoError(t, err)
	copied = copied[:end+64] // the records, and a few zeros after them

	dir := t.TempDir()
	s, err = Open(dir, opts)
	require.NoError(t, err)
	ents := []pb.Entry{{Index: 1, Term: 1, Data: []byte("before")}}
	require.NoError(t, s.Save(pb.HardState{Term: 1}, ents, pb.Snapshot{}))
	// Shifted so that the copy lies on record boundaries.
	off := s.tailOff
	e := pb.Entry{Index: 2, Term: 1, Data: copied}
	dataAt := off + headerSize + 1 + int64(e.Size()-len(copied))
	e.Data = append(bytes.Repeat([]byte{'x'}, int(-dataAt&(recAlign-1))), copied...)
	require.NoError(t, s.Save(pb.HardState{}, []pb.Entry{e}, pb.Snapshot{}))
	require.NoError(t, s.Close())
	bodyEnd := off + headerSize + 1 + int64(e.Size())
	require.Zero(t, (bodyEnd-int64(len(copied)))%recAlign, "the copy is on record boundaries")
	data, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	require.NoError(t, err)
	for cut := off + recAlign; cut < bodyEnd; cut += recAlign {
		for _, mode := range []string{"truncate", "zero"} {
			if mode == "zero" && cut%sectorSize != 0 {
				continue
			}
			msg := fmt.Sprintf("%s at %d", mode, cut)
			b := slices.Clone(data)
			if mode == "truncate" {
				b = b[:cut]
			} else {
				clear(b[cut:])
			}
			d := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(d, segmentName(1)), b, 0o600))
			s, err := Open(d, Options{SegmentSize: 16 << 10, NoSync: true})
			require.NoError(t, err, msg)
			requireLog(t, s, ents, pb.HardState{Term: 1}, msg)
			require.NoError(t, s.Close())
		}
	}
}
