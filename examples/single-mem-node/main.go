// Command single-mem-node runs one raftcore node on MemoryStorage and
// drives it the way a real server does: a ticker for Tick, and a loop that
// persists, sends, applies and advances every Ready. It replicates a tiny
// key-value state machine, prints every applied command and the final
// status, and exits.
//
//	go run ./examples/single-mem-node
//
// With -wal DIR the log lives durably in DIR (package wal) instead: run it
// again with the same DIR and the node recovers its log, re-applies what
// was committed, and goes on from there.
//
//	go run ./examples/single-mem-node -wal /tmp/raftcore-example
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
)

const (
	nodeID    = 1
	proposals = 30
)

// kvStore is the replicated state machine: commands are "set key=value".
type kvStore struct {
	out      io.Writer
	data     map[string]string
	applied  uint64
	commands int // commands applied
}

func (s *kvStore) apply(e pb.Entry) {
	s.applied = e.Index
	if e.Type != pb.EntryNormal || len(e.Data) == 0 {
		return // conf changes and the leader's empty entries change no data
	}
	cmd := string(e.Data)
	kv, ok := strings.CutPrefix(cmd, "set ")
	if !ok {
		fmt.Fprintf(s.out, "  %3d: ignoring unknown command %q\n", e.Index, cmd)
		return
	}
	key, value, _ := strings.Cut(kv, "=")
	s.data[key] = value
	s.commands++
	fmt.Fprintf(s.out, "  %3d: %s\n", e.Index, cmd)
}

// restore replaces the state with snap's: its data holds one "key=value"
// line per key. (This example takes no snapshots; a node gets one from
// its leader when it is too far behind, or finds one in its storage after
// a restart if the application took one.)
func (s *kvStore) restore(snap pb.Snapshot) error {
	s.data = map[string]string{}
	for line := range strings.Lines(string(snap.Data)) {
		key, value, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok {
			return fmt.Errorf("snapshot at %d: bad line %q", snap.Metadata.Index, line)
		}
		s.data[key] = value
	}
	s.applied = snap.Metadata.Index
	fmt.Fprintf(s.out, "  %3d: restored a snapshot of %d keys\n", s.applied, len(s.data))
	return nil
}

func main() {
	walDir := flag.String("wal", "", "keep the log durably in this directory (package wal) instead of in memory")
	flag.Parse()
	if _, err := run(*walDir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "single-mem-node:", err)
		os.Exit(1)
	}
}

// nodeStorage is what the loop reads through (the core) and writes to
// (persist): either MemoryStorage or the durable wal.Storage.
type nodeStorage struct {
	raft.Storage
	persist func(rd raft.Ready) error
	close   func() error
}

func memStorage(ms *raft.MemoryStorage) nodeStorage {
	return nodeStorage{Storage: ms, close: func() error { return nil }, persist: func(rd raft.Ready) error {
		return ms.Save(rd.HardState, rd.Entries, rd.Snapshot)
	}}
}

func openStorage(walDir string) (nodeStorage, error) {
	if walDir == "" {
		return memStorage(raft.NewMemoryStorage()), nil
	}
	ws, err := wal.Open(walDir, wal.Options{})
	if err != nil {
		return nodeStorage{}, err
	}
	// One write per Ready, synced when rd.MustSync says so.
	return nodeStorage{Storage: ws, close: ws.Close, persist: func(rd raft.Ready) error {
		return ws.Save(rd.HardState, rd.Entries, rd.Snapshot)
	}}, nil
}

// run proposes 30 commands, waits until they are applied, prints the state
// to out and returns it.
func run(walDir string, out io.Writer) (_ *kvStore, err error) {
	// Only warnings and errors from the core, to keep the output readable.
	raft.SetLogger(raft.NewSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))

	storage, err := openStorage(walDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := storage.close(); err == nil {
			err = cerr
		}
	}()
	node, err := raft.NewRawNode(&raft.Config{
		ID:              nodeID,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		CheckQuorum:     true,
		PreVote:         true,
	})
	if err != nil {
		return nil, err
	}
	kv := &kvStore{out: out, data: map[string]string{}}
	last, err := storage.LastIndex()
	if err != nil {
		return nil, err
	}
	if last == 0 {
		// A new node: bootstrap the one-member cluster.
		if err := node.Bootstrap([]raft.Peer{{ID: nodeID}}); err != nil {
			return nil, err
		}
	} else {
		hs, _, err := storage.InitialState()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "recovered a log of %d entries from %s (term %d, commit %d); re-applying:\n", last, walDir, hs.Term, hs.Commit)
		// The log after a snapshot is applied on top of it.
		snap, err := storage.Snapshot()
		if err == nil && !raft.IsEmptySnap(snap) {
			err = kv.restore(snap)
		}
		if err != nil {
			return nil, err
		}
	}

	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.After(10 * time.Second)

	proposed := 0
	for proposed < proposals || kv.applied < node.BasicStatus().Commit || node.HasReady() {
		if node.BasicStatus().RaftState == raft.StateLeader && proposed < proposals {
			cmd := fmt.Sprintf("set k%d=v%d", proposed%7, proposed)
			if err := node.Propose([]byte(cmd)); err == nil {
				proposed++
			}
		}
		if node.HasReady() {
			if err := handleReady(node, storage, kv, node.Ready()); err != nil {
				return nil, err
			}
			continue
		}
		// Nothing to do until time passes.
		select {
		case <-ticker.C:
			node.Tick()
		case <-deadline:
			return nil, fmt.Errorf("gave up after 10s: %s", node.Status())
		}
	}

	fmt.Fprintln(out, "final state:")
	keys := make([]string, 0, len(kv.data))
	for k := range kv.data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(out, "  %s = %s\n", k, kv.data[k])
	}
	fmt.Fprintln(out, "status:", node.Status())
	return kv, nil
}

// handleReady follows the Ready contract for rd, just taken from node:
// persist, send, apply, advance.
func handleReady(node *raft.RawNode, storage nodeStorage, kv *kvStore, rd raft.Ready) error {
	// 1. Persist the snapshot, entries and hard state (wal.Storage syncs
	//    when rd.MustSync).
	if err := storage.persist(rd); err != nil {
		return err
	}

	// 2. Send messages. A single node has no peers, so there are none.
	for _, m := range rd.Messages {
		return fmt.Errorf("unexpected message to %d: %s", m.To, raft.DescribeMessage(m, nil))
	}

	// 3. Apply the snapshot, then committed entries (conf changes through
	//    ApplyConfChange).
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := kv.restore(rd.Snapshot); err != nil {
			return err
		}
	}
	for _, e := range rd.CommittedEntries {
		if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
			cc, err := pb.UnmarshalConfChange(e)
			if err != nil {
				return err
			}
			node.ApplyConfChange(cc)
		}
		kv.apply(e)
	}

	// 4. Tell the node this Ready is done.
	node.Advance(rd)
	return nil
}
