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

// FuzzOpenSegment: Open on a segment with arbitrary bytes after a valid
// header never panics; when it succeeds, every entry it indexes reads back.
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
		s, err := Open(d, Options{SegmentSize: 4096})
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
// indexes reads back.
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
		ml, err := OpenMulti(d, Options{SegmentSize: 4096, NoSync: true})
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
