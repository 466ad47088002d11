package wal

import (
	"fmt"
	"os"
	"testing"

	pb "github.com/raftcore/raft/raftpb"
)

// BenchmarkMultiSave measures durable MultiLog Saves of a host Ready: G
// groups each appending E entries of 128 bytes with a hard state whose
// commit index moved, one write and one fdatasync per Save. It reports
// entries/s and fsyncs/s (Saves that synced, per second).
func BenchmarkMultiSave(b *testing.B) {
	for _, shape := range []struct{ groups, ents int }{{1, 1}, {64, 1}, {1, 64}, {64, 16}} {
		b.Run(fmt.Sprintf("groups=%d/entries=%d", shape.groups, shape.ents), func(b *testing.B) {
			ml, err := OpenMulti(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer ml.Close()
			ups := make([]GroupUpdate, shape.groups)
			for i := range ups {
				ups[i] = GroupUpdate{GroupID: uint64(i + 1), Entries: benchEntries(1, shape.ents, 128)}
			}
			next := uint64(1)
			b.SetBytes(int64(shape.groups * shape.ents * 128))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range ups {
					reindex(ups[j].Entries, next)
					ups[j].HardState = pb.HardState{Term: 1, Vote: 1, Commit: next - 1}
				}
				next += uint64(shape.ents)
				if err := ml.Save(ups); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if sec := b.Elapsed().Seconds(); sec > 0 {
				b.ReportMetric(float64(b.N*shape.groups*shape.ents)/sec, "entries/s")
				b.ReportMetric(float64(b.N)/sec, "fsyncs/s")
			}
		})
	}
}

// BenchmarkSeparateSave is BenchmarkMultiSave's comparison: G groups,
// each with a Storage of its own, each saving one entry of 128 bytes per
// Ready (G fsyncs per Ready, one after the other).
func BenchmarkSeparateSave(b *testing.B) {
	for _, groups := range []int{1, 64} {
		b.Run(fmt.Sprintf("groups=%d/entries=1", groups), func(b *testing.B) {
			ss := make([]*Storage, groups)
			ents := make([][]pb.Entry, groups)
			for i := range ss {
				s, err := Open(b.TempDir(), Options{SegmentSize: 1 << 20})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				ss[i], ents[i] = s, benchEntries(1, 1, 128)
			}
			next := uint64(1)
			b.SetBytes(int64(groups * 128))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j, s := range ss {
					reindex(ents[j], next)
					if err := s.Save(pb.HardState{Term: 1, Vote: 1, Commit: next - 1}, ents[j], pb.Snapshot{}); err != nil {
						b.Fatal(err)
					}
				}
				next++
			}
			b.StopTimer()
			if sec := b.Elapsed().Seconds(); sec > 0 {
				b.ReportMetric(float64(b.N*groups)/sec, "entries/s")
				b.ReportMetric(float64(b.N*groups)/sec, "fsyncs/s")
			}
		})
	}
}

// BenchmarkMultiOpen measures OpenMulti and Close of a log holding 10,000
// groups, each with 3 entries of 128 bytes and a hard state (saved 100
// groups per Save), the log's files written out before the measurement.
func BenchmarkMultiOpen(b *testing.B) {
	const groups, perGroup = 10000, 3
	dir, err := os.MkdirTemp("", "wal-bench-multiopen-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ml, err := OpenMulti(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for round := range perGroup {
		for first := 1; first <= groups; first += 100 {
			var ups []GroupUpdate
			for id := first; id < first+100; id++ {
				ups = append(ups, GroupUpdate{GroupID: uint64(id),
					HardState: pb.HardState{Term: 1, Vote: 1, Commit: uint64(round)},
					Entries:   benchEntries(uint64(round+1), 1, 128)})
			}
			if err := ml.Save(ups); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := ml.Close(); err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ml, err := OpenMulti(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if n := len(ml.Groups()); n != groups {
				b.Fatalf("reopened log holds %d groups, want %d", n, groups)
			}
			g, _ := ml.Group(groups)
			if last, _ := g.LastIndex(); last != perGroup {
				b.Fatalf("group %d ends at %d, want %d", groups, last, perGroup)
			}
			if err := ml.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
