package main

import (
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/multiraft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// TestShardedTornBootstrapCompleted: a new member's first write holds
// every shard's bootstrap (entries, then hard state) in one Save. A power
// cut during it can keep some shards' part and not others', or a shard's
// entries without its hard state: such a shard has no configuration (its
// bootstrap is not committed), and in a one-member cluster nobody would
// ever campaign for it. Restarted, every shard gets a leader.
func TestShardedTornBootstrapCompleted(t *testing.T) {
	const shards = 16
	// How many operations opening a new log takes: the next one is the
	// first Save's write.
	probe := crashfs.New()
	opts := wal.Options{FS: probe, SegmentSize: 64 << 10} // not the default 64 MiB, kept in memory
	l, err := openShardLog(filepath.Join(t.TempDir(), "member-1"), shards, false, opts)
	require.NoError(t, err)
	opened := probe.Ops()
	require.NoError(t, l.close())

	torn := 0
	// TearWrites: a prefix of the write survives, cut at a sector. (With
	// sectors kept at random, the log reports the gap as corruption, by
	// design: see wal.ErrCorrupt.)
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			disk, quiet := crashfs.New(), true
			c := &shardedTestCluster{t: t, shards: shards, dir: t.TempDir(), peers: map[uint64]string{},
				reserved: map[uint64]net.Listener{}, members: map[uint64]*shardedMember{},
				tweak: func(cfg *memberConfig) {
					cfg.walFS, cfg.walSegmentSize = disk, opts.SegmentSize
					if quiet { // the power cut's error
						cfg.Logger = slog.New(slog.DiscardHandler)
					}
				}}
			t.Cleanup(func() {
				for _, m := range c.members {
					m.stop()
				}
			})
			c.reservePeer(1)
			disk.CutPowerAfter(opened + 1)
			m := c.start(1, false)
			select {
			case <-m.Failed():
			case <-time.After(10 * time.Second):
				t.Fatal("the power cut did not stop the member")
			}
			m.stop()
			delete(c.members, 1)
			disk.Crash(crashfs.TearWrites, seed)
			if tornBootstrap(t, disk, m.cfg.DataDir, shards) {
				torn++
			}
			quiet = false

			l, err := net.Listen("tcp", c.peers[1])
			require.NoError(t, err)
			c.reserved[1] = l
			c.start(1, false)
			c.waitLeaders()
		})
	}
	require.NotZero(t, torn, "no power cut left a shard without a configuration beside a log that is not empty")
}

// tornBootstrap reports whether the shards' log in dataDir holds something
// (so a member does not bootstrap it anew) while some shard has no
// configuration (neither a snapshot nor a committed entry).
func tornBootstrap(t *testing.T, disk *crashfs.FS, dataDir string, shards int) bool {
	t.Helper()
	ml, err := wal.OpenMulti(filepath.Join(dataDir, shardLogDir), wal.Options{FS: disk, SegmentSize: 64 << 10})
	require.NoError(t, err)
	defer ml.Close()
	unconfigured := 0
	for id := uint64(1); id <= uint64(shards); id++ {
		g, err := ml.Group(id)
		require.NoError(t, err)
		snap, err := g.Snapshot()
		require.NoError(t, err)
		if raft.IsEmptySnap(snap) && g.HardState().Commit == 0 {
			unconfigured++
		}
	}
	return unconfigured > 0 && len(ml.Groups()) > 0
}

// TestTornBootstrapCompleted: a single group's first write holds its
// bootstrap, the entries then the hard state that commits them. A power
// cut that keeps part of it (a write cut at a sector boundary, see
// TestShardedTornBootstrapCompleted) can leave entries without the hard
// state: a log with no configuration, which a member does not bootstrap
// again and cannot campaign with. Restarted, the members elect a leader
// and serve writes, also when every member's first write was torn so.
func TestTornBootstrapCompleted(t *testing.T) {
	const segmentSize = 64 << 10 // not the default 64 MiB, kept in memory
	// How many operations opening a new log takes: the next one is the
	// first Save's write.
	probe := crashfs.New()
	st, err := wal.Open(filepath.Join(t.TempDir(), "member-1", "raft"), wal.Options{FS: probe, SegmentSize: segmentSize})
	require.NoError(t, err)
	opened := probe.Ops()
	require.NoError(t, st.Close())

	for _, tt := range []struct {
		name string
		kept []int // of each member's bootstrap entries, how many survived
	}{
		{"one member", []int{1}},
		{"three members, each kept a prefix", []int{3, 1, 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			disks := map[uint64]*crashfs.FS{}
			quiet := true
			c := &testCluster{t: t, dir: t.TempDir(), peers: map[uint64]string{}, members: map[uint64]*member{},
				tweak: func(cfg *memberConfig) {
					cfg.walFS, cfg.walSegmentSize = disks[cfg.ID], segmentSize
					if quiet { // the power cut's error
						cfg.Logger = slog.New(slog.DiscardHandler)
					}
				}}
			t.Cleanup(func() {
				for _, m := range c.members {
					m.stop()
				}
			})
			for id := range uint64(len(tt.kept)) {
				c.reservePeer(id + 1)
			}
			for i, kept := range tt.kept {
				id := uint64(i + 1)
				// The first start: the power fails at the first write, which
				// is lost.
				disk := crashfs.New()
				disks[id] = disk
				disk.CutPowerAfter(opened)
				m := c.start(id, false)
				select {
				case <-m.Failed():
				case <-time.After(10 * time.Second):
					t.Fatal("the power cut did not stop the member")
				}
				c.stop(id)
				disk.Crash(crashfs.DropUnsynced, 0)
				l, err := net.Listen("tcp", c.peers[id])
				require.NoError(t, err)
				c.reserved[id] = l
				// What a tear after the entries would have kept.
				ents := bootstrapEntries(t, id, c.peers)
				require.Len(t, ents, len(tt.kept))
				st, err := wal.Open(filepath.Join(m.cfg.DataDir, "raft"), wal.Options{FS: disk, SegmentSize: segmentSize})
				require.NoError(t, err)
				last, err := st.LastIndex()
				require.NoError(t, err)
				require.Zero(t, last, "the first write was lost")
				require.NoError(t, st.Save(pb.HardState{}, ents[:kept], pb.Snapshot{}))
				require.NoError(t, st.Close())
			}
			quiet = false
			for id := range uint64(len(tt.kept)) {
				c.start(id+1, false)
			}
			c.waitLeader()
			put(t, c.url(1, "/kv/k"), "v")
			require.Equal(t, "v", get(t, c.url(1, "/kv/k")).body)
		})
	}
}

// bootstrapEntries returns the entries of the first Ready of member id
// bootstrapped with peers, as the library makes them.
func bootstrapEntries(t *testing.T, id uint64, peers map[uint64]string) []pb.Entry {
	t.Helper()
	var boot []raft.Peer
	for pid := uint64(1); pid <= uint64(len(peers)); pid++ {
		boot = append(boot, raft.Peer{ID: pid, Context: mustJSON(confContext{Peer: peers[pid]})})
	}
	rn, err := raft.NewRawNode(&raft.Config{ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: raft.NewMemoryStorage(),
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16, Logger: raft.DiscardLogger})
	require.NoError(t, err)
	require.NoError(t, rn.Bootstrap(boot))
	rd := rn.Ready()
	require.NotZero(t, rd.HardState.Commit, "the hard state commits the bootstrap")
	return rd.Entries
}

// TestJoinedMemberCompletesNoBootstrap: a member that joined holds what
// the shards' leaders sent it, and nothing for a shard it has not heard
// from yet. Restarted without --join, it must not take such a log, nor one
// a crash left a prefix of the cluster's first entries in, for a torn
// bootstrap of its own: its --initial-cluster names itself, the cluster's
// first configuration did not, and completing them would commit entries
// the cluster never had.
func TestJoinedMemberCompletesNoBootstrap(t *testing.T) {
	const shards = 4
	disk := crashfs.New()
	opts := wal.Options{FS: disk, SegmentSize: 64 << 10}
	c := &shardedTestCluster{t: t, shards: shards, dir: t.TempDir(), peers: map[uint64]string{},
		reserved: map[uint64]net.Listener{}, members: map[uint64]*shardedMember{},
		tweak: func(cfg *memberConfig) { cfg.walFS, cfg.walSegmentSize = disk, opts.SegmentSize }}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.stop()
		}
		for _, l := range c.reserved {
			l.Close()
		}
	})
	for id := range uint64(3) {
		c.reservePeer(id + 1)
	}
	// The cluster's first entries (members 1 to 3), before member 4 joined.
	first := bootstrapEntries(t, 1, maps.Clone(c.peers))
	c.reservePeer(4)

	// Member 4 heard from shard 1's leader; shard 2's first append reached
	// it torn (its entries, not the hard state); shards 3 and 4 nothing.
	dataDir := filepath.Join(c.dir, "member-4")
	l, err := openShardLog(dataDir, shards, false, opts)
	require.NoError(t, err)
	var rd multiraft.Ready
	rd.Groups = append(rd.Groups,
		multiraft.GroupReady{GroupID: 1, Ready: raft.Ready{HardState: pb.HardState{Term: 2, Commit: 3}, Entries: first}},
		multiraft.GroupReady{GroupID: 2, Ready: raft.Ready{Entries: first[:2]}})
	require.NoError(t, l.saveReady(&rd))
	require.NoError(t, l.close())

	m := c.start(4, false)
	for sh, want := range map[uint64]uint64{1: 3, 2: 2, 3: 0, 4: 0} {
		st := m.store.storage(sh)
		last, err := st.LastIndex()
		require.NoError(t, err)
		require.Equal(t, want, last, "shard %d's last index", sh)
		hs, _, err := st.InitialState()
		require.NoError(t, err)
		if sh != 1 {
			require.Zero(t, hs.Commit, "shard %d's commit index", sh)
		}
	}
}

// TestBootstrapRest: what completes a log's bootstrap, by what the log
// holds.
func TestBootstrapRest(t *testing.T) {
	peers := map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3"}
	boot := bootstrapEntries(t, 1, peers)
	bootHS := pb.HardState{Term: 1, Commit: 3}
	other := bootstrapEntries(t, 1, map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:9"})
	leader := pb.Entry{Term: 2, Index: 4}
	for _, tt := range []struct {
		name    string
		hs      pb.HardState
		ents    []pb.Entry
		snap    bool
		ok      bool
		rest    []pb.Entry
		wantHS  pb.HardState
		refused bool
	}{
		{name: "empty", ok: true, rest: boot, wantHS: bootHS},
		{name: "a prefix", ents: boot[:1], ok: true, rest: boot[1:], wantHS: bootHS},
		{name: "every entry", ents: boot, ok: true, rest: []pb.Entry{}, wantHS: bootHS},
		{name: "a vote kept", hs: pb.HardState{Term: 3, Vote: 2}, ents: boot[:2], ok: true, rest: boot[2:],
			wantHS: pb.HardState{Term: 3, Vote: 2, Commit: 3}},
		{name: "a leader's entry after them", ents: append(slices.Clone(boot), leader), ok: true, rest: []pb.Entry{}, wantHS: bootHS},
		{name: "committed", hs: pb.HardState{Term: 1, Commit: 3}, ents: boot[:3]},
		{name: "a snapshot", snap: true},
		{name: "another cluster's entries", ents: other[:2], refused: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := raft.NewMemoryStorage()
			if tt.snap {
				require.NoError(t, st.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 5, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1}}}}))
			}
			require.NoError(t, st.Append(tt.ents))
			if !raft.IsEmptyHardState(tt.hs) {
				require.NoError(t, st.SetHardState(tt.hs))
			}
			rest, hs, ok, err := bootstrapRest(st, boot, bootHS)
			if tt.refused {
				require.ErrorIs(t, err, errNotBootstrap)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.ok, ok)
			if tt.ok {
				require.Equal(t, len(tt.rest), len(rest))
				for i := range rest {
					require.Equal(t, tt.rest[i].Index, rest[i].Index)
				}
				require.Equal(t, tt.wantHS, hs)
			}
		})
	}
}

// TestCompletionUsesTheRecordedInitialCluster: a member whose first write
// was torn and whose --initial-cluster changed before it restarted (a
// member added, here) completes its bootstrap with the members it wrote
// first, as every other member did, not with the new list: completing with
// the new one would commit "add 4" at index 4, where the cluster has
// another entry.
func TestCompletionUsesTheRecordedInitialCluster(t *testing.T) {
	dir := t.TempDir()
	first := map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3"}
	cfg := memberConfig{ID: 1, DataDir: dir, InitialCluster: first, Logger: slog.New(slog.DiscardHandler)}
	require.NoError(t, cfg.markBootstrap())
	boot := bootstrapEntries(t, 1, first)
	require.Len(t, boot, 3)
	st, err := wal.Open(filepath.Join(dir, "raft"), wal.Options{})
	require.NoError(t, err)
	require.NoError(t, st.Save(pb.HardState{}, boot[:2], pb.Snapshot{})) // torn: entries 1 and 2 only
	require.NoError(t, st.Close())

	cfg.InitialCluster = map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3", 4: "127.0.0.1:4"}
	m := newMember(cfg)
	require.NoError(t, m.openStorage())
	defer m.store.Close()
	require.NoError(t, m.prepareBootstrap(false))
	hs, _, err := m.store.InitialState()
	require.NoError(t, err)
	last, err := m.store.LastIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(3), hs.Commit)
	require.Equal(t, uint64(3), last)
	got, err := m.store.Entries(1, 4, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, boot, got, "the entries of the first bootstrap")
}

// TestUnreadableBootstrapRecordRefused: a bootstrap record that does not
// say with which members the member bootstrapped stops the start rather
// than guess.
func TestUnreadableBootstrapRecordRefused(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, writeFileSynced(dir, bootstrapMarker, []byte("this member bootstrapped a new cluster in this directory\n")))
	cfg := memberConfig{ID: 1, DataDir: dir, InitialCluster: map[uint64]string{1: "127.0.0.1:1"}, Logger: slog.New(slog.DiscardHandler)}
	_, err := cfg.bootstrappedWith()
	require.ErrorContains(t, err, "does not record the initial members")
}

// TestJoinedMemberRestartedWithoutJoinDoesNotBootstrap: a member started
// once with --join records it; restarted without --join on a log it had
// not received anything into yet, it still waits for the cluster instead
// of bootstrapping one of its own --initial-cluster.
func TestJoinedMemberRestartedWithoutJoinDoesNotBootstrap(t *testing.T) {
	dir := t.TempDir()
	cfg := memberConfig{ID: 4, DataDir: dir, Join: true, Logger: slog.New(slog.DiscardHandler),
		InitialCluster: map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3", 4: "127.0.0.1:4"}}
	first := newMember(cfg)
	require.NoError(t, first.openStorage())
	require.NoError(t, first.startRaft())
	require.NoError(t, first.store.Close())

	cfg.Join = false
	m := newMember(cfg)
	require.NoError(t, m.openStorage())
	defer m.store.Close()
	require.NoError(t, m.startRaft())
	require.False(t, m.rn.HasReady(), "nothing to write: no bootstrap")
	require.Empty(t, m.rn.Status().Config.Voters[0], "no configuration of its own")
	cluster, err := cfg.bootstrappedWith()
	require.NoError(t, err)
	require.Nil(t, cluster, "no bootstrap recorded")

	// A member that never joined bootstraps, as before.
	fresh := cfg
	fresh.DataDir = t.TempDir()
	n := newMember(fresh)
	require.NoError(t, n.openStorage())
	defer n.store.Close()
	require.NoError(t, n.startRaft())
	require.True(t, n.rn.HasReady(), "a fresh member started without --join bootstraps")
}
