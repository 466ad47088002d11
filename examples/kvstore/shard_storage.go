package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/multiraft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
)

// shardLog is where a sharded member keeps its shards' Raft logs: one
// wal.MultiLog for all of them on disk (multiLogShards), so that a host
// Ready is made durable by one write and at most one fsync however many
// shards it covers; or one MemoryStorage per shard (memShards).
type shardLog interface {
	// storage is shard id's raft.Storage (the same value on every call).
	storage(id uint64) raft.Storage
	// saveReady persists every group's Snapshot, Entries and HardState of
	// rd, synced as each raft.Ready requires, before it returns.
	saveReady(rd *multiraft.Ready) error
	createSnapshot(id, index uint64, cs *pb.ConfState, data []byte) error
	compact(id, index uint64) error
	// segments is how many segment files the log holds (0 in memory).
	segments() int
	// oldestHolders are the shards whose entries keep the log's oldest
	// segment file from being deleted (see
	// wal.MultiLog.OldestSegmentHolders); none in memory.
	oldestHolders() []uint64
	close() error
}

// The layout of a data directory: the single group's log in raft/; all
// shards' in one MultiLog in shardlog/, with the shard count in
// shardlog.count. Before the MultiLog, shard i had its own log in
// shards/<i>; such a directory is refused, not migrated.
const (
	singleLogDir   = "raft"
	shardLogDir    = "shardlog"
	shardCountFile = "shardlog.count"
	perShardDir    = "shards"
)

// checkShardLayout refuses a data directory written with another shard
// count (keys would hash to other shards, and the new shards would start
// a cluster of their own beside the old log) or in the per-shard layout
// of earlier versions.
func checkShardLayout(dir string, n int) error {
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, perShardDir)); err == nil {
		return fmt.Errorf("--data-dir %s holds one log per shard (%s/), the layout of an earlier kvstore, which this one does not read: start with an empty --data-dir", dir, perShardDir)
	}
	_, err := os.Stat(filepath.Join(dir, singleLogDir))
	single := err == nil
	had, err := readShardCount(dir)
	if err != nil {
		return err
	}
	switch {
	case n <= 1 && had > 0:
		return fmt.Errorf("--data-dir %s holds %d shards: run with --shards %d", dir, had, had)
	case n > 1 && single:
		return fmt.Errorf("--data-dir %s holds the log of a single group: run without --shards (or with --shards 1)", dir)
	case n > 1 && had > 0 && had != n:
		return fmt.Errorf("--data-dir %s holds %d shards, not %d: run with --shards %d (changing the shard count is not supported)", dir, had, n, had)
	}
	return nil
}

// readShardCount returns the shard count recorded in dir, 0 if none is.
func readShardCount(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, shardCountFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 2 {
		return 0, fmt.Errorf("--data-dir %s: %s is damaged (%q)", dir, shardCountFile, b)
	}
	return n, nil
}

// writeShardCount records n in dir durably, before the log is created, so
// that a restart with another --shards is refused however early the
// first run stopped.
func writeShardCount(dir string, n int) error {
	had, err := readShardCount(dir)
	if err != nil || had == n {
		return err
	}
	return writeFileSynced(dir, shardCountFile, fmt.Appendf(nil, "%d\n", n))
}

// writeFileSynced writes the file name in dir (created if need be) whole
// and durably: written to a temporary file, synced, renamed into place and
// the directory synced.
func writeFileSynced(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// openShardLog opens the log of shards 1..n under dir, with opts, or keeps
// them in memory when inMemory (nothing survives a restart).
func openShardLog(dir string, n int, inMemory bool, opts wal.Options) (shardLog, error) {
	if inMemory {
		l := &memShards{}
		for range n {
			l.stores = append(l.stores, raft.NewMemoryStorage())
		}
		return l, nil
	}
	if err := writeShardCount(dir, n); err != nil {
		return nil, err
	}
	ml, err := wal.OpenMulti(filepath.Join(dir, shardLogDir), opts)
	if err != nil {
		return nil, err
	}
	l := &multiLogShards{ml: ml}
	for _, id := range ml.Groups() {
		if id < 1 || id > uint64(n) {
			ml.Close()
			return nil, fmt.Errorf("%s holds shard %d, beyond --shards %d", ml.Dir(), id, n)
		}
	}
	for i := 1; i <= n; i++ {
		g, err := ml.Group(uint64(i))
		if err != nil {
			ml.Close()
			return nil, fmt.Errorf("shard %d: %w", i, err)
		}
		l.groups = append(l.groups, g)
	}
	return l, nil
}

// multiLogShards keeps every shard's log in one wal.MultiLog.
type multiLogShards struct {
	ml     *wal.MultiLog
	groups []*wal.GroupStorage // groups[i-1] is shard i's
	ups    []wal.GroupUpdate   // reused by saveReady
}

func (l *multiLogShards) storage(id uint64) raft.Storage { return l.groups[id-1] }

// saveReady saves the whole host Ready with one MultiLog Save: one write,
// and one fsync if any shard's part must be durable.
func (l *multiLogShards) saveReady(rd *multiraft.Ready) error {
	ups := l.ups[:0]
	for i := range rd.Groups {
		gr := &rd.Groups[i]
		ups = append(ups, wal.GroupUpdate{GroupID: gr.GroupID, HardState: gr.HardState, Entries: gr.Entries, Snapshot: gr.Snapshot})
	}
	err := l.ml.Save(ups)
	clear(ups)
	l.ups = ups[:0]
	return err
}

func (l *multiLogShards) createSnapshot(id, index uint64, cs *pb.ConfState, data []byte) error {
	_, err := l.groups[id-1].CreateSnapshot(index, cs, data)
	return err
}

func (l *multiLogShards) compact(id, index uint64) error { return l.groups[id-1].Compact(index) }

func (l *multiLogShards) segments() int { return l.ml.Segments() }

func (l *multiLogShards) oldestHolders() []uint64 { return l.ml.OldestSegmentHolders() }

func (l *multiLogShards) close() error { return l.ml.Close() }

// memShards keeps shard i's log in a MemoryStorage.
type memShards struct {
	stores []*raft.MemoryStorage // stores[i-1] is shard i's
}

func (l *memShards) storage(id uint64) raft.Storage { return l.stores[id-1] }

func (l *memShards) saveReady(rd *multiraft.Ready) error {
	for i := range rd.Groups {
		gr := &rd.Groups[i]
		if err := l.stores[gr.GroupID-1].Save(gr.HardState, gr.Entries, gr.Snapshot); err != nil {
			return fmt.Errorf("shard %d: %w", gr.GroupID, err)
		}
	}
	return nil
}

func (l *memShards) createSnapshot(id, index uint64, cs *pb.ConfState, data []byte) error {
	_, err := l.stores[id-1].CreateSnapshot(index, cs, data)
	return err
}

func (l *memShards) compact(id, index uint64) error { return l.stores[id-1].Compact(index) }

func (l *memShards) segments() int { return 0 }

func (l *memShards) oldestHolders() []uint64 { return nil }

func (l *memShards) close() error { return nil }
