package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	pb "github.com/raftcore/raft/raftpb"
)

// FuzzDecodeEntry: whatever decodeEntry accepts, gogo's generated decoder
// decodes to the same entry (the fast replay decoder never disagrees with
// the wire format).
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []pb.Entry{{}, {Index: 1, Term: 2}, {Index: 1 << 40, Term: 7, Type: pb.EntryConfChangeV2, Data: []byte("cc")}} {
		b, _ := e.Marshal()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got pb.Entry
		if decodeEntry(b, &got) != nil {
			return
		}
		var want pb.Entry
		if err := want.Unmarshal(b); err != nil {
			t.Fatalf("decodeEntry accepted %x, gogo refuses it: %v", b, err)
		}
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("decodeEntry %+v, gogo %+v", got, want)
		}
	})
}

// walkAgrees walks dir (before the Open that opened it: Open changes the
// directory) and checks Walk refuses what Open refused (openErr), with
// the same error.
func walkAgrees(t *testing.T, walkErr, openErr error) {
	t.Helper()
	if (walkErr == nil) != (openErr == nil) || walkErr != nil && walkErr.Error() != openErr.Error() {
		t.Fatalf("Walk: %v; Open: %v", walkErr, openErr)
	}
}

func walkNothing(dir string) error { return Walk(dir, func(Record) error { return nil }) }

// FuzzOpenSegment: Open on a segment with arbitrary bytes after a valid
// header never panics; when it succeeds, every entry it indexes reads back.
// Walk refuses what Open refuses.
func FuzzOpenSegment(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		f.Fatal(err)
	}
	for i := uint64(1); i <= 5; i++ {
		if err := s.Save(pb.HardState{Term: 1, Commit: i - 1}, []pb.Entry{{Index: i, Term: 1, Data: []byte("x")}}, pb.Snapshot{}); err != nil {
			f.Fatal(err)
		}
	}
	s.Close()
	seed, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil {
		f.Fatal(err)
	}
	hdr := frameSize(len(segmentHeader(1, pb.HardState{})))
	f.Add(seed[hdr:400])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, tail []byte) {
		d := t.TempDir()
		data := append(append([]byte(nil), seed[:hdr]...), tail...)
		if err := os.WriteFile(filepath.Join(d, segmentName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		werr := walkNothing(d)
		s, err := Open(d, Options{SegmentSize: 4096})
		walkAgrees(t, werr, err)
		if err != nil {
			return // refused: fine, as long as it did not panic
		}
		defer s.Close()
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		if last >= first {
			ents, err := s.Entries(first, last+1, 1<<30)
			if err != nil {
				t.Fatalf("indexed entries %d..%d do not read back: %v", first, last, err)
			}
			for i, e := range ents {
				if e.Index != first+uint64(i) {
					t.Fatalf("entry %d at position of %d", e.Index, first+uint64(i))
				}
			}
		}
	})
}

// FuzzOpenMultiSegment: OpenMulti on a segment with arbitrary bytes after a
// valid header never panics; when it succeeds, every entry each group
// indexes reads back. Walk refuses what OpenMulti refuses.
func FuzzOpenMultiSegment(f *testing.F) {
	dir := f.TempDir()
	ml, err := OpenMulti(dir, Options{SegmentSize: 4096})
	if err != nil {
		f.Fatal(err)
	}
	for i := uint64(1); i <= 4; i++ {
		var ups []GroupUpdate
		for id := uint64(1); id <= 3; id++ {
			ups = append(ups, GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Commit: i - 1},
				Entries: []pb.Entry{{Index: i, Term: 1, Data: []byte("x")}}})
		}
		if err := ml.Save(ups); err != nil {
			f.Fatal(err)
		}
	}
	if err := ml.RemoveGroup(3); err != nil {
		f.Fatal(err)
	}
	ml.Close()
	seed, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil {
		f.Fatal(err)
	}
	hdr := frameSize(16)
	f.Add(seed[hdr:800])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, tail []byte) {
		d := t.TempDir()
		data := append(append([]byte(nil), seed[:hdr]...), tail...)
		if err := os.WriteFile(filepath.Join(d, segmentName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		werr := walkNothing(d)
		ml, err := OpenMulti(d, Options{SegmentSize: 4096, NoSync: true})
		walkAgrees(t, werr, err)
		if err != nil {
			return // refused: fine, as long as it did not panic
		}
		defer ml.Close()
		for _, id := range ml.Groups() {
			g, err := ml.Group(id)
			if err != nil {
				t.Fatalf("group %d listed but not served: %v", id, err)
			}
			first, _ := g.FirstIndex()
			last, _ := g.LastIndex()
			if last < first {
				continue
			}
			ents, err := g.Entries(first, last+1, 1<<30)
			if err != nil {
				t.Fatalf("group %d: indexed entries %d..%d do not read back: %v", id, first, last, err)
			}
			for i, e := range ents {
				if e.Index != first+uint64(i) {
					t.Fatalf("group %d: entry %d at position of %d", id, e.Index, first+uint64(i))
				}
			}
		}
	})
}

// snapshotSeeds adds to f the snapshot file b, and b cut at each length
// down to its record's header.
func snapshotSeeds(f *testing.F, b []byte) {
	for n := len(b); n >= headerSize; n-- {
		f.Add(b[:n])
	}
	f.Add([]byte{})
}

// FuzzOpenSnapshotFile: Open and Walk on a log whose snapshot file holds
// arbitrary bytes never panic and refuse the same logs; when Open
// succeeds, it serves the snapshot the file is named for.
func FuzzOpenSnapshotFile(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir, Options{SegmentSize: 4096, NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	for i := uint64(1); i <= 5; i++ {
		if err := s.Save(pb.HardState{Term: 1, Commit: i}, []pb.Entry{{Index: i, Term: 1, Data: []byte("x")}}, pb.Snapshot{}); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := s.CreateSnapshot(3, &pb.ConfState{Voters: []uint64{1, 2}}, []byte("state")); err != nil {
		f.Fatal(err)
	}
	s.Close()
	name := snapshotName(3)
	seed, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		f.Fatal(err)
	}
	fuzzSnapshotFile(f, dir, name, seed, func(t *testing.T, d string) (uint64, error) {
		s, err := Open(d, Options{SegmentSize: 4096, NoSync: true})
		if err != nil {
			return 0, err
		}
		defer s.Close()
		snap, _ := s.Snapshot()
		return snap.Metadata.Index, nil
	})
}

// fuzzSnapshotFile fuzzes the snapshot file name of the log in dir (seed
// is its intact content): Walk and open must refuse the same logs, and an
// opened log serves the snapshot at 3 (open returns the index it serves).
func fuzzSnapshotFile(f *testing.F, dir, name string, seed []byte, open func(t *testing.T, d string) (uint64, error)) {
	snapshotSeeds(f, seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		d := copyDir(t, dir)
		if err := os.WriteFile(filepath.Join(d, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		werr := walkNothing(d)
		index, err := open(t, d)
		walkAgrees(t, werr, err)
		if err == nil && index != 3 {
			t.Fatalf("opened with the snapshot at %d from the file of 3", index)
		}
	})
}

// FuzzOpenMultiSnapshotFile: the same for a group's snapshot file in a
// MultiLog.
func FuzzOpenMultiSnapshotFile(f *testing.F) {
	dir := f.TempDir()
	ml, err := OpenMulti(dir, Options{SegmentSize: 4096, NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	snap := pb.Snapshot{Data: []byte("state"), Metadata: pb.SnapshotMetadata{Index: 3, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1}}}}
	if err := ml.Save([]GroupUpdate{
		{GroupID: 1, HardState: pb.HardState{Term: 1, Commit: 1}, Entries: []pb.Entry{{Index: 1, Term: 1}}},
		{GroupID: 2, HardState: pb.HardState{Term: 1, Commit: 3}, Snapshot: snap, Entries: []pb.Entry{{Index: 4, Term: 1, Data: []byte("x")}}},
	}); err != nil {
		f.Fatal(err)
	}
	ml.Close()
	name := groupSnapshotName(2, 3)
	seed, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		f.Fatal(err)
	}
	fuzzSnapshotFile(f, dir, name, seed, func(t *testing.T, d string) (uint64, error) {
		ml, err := OpenMulti(d, Options{SegmentSize: 4096, NoSync: true})
		if err != nil {
			return 0, err
		}
		defer ml.Close()
		g, err := ml.Group(2)
		if err != nil {
			t.Fatal(err)
		}
		snap, _ := g.Snapshot()
		return snap.Metadata.Index, nil
	})
}
