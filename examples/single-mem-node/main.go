// Command single-mem-node runs one raftcore node on MemoryStorage and
// drives it the way a real server does: a ticker for Tick, and a loop that
// persists, sends, applies and advances every Ready. It replicates a tiny
// key-value state machine, prints every applied command and the final
// status, and exits.
//
//	go run ./examples/single-mem-node
package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

const (
	nodeID    = 1
	proposals = 30
)

// kvStore is the replicated state machine: commands are "set key=value".
type kvStore struct {
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
		fmt.Printf("  %3d: ignoring unknown command %q\n", e.Index, cmd)
		return
	}
	key, value, _ := strings.Cut(kv, "=")
	s.data[key] = value
	s.commands++
	fmt.Printf("  %3d: %s\n", e.Index, cmd)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "single-mem-node:", err)
		os.Exit(1)
	}
}

func run() error {
	// Only warnings and errors from the core, to keep the output readable.
	raft.SetLogger(raft.NewSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))

	storage := raft.NewMemoryStorage()
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
		return err
	}
	if err := node.Bootstrap([]raft.Peer{{ID: nodeID}}); err != nil {
		return err
	}

	kv := &kvStore{data: map[string]string{}}
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.After(10 * time.Second)

	proposed := 0
	for kv.commands < proposals {
		if node.BasicStatus().RaftState == raft.StateLeader && proposed < proposals {
			cmd := fmt.Sprintf("set k%d=v%d", proposed%7, proposed)
			if err := node.Propose([]byte(cmd)); err == nil {
				proposed++
			}
		}
		if node.HasReady() {
			if err := handleReady(node, storage, kv); err != nil {
				return err
			}
			continue
		}
		// Nothing to do until time passes.
		select {
		case <-ticker.C:
			node.Tick()
		case <-deadline:
			return fmt.Errorf("gave up after 10s: %s", node.Status())
		}
	}

	fmt.Println("final state:")
	keys := make([]string, 0, len(kv.data))
	for k := range kv.data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  %s = %s\n", k, kv.data[k])
	}
	fmt.Println("status:", node.Status())
	return nil
}

// handleReady follows the Ready contract: persist, send, apply, advance.
func handleReady(node *raft.RawNode, storage *raft.MemoryStorage, kv *kvStore) error {
	rd := node.Ready()

	// 1. Persist the snapshot, entries and hard state. A disk-backed
	//    storage would fsync here when rd.MustSync.
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := storage.ApplySnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := storage.Append(rd.Entries); err != nil {
		return err
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := storage.SetHardState(rd.HardState); err != nil {
			return err
		}
	}

	// 2. Send messages. A single node has no peers, so there are none.
	for _, m := range rd.Messages {
		return fmt.Errorf("unexpected message to %d: %s", m.To, raft.DescribeMessage(m, nil))
	}

	// 3. Apply committed entries, conf changes through ApplyConfChange.
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
	node.Advance()
	return nil
}
