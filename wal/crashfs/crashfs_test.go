package crashfs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"syscall"
	"testing"
)

func mustCreate(t *testing.T, fs *FS, name string) *file {
	t.Helper()
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return f.(*file)
}

func contents(t *testing.T, fs *FS, name string) []byte {
	t.Helper()
	f, err := fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, _ := f.Size()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return b
}

func exists(fs *FS, name string) bool {
	f, err := fs.OpenFile(name, os.O_RDONLY, 0)
	if err == nil {
		f.Close()
	}
	return err == nil
}

func TestOnlySyncedSurvives(t *testing.T) {
	fs := New()
	if _, err := fs.MkdirAll("/d", 0o700); err != nil {
		t.Fatal(err)
	}
	a := mustCreate(t, fs, "/d/a")
	a.WriteAt([]byte("synced"), 0)
	a.Sync()
	a.WriteAt([]byte("-lost"), 6)
	mustCreate(t, fs, "/d/b").Sync() // its entry is never synced
	fs.SyncDir("/")
	fs.Crash(DropUnsynced, 1)
	if exists(fs, "/d/a") {
		t.Fatal("a file whose directory entry was not synced survived")
	}

	fs = New()
	fs.MkdirAll("/d", 0o700)
	fs.SyncDir("/")
	a = mustCreate(t, fs, "/d/a")
	a.WriteAt([]byte("synced"), 0)
	a.Sync()
	fs.SyncDir("/d")
	a.WriteAt([]byte("-lost"), 6)
	fs.Rename("/d/a", "/d/c") // not synced: a keeps its name
	fs.Crash(DropUnsynced, 1)
	if got := contents(t, fs, "/d/a"); string(got) != "synced" {
		t.Fatalf("after a crash /d/a holds %q, want the synced data only", got)
	}
	if exists(fs, "/d/c") {
		t.Fatal("an unsynced rename survived")
	}
	if _, err := a.WriteAt([]byte("x"), 0); !errors.Is(err, ErrStale) {
		t.Fatalf("a file opened before the crash: %v, want ErrStale", err)
	}
}

func TestTearKeepsWholeSectorsInOrder(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 3*SectorSize)
	seen := map[int]bool{}
	for seed := range uint64(64) {
		fs := New()
		f := mustCreate(t, fs, "/f")
		fs.SyncDir("/")
		f.Preallocate(4 * SectorSize)
		f.Sync()
		f.WriteAt(data, 100) // sectors 0 to 3
		fs.Crash(TearWrites, seed)
		got := contents(t, fs, "/f")
		n := 0
		for n < len(data) && got[100+n] == 7 {
			n++
		}
		if !slices.Contains([]int{0, SectorSize - 100, 2*SectorSize - 100, 3*SectorSize - 100, len(data)}, n) {
			t.Fatalf("seed %d: kept %d bytes of the write, not a sector boundary", seed, n)
		}
		if !allZero(got[100+n:]) {
			t.Fatalf("seed %d: a sector after the tear survived", seed)
		}
		seen[n] = true
	}
	if len(seen) < 4 {
		t.Fatalf("64 crashes tore the write only %d ways", len(seen))
	}
}

func TestScrambleKeepsAnySectors(t *testing.T) {
	outOfOrder := false
	for seed := range uint64(32) {
		fs := New()
		f := mustCreate(t, fs, "/f")
		fs.SyncDir("/")
		f.Sync()
		f.WriteAt(bytes.Repeat([]byte{9}, 4*SectorSize), 0)
		fs.Crash(ScrambleSectors, seed)
		got := contents(t, fs, "/f")
		for s := 0; s+SectorSize < len(got); s += SectorSize {
			if got[s] == 0 && got[s+SectorSize] == 9 {
				outOfOrder = true
			}
		}
	}
	if !outOfOrder {
		t.Fatal("no crash kept a sector after one it lost")
	}
}

func TestPowerCutAndFaults(t *testing.T) {
	fs := New()
	f := mustCreate(t, fs, "/f") // operation 1
	fs.CutPowerAfter(1)
	if _, err := f.WriteAt([]byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("after the power cut: %v, want ErrPowerCut", err)
	}
	if !fs.PowerCut() || fs.Ops() != 3 {
		t.Fatalf("power cut %v after %d operations, want true after 3", fs.PowerCut(), fs.Ops())
	}
	fs.Crash(DropUnsynced, 0)
	if exists(fs, "/f") {
		t.Fatal("a file created but not synced in its directory survived")
	}

	fs.InjectFault(OpSync, 2, syscall.EIO)
	f = mustCreate(t, fs, "/g")
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("b"), 0)
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("the second sync: %v, want EIO", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("the third sync: %v", err)
	}
}

func TestLock(t *testing.T) {
	fs := New()
	l, err := fs.Lock("/LOCK")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Lock("/LOCK"); err == nil {
		t.Fatal("a second lock succeeded")
	}
	l.Close()
	if _, err := fs.Lock("/LOCK"); err != nil {
		t.Fatal(err)
	}
	fs.Crash(DropUnsynced, 0)
	if _, err := fs.Lock("/LOCK"); err != nil {
		t.Fatalf("a crash did not release the lock: %v", err)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TestKill: after a process dies, what it wrote reads back, its handles
// and locks are gone, and a later power failure still loses what was not
// synced.
func TestKill(t *testing.T) {
	fs := New()
	fs.MkdirAll("/d", 0o700)
	fs.SyncDir("/")
	a := mustCreate(t, fs, "/d/a")
	a.WriteAt([]byte("synced"), 0)
	a.Sync()
	fs.SyncDir("/d")
	a.WriteAt([]byte("+cached"), 6)
	if _, err := fs.Lock("/d/LOCK"); err != nil {
		t.Fatal(err)
	}
	fs.CutPowerAfter(0)
	if _, err := a.WriteAt([]byte("never"), 0); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("a write after the cut: %v, want ErrPowerCut", err)
	}
	fs.Kill()
	if _, err := a.WriteAt([]byte("x"), 0); !errors.Is(err, ErrStale) {
		t.Fatalf("a file opened before the kill: %v, want ErrStale", err)
	}
	if _, err := fs.Lock("/d/LOCK"); err != nil {
		t.Fatalf("the lock of a killed process: %v", err)
	}
	if got := contents(t, fs, "/d/a"); string(got) != "synced+cached" {
		t.Fatalf("after the kill /d/a holds %q, want what was written", got)
	}
	fs.Crash(DropUnsynced, 1)
	if got := contents(t, fs, "/d/a"); string(got) != "synced" {
		t.Fatalf("after a later crash /d/a holds %q, want the synced data only", got)
	}
}
