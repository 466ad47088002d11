package wal

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// The shapes BenchmarkSave and BenchmarkBareWriteFdatasync run: entries
// per Save times payload bytes per entry.
var (
	benchBatches  = []int{1, 64, 1024}
	benchPayloads = []int{128, 4 << 10}
)

// forEachShape runs fn as the sub-benchmarks batch=B/size=S.
func forEachShape(b *testing.B, fn func(b *testing.B, batch, size int)) {
	for _, batch := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			for _, size := range benchPayloads {
				b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
					fn(b, batch, size)
				})
			}
		})
	}
}

// benchEntries returns n entries of term 1, indexed from first, with
// size-byte payloads carved from one buffer.
func benchEntries(first uint64, n, size int) []pb.Entry {
	data := make([]byte, n*size)
	for i := range data {
		data[i] = byte(i*131 + 7)
	}
	ents := make([]pb.Entry, n)
	for i := range ents {
		ents[i] = pb.Entry{
			Type:  pb.EntryNormal,
			Term:  1,
			Index: first + uint64(i),
			Data:  data[i*size : (i+1)*size : (i+1)*size],
		}
	}
	return ents
}

// reindex renumbers ents from first. Save copies the entry structs into its
// cache (sharing only Data, which is never modified here), so a batch can
// be reused for the next Save.
func reindex(ents []pb.Entry, first uint64) {
	for i := range ents {
		ents[i].Index = first + uint64(i)
	}
}

// recordBytes is the on-disk size of a record with an n-byte payload: an
// 8-byte header, a type byte and the payload, padded to a multiple of 8.
func recordBytes(n int) int { return (8 + 1 + n + 7) &^ 7 }

// saveBytes is what one Save of ents and hs (a changed hard state) writes.
func saveBytes(ents []pb.Entry, hs pb.HardState) int {
	n := 0
	for i := range ents {
		n += recordBytes(ents[i].Size())
	}
	if !raft.IsEmptyHardState(hs) {
		n += recordBytes(hs.Size())
	}
	return n
}

func reportEntriesPerSec(b *testing.B, perOp int) {
	if sec := b.Elapsed().Seconds(); sec > 0 {
		b.ReportMetric(float64(b.N*perOp)/sec, "entries/s")
	}
}

// BenchmarkSave measures one durable Save (write + fdatasync) of a batch
// of new entries and a hard state whose commit index moved, as a Ready
// loop issues it.
func BenchmarkSave(b *testing.B) {
	forEachShape(b, func(b *testing.B, batch, size int) {
		s, err := Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		ents := benchEntries(1, batch, size)
		hs := pb.HardState{Term: 1, Vote: 1, Commit: uint64(batch)}

		// One Save before the timer, to check that saveBytes (which the
		// bare-write benchmark relies on) is what Save writes.
		before := s.tailOff
		if err := s.Save(hs, ents, pb.Snapshot{}); err != nil {
			b.Fatal(err)
		}
		if got, want := s.tailOff-before, int64(saveBytes(ents, hs)); got != want {
			b.Fatalf("Save wrote %d bytes, saveBytes says %d", got, want)
		}
		next := uint64(batch) + 1

		b.SetBytes(int64(batch * size))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			reindex(ents, next)
			next += uint64(batch)
			hs.Commit = next - 1
			if err := s.Save(hs, ents, pb.Snapshot{}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportEntriesPerSec(b, batch)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	})
}

// bareLog appends buffers to preallocated files with one pwrite and one
// fdatasync each, starting a new file when one is full: the least any
// durable log on this file system has to do.
type bareLog struct {
	dir  string
	size int64
	seq  int
	f    *os.File
	off  int64
}

// rotate starts the next file as the wal starts a segment: preallocated,
// synced, and the directory synced.
func (w *bareLog) rotate() error {
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			return err
		}
	}
	w.seq++
	f, err := os.OpenFile(filepath.Join(w.dir, fmt.Sprintf("%06d.bare", w.seq)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w.f, w.off = f, 0
	if err := fileutil.Preallocate(f, w.size, true); err != nil {
		return err
	}
	if err := fileutil.Fsync(f); err != nil {
		return err
	}
	return osFS{}.SyncDir(w.dir)
}

func (w *bareLog) write(p []byte) error {
	if w.f == nil || (w.off+int64(len(p)) > w.size && w.off > 0) {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	if _, err := w.f.WriteAt(p, w.off); err != nil {
		return err
	}
	w.off += int64(len(p))
	return fileutil.Fdatasync(w.f)
}

// BenchmarkBareWriteFdatasync is the floor for BenchmarkSave: per op, one
// pwrite of as many bytes as the Save of the same shape writes, then one
// fdatasync, into 64 MiB preallocated files.
func BenchmarkBareWriteFdatasync(b *testing.B) {
	forEachShape(b, func(b *testing.B, batch, size int) {
		// The entries and hard state of BenchmarkSave's first timed op.
		ents := benchEntries(uint64(batch)+1, batch, size)
		n := saveBytes(ents, pb.HardState{Term: 1, Vote: 1, Commit: uint64(2 * batch)})
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i*31 + 1)
		}
		w := &bareLog{dir: b.TempDir(), size: defaultSegmentSize}
		if err := w.rotate(); err != nil {
			b.Fatal(err)
		}

		b.SetBytes(int64(batch * size))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := w.write(buf); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportEntriesPerSec(b, batch)
		if err := w.f.Close(); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkOpen measures recovery: Open (replaying every segment) and Close
// of a log of WAL_BENCH_OPEN_MB MiB of 1 KiB entries. It is skipped unless
// that variable is set, since building the log takes a while.
func BenchmarkOpen(b *testing.B) {
	mb, _ := strconv.Atoi(os.Getenv("WAL_BENCH_OPEN_MB"))
	if mb <= 0 {
		b.Skip("set WAL_BENCH_OPEN_MB to the log size in MiB (e.g. 1024)")
	}
	const batch, size = 256, 1 << 10
	dir, err := os.MkdirTemp("", "wal-bench-open-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// Build the log once, here in the parent: the sub-benchmark's function
	// runs several times.
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	ents := benchEntries(1, batch, size)
	var total int64
	var last uint64
	for total < int64(mb)<<20 {
		reindex(ents, last+1)
		last += batch
		hs := pb.HardState{Term: 1, Vote: 1, Commit: last}
		if err := s.Save(hs, ents, pb.Snapshot{}); err != nil {
			b.Fatal(err)
		}
		total += int64(saveBytes(ents, hs))
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	// Write the log out now, so that writeback does not run during the
	// measurement.
	names, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, de := range names {
		f, err := os.Open(filepath.Join(dir, de.Name()))
		if err != nil {
			b.Fatal(err)
		}
		err = fileutil.Fsync(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}

	b.Run(fmt.Sprintf("size=%dMiB", mb), func(b *testing.B) {
		b.SetBytes(total)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			s, err := Open(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if li, _ := s.LastIndex(); li != last {
				b.Fatalf("reopened log ends at %d, want %d", li, last)
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportEntriesPerSec(b, int(last))
	})
}

// benchTerm is the term of entry i in the logs buildLog writes.
func benchTerm(i uint64) uint64 { return 1 + (i-1)/4096 }

// buildLog opens a Storage in a temporary directory (closed when the
// benchmark run ends) holding entries 1 ... n with size-byte payloads, of
// terms given by benchTerm, written in Saves of 1024 entries.
func buildLog(b *testing.B, opts Options, n, size int) *Storage {
	b.Helper()
	s, err := Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	const batch = 1024
	ents := benchEntries(1, batch, size)
	for first := uint64(1); first <= uint64(n); first += batch {
		e := ents[:min(batch, uint64(n)-first+1)]
		for i := range e {
			e[i].Index = first + uint64(i)
			e[i].Term = benchTerm(e[i].Index)
		}
		li := e[len(e)-1].Index
		hs := pb.HardState{Term: benchTerm(li), Vote: 1, Commit: li}
		if err := s.Save(hs, e, pb.Snapshot{}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkTerm looks up the term of a random entry of a 100k-entry log.
func BenchmarkTerm(b *testing.B) {
	const n = 100_000
	s := buildLog(b, Options{NoSync: true}, n, 128)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idx := 1 + rng.Uint64N(n)
		t, err := s.Term(idx)
		if err != nil || t != benchTerm(idx) {
			b.Fatalf("Term(%d) = %d, %v; want %d", idx, t, err, benchTerm(idx))
		}
	}
}

// BenchmarkEntries reads runs of 1 and 64 entries of 128 bytes at random
// positions of a 100k-entry log: from the cache (among the entries still
// in the default 8 MiB cache) and, with the cache off, from the segment
// files (which the OS page cache holds).
func BenchmarkEntries(b *testing.B) {
	const n, size = 100_000, 128
	for _, c := range []struct {
		name      string
		cacheSize int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(c.name, func(b *testing.B) {
			for _, k := range []uint64{1, 64} {
				b.Run(fmt.Sprintf("n=%d", k), func(b *testing.B) {
					s := buildLog(b, Options{NoSync: true, CacheSize: c.cacheSize}, n, size)
					lo := uint64(1)
					if c.cacheSize >= 0 {
						lo = s.cacheFirst // the oldest entry in the cache
						if n-lo+1 < 1000 {
							b.Fatalf("only %d entries are cached", n-lo+1)
						}
					} else if s.cacheFirst != n+1 {
						b.Fatalf("cache holds entries from %d with CacheSize -1", s.cacheFirst)
					}
					starts := n - lo + 1 - k + 1 // possible first indexes
					rng := rand.New(rand.NewPCG(3, 4))
					b.SetBytes(int64(k) * size)
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						first := lo + rng.Uint64N(starts)
						ents, err := s.Entries(first, first+k, math.MaxUint64)
						if err != nil || uint64(len(ents)) != k || ents[0].Index != first || len(ents[0].Data) != size {
							b.Fatalf("Entries(%d, %d) = %d entries, %v", first, first+k, len(ents), err)
						}
					}
					b.StopTimer()
					reportEntriesPerSec(b, int(k))
				})
			}
		})
	}
}
