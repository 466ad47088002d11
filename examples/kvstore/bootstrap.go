package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// A new cluster's members each bootstrap their log (each shard's, with
// --shards): the first Ready of a bootstrapped RawNode carries the
// configuration entries, one per initial member, and a hard state that
// commits them, and the member's first Save writes them in that order. A
// power cut during that write can keep the entries (some of them, or with
// --shards some shards' and not others') without the hard state: the
// restarted member then holds a log, so bootstraps nothing, but no
// committed configuration either, so it never campaigns. In a cluster of
// one, or where every member lost its first write so, nobody ever would.
//
// The bootstrap entries are committed by definition, the same on every
// member: a log that holds a prefix of them and nothing committed is
// completed on restart, the missing entries appended and the hard state
// that commits them written, keeping the term and vote the log had
// (bootstrapRest; the members' prepareBootstrap). Logs with a snapshot or
// a commit index are left as they are, and nothing is wiped: with
// --shards, the shards whose part of the write survived keep what they
// did since.
//
// Only a member that bootstrapped in this data directory does so: a member
// that joined (--join) holds what leaders sent it, a shard it has not heard
// from yet is empty, and it may be restarted without --join; completing
// its logs with its own bootstrap (its --initial-cluster names itself, the
// cluster's first configuration did not) would commit entries the cluster
// never had. So a member about to bootstrap first records it, durably,
// with its initial members, before its first write (bootstrapMarker); a
// completion rebuilds the entries from the recorded members. A data
// directory without the record (a member that joined, or one written by
// an earlier version) is never completed.

// bootstrapMarker is the file of a data directory that records that the
// member bootstrapped a new cluster there.
const bootstrapMarker = "bootstrapped"

// markBootstrap records, durably, that the member bootstraps a new cluster
// in its data directory, and with which initial members: a completion
// rebuilds the entries the member wrote first, whatever --initial-cluster
// says at a restart (a member added to it since, or an address changed,
// would otherwise be committed where the cluster has another entry).
// Called before the bootstrap is first saved.
func (cfg memberConfig) markBootstrap() error {
	if cfg.InMemory || cfg.DataDir == "" {
		return nil
	}
	if cluster, err := cfg.bootstrappedWith(); cluster != nil || err != nil {
		return err
	}
	return writeFileSynced(cfg.DataDir, bootstrapMarker, mustJSON(bootstrapRecord{InitialCluster: cfg.InitialCluster}))
}

// bootstrapRecord is the content of bootstrapMarker.
type bootstrapRecord struct {
	InitialCluster map[uint64]string `json:"initial_cluster"`
}

// bootstrappedWith returns the initial members the member bootstrapped a
// new cluster with in its data directory (markBootstrap), or nil if it did
// not bootstrap there.
func (cfg memberConfig) bootstrappedWith() (map[uint64]string, error) {
	if cfg.InMemory || cfg.DataDir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, bootstrapMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec bootstrapRecord
	if err := json.Unmarshal(b, &rec); err != nil || len(rec.InitialCluster) == 0 {
		return nil, fmt.Errorf("%s does not record the initial members (%v): remove it to start without completing a torn bootstrap", filepath.Join(cfg.DataDir, bootstrapMarker), err)
	}
	return rec.InitialCluster, nil
}

// joinedMarker is the file of a data directory that records that the
// member joined an existing cluster there (--join).
const joinedMarker = "joined"

// joining reports whether the member joins an existing cluster rather than
// bootstrap one: started with --join, or with it before in this data
// directory (recorded, durably, the first time). A joined member restarted
// without --join on a log it had not yet received anything into would
// otherwise bootstrap a cluster of its own --initial-cluster.
func (cfg memberConfig) joining() (bool, error) {
	if cfg.InMemory || cfg.DataDir == "" {
		return cfg.Join, nil
	}
	_, err := os.Stat(filepath.Join(cfg.DataDir, joinedMarker))
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	case !cfg.Join:
		return false, nil
	}
	return true, writeFileSynced(cfg.DataDir, joinedMarker, []byte("this member joined an existing cluster in this directory\n"))
}

// bootstrapToComplete records that the member bootstraps, if bootstrap,
// before anything is saved (markBootstrap). Otherwise, if the member
// bootstrapped here, it returns the entries and hard state of that
// bootstrap, rebuilt from the recorded members, for completing the logs a
// power cut during the first write left without a configuration
// (bootstrapRest); no entries when there is nothing to complete.
func (cfg memberConfig) bootstrapToComplete(bootstrap bool) ([]pb.Entry, pb.HardState, error) {
	if bootstrap {
		return nil, pb.HardState{}, cfg.markBootstrap()
	}
	cluster, err := cfg.bootstrappedWith()
	if cluster == nil || err != nil {
		return nil, pb.HardState{}, err
	}
	return bootstrapLog(cfg.ID, bootstrapPeers(cluster))
}

// bootstrapPeers are the members a new cluster bootstraps with: the
// initial cluster in increasing id order, so that every member writes the
// same entry at each index.
func bootstrapPeers(cluster map[uint64]string) []raft.Peer {
	var peers []raft.Peer
	for _, id := range slices.Sorted(maps.Keys(cluster)) {
		peers = append(peers, raft.Peer{ID: id, Context: mustJSON(confContext{Peer: cluster[id]})})
	}
	return peers
}

// bootstrapLog returns what member id bootstrapped with peers saves first:
// the entries and hard state of its first Ready, as the library makes
// them.
func bootstrapLog(id uint64, peers []raft.Peer) ([]pb.Entry, pb.HardState, error) {
	rn, err := raft.NewRawNode(&raft.Config{
		ID: id, ElectionTick: electionTick, HeartbeatTick: 1, Storage: raft.NewMemoryStorage(),
		MaxSizePerMsg: math.MaxUint64, MaxInflightMsgs: 1, Logger: raft.DiscardLogger,
	})
	if err != nil {
		return nil, pb.HardState{}, err
	}
	if err := rn.Bootstrap(peers); err != nil {
		return nil, pb.HardState{}, err
	}
	rd := rn.Ready()
	return rd.Entries, rd.HardState, nil
}

// errNotBootstrap: a log without a committed configuration does not start
// with this member's bootstrap entries.
var errNotBootstrap = errors.New("the log has no committed configuration and does not start with this member's bootstrap (another --initial-cluster, or a member that joined started without --join): left as it is")

// bootstrapRest returns what completes the bootstrap of st, given the
// bootstrap's entries and hard state (bootstrapLog): the entries st lacks
// and the hard state committing them, keeping st's term and vote. It
// returns ok false if st has a configuration (a snapshot or a commit
// index), and errNotBootstrap if st holds entries other than the
// bootstrap's.
func bootstrapRest(st raft.Storage, boot []pb.Entry, bootHS pb.HardState) (ents []pb.Entry, hs pb.HardState, ok bool, err error) {
	had, _, err := st.InitialState()
	if err != nil {
		return nil, hs, false, err
	}
	snap, err := st.Snapshot()
	if err != nil || !raft.IsEmptySnap(snap) || had.Commit > 0 {
		return nil, hs, false, err
	}
	last, err := st.LastIndex()
	if err != nil {
		return nil, hs, false, err
	}
	n := min(last, uint64(len(boot)))
	if n > 0 {
		got, err := st.Entries(1, n+1, math.MaxUint64)
		if err != nil {
			return nil, hs, false, err
		}
		for i, e := range got {
			b := boot[i]
			if e.Index != b.Index || e.Term != b.Term || e.Type != b.Type || !bytes.Equal(e.Data, b.Data) {
				return nil, hs, false, fmt.Errorf("%w (entry %d)", errNotBootstrap, e.Index)
			}
		}
	}
	hs = pb.HardState{Term: max(had.Term, bootHS.Term), Vote: had.Vote, Commit: bootHS.Commit}
	return boot[n:], hs, true, nil
}
