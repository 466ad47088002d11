package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/multiraft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
)

// shardLog is where a sharded member keeps its shards' Raft logs. Today
// each shard has its own log (walPerShard: one wal.Open directory per
// shard); a log shared by all groups, synced once per host Ready, can take
// its place behind the same methods.
type shardLog interface {
	// storage is shard id's raft.Storage (the same value on every call).
	storage(id uint64) raft.Storage
	// saveReady persists every group's Snapshot, Entries and HardState of
	// rd, synced as each raft.Ready requires, before it returns.
	saveReady(rd *multiraft.Ready) error
	createSnapshot(id, index uint64, cs *pb.ConfState, data []byte) error
	compact(id, index uint64) error
	close() error
}

// checkShardLayout refuses a data directory written with another shard
// count: keys would hash to other shards, and the new shards would start a
// cluster of their own beside the old log. dir holds the single group's
// log in raft/, or shard i's in shards/<i>.
func checkShardLayout(dir string, n int) error {
	if dir == "" {
		return nil
	}
	_, err := os.Stat(filepath.Join(dir, "raft"))
	single := err == nil
	entries, err := os.ReadDir(filepath.Join(dir, "shards"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	had := len(entries)
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

// walPerShard keeps shard i's log in DIR/shards/<i>, or in memory.
type walPerShard struct {
	stores []storage // stores[i-1] is shard i's
}

// openShardLog opens the logs of shards 1..n under dir (in memory when
// inMemory: nothing survives a restart).
func openShardLog(dir string, n int, inMemory bool, walFS wal.FS) (*walPerShard, error) {
	l := &walPerShard{}
	// A WAL preallocates each segment and caches recent entries: split
	// one group's defaults (64 MiB, 8 MiB) among the shards, down to 1 MiB
	// and 256 KiB each, so that a member's disk and memory do not grow
	// with the shard count, up to 64 shards.
	opts := wal.Options{FS: walFS, SegmentSize: max(1<<20, 64<<20/int64(n)), CacheSize: max(256<<10, 8<<20/n)}
	for i := 1; i <= n; i++ {
		if inMemory {
			l.stores = append(l.stores, memStorage{raft.NewMemoryStorage()})
			continue
		}
		st, err := wal.Open(filepath.Join(dir, "shards", strconv.Itoa(i)), opts)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("shard %d: %w", i, err)
		}
		l.stores = append(l.stores, st)
	}
	return l, nil
}

func (l *walPerShard) storage(id uint64) raft.Storage { return l.stores[id-1] }

// saveReady saves the groups' Readies in parallel: each shard's log syncs
// on its own, so a Ready touching k shards costs about one sync's time,
// not k.
func (l *walPerShard) saveReady(rd *multiraft.Ready) error {
	save := func(gr *multiraft.GroupReady) error {
		if err := l.stores[gr.GroupID-1].Save(gr.HardState, gr.Entries, gr.Snapshot); err != nil {
			return fmt.Errorf("shard %d: %w", gr.GroupID, err)
		}
		return nil
	}
	if len(rd.Groups) == 1 {
		return save(&rd.Groups[0])
	}
	errs := make([]error, len(rd.Groups))
	var wg sync.WaitGroup
	for i := range rd.Groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = save(&rd.Groups[i])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *walPerShard) createSnapshot(id, index uint64, cs *pb.ConfState, data []byte) error {
	_, err := l.stores[id-1].CreateSnapshot(index, cs, data)
	return err
}

func (l *walPerShard) compact(id, index uint64) error { return l.stores[id-1].Compact(index) }

func (l *walPerShard) close() error {
	var errs []error
	for _, st := range l.stores {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
