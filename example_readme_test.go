package raft_test

// The Go code shown in README.md lives here, between "readme:begin NAME"
// and "readme:end" lines, inside examples that run it for real; around it,
// small stand-ins play the parts the README leaves to the application (a
// transport, a state machine, a ticker). TestREADMEGoBlocks checks that
// README.md shows exactly these regions.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
)

// printingMachine is a key-value state machine ("key=value" commands) that
// prints what it applies and closes done once it has applied want
// commands. onLeader, if set, runs when the first empty entry (a new
// leader's) is applied.
type printingMachine struct {
	mu       sync.Mutex
	data     map[string]string
	applied  uint64
	want     int
	done     chan struct{}
	onLeader func()
}

func newPrintingMachine(want int, done chan struct{}, onLeader func()) *printingMachine {
	return &printingMachine{data: map[string]string{}, want: want, done: done, onLeader: onLeader}
}

func (m *printingMachine) Apply(e raftpb.Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied = e.Index
	switch {
	case e.Type != raftpb.EntryNormal:
	case len(e.Data) == 0:
		if m.onLeader != nil {
			m.onLeader()
			m.onLeader = nil
		}
	default:
		k, v, _ := strings.Cut(string(e.Data), "=")
		m.data[k] = v
		fmt.Printf("applied %d: %s\n", e.Index, e.Data)
		if m.want--; m.want == 0 && m.done != nil {
			close(m.done)
		}
	}
}

func (m *printingMachine) Applied() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

func (m *printingMachine) Get(key string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data[key]
}

func (m *printingMachine) Serialize() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := json.Marshal(m.data)
	if err != nil {
		panic(err)
	}
	return b
}

func (m *printingMachine) Restore(data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = map[string]string{}
	if err := json.Unmarshal(data, &m.data); err != nil {
		panic(err)
	}
}

// soloTransport is the transport of a single-member cluster: there is no
// one to send to.
type soloTransport struct{}

func (soloTransport) Send(msgs []raftpb.Message) {
	if len(msgs) > 0 {
		panic(fmt.Sprintf("a single member sends nothing, got %v", msgs[0].Type))
	}
}

// feed sends cmds on ch, in order.
func feed(ch chan<- []byte, cmds ...string) {
	for _, c := range cmds {
		ch <- []byte(c)
	}
}

// A single-member cluster started with RawNode and driven by the Ready loop
// of README.md: it elects itself, then applies what is proposed.
func Example_readyLoop() {
	peers := []raft.Peer{{ID: 1}}
	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
	fromPeers := make(chan raftpb.Message)
	proposals := make(chan []byte)
	done := make(chan struct{})
	transport := soloTransport{}
	stateMachine := newPrintingMachine(3, done, func() { go feed(proposals, "x=1", "y=2", "x=3") })
	run := func() error {
		// readme:begin ready-loop
		storage := raft.NewMemoryStorage()
		node, err := raft.NewRawNode(&raft.Config{
			ID:              1,
			ElectionTick:    10,
			HeartbeatTick:   1,
			Storage:         storage,
			MaxSizePerMsg:   1 << 20, // bytes of entries in one append
			MaxInflightMsgs: 256,     // appends in flight to one follower
		})
		if err != nil {
			return err
		}
		if err := node.Bootstrap(peers); err != nil { // a new cluster; not on restart
			return err
		}
		for {
			select {
			case <-ticker.C:
				node.Tick()
			case m := <-fromPeers:
				_ = node.Step(m) // errors: the message was dropped, nothing changed
			case data := <-proposals:
				_ = node.Propose(data) // raft.ErrProposalDropped: no leader yet, retry later
			case <-done:
				return nil
			}
			for node.HasReady() {
				rd := node.Ready()
				// 1. Persist: snapshot, entries, hard state (fsync if rd.MustSync).
				if err := storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
					return err
				}
				// 2. Send: only after persisting.
				transport.Send(rd.Messages)
				// 3. Apply: the snapshot, then committed entries in order.
				if !raft.IsEmptySnap(rd.Snapshot) {
					stateMachine.Restore(rd.Snapshot.Data)
				}
				for _, e := range rd.CommittedEntries {
					if e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2 {
						cc, err := raftpb.UnmarshalConfChange(e)
						if err != nil {
							return err
						}
						node.ApplyConfChange(cc)
					}
					stateMachine.Apply(e)
				}
				// 4. Acknowledge.
				node.Advance(rd)
			}
		}
		// readme:end
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// applied 3: x=1
	// applied 4: y=2
	// applied 5: x=3
}

// handleReady persists, sends and applies rd for n, as the Ready loop does.
func handleReady(n raft.Node, storage *raft.MemoryStorage, stateMachine *printingMachine, rd raft.Ready) error {
	if err := storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		return err
	}
	soloTransport{}.Send(rd.Messages)
	for _, e := range rd.CommittedEntries {
		if e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2 {
			cc, err := raftpb.UnmarshalConfChange(e)
			if err != nil {
				return err
			}
			n.ApplyConfChange(cc)
		}
		stateMachine.Apply(e)
	}
	return nil
}

// A single-member cluster driven through Node, as README.md shows it:
// proposals come from another goroutine and wait for the leader.
func Example_node() {
	storage := raft.NewMemoryStorage()
	cfg := &raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: storage,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256,
	}
	peers := []raft.Peer{{ID: 1}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fromPeers := make(chan raftpb.Message)
	defer close(fromPeers)
	proposals := make(chan []byte, 3)
	feed(proposals, "x=1", "y=2", "x=3")
	close(proposals)
	done := make(chan struct{})
	stateMachine := newPrintingMachine(3, done, nil)
	tickInterval := time.Millisecond
	handleReady := func(n raft.Node, rd raft.Ready) error { return handleReady(n, storage, stateMachine, rd) }
	run := func() error {
		// readme:begin node
		if err := cfg.Validate(); err != nil { // StartNode and RestartNode panic on an invalid Config
			return err
		}
		n := raft.StartNode(cfg, peers) // raft.RestartNode(cfg) when storage has state
		defer n.Stop()
		go func() { // deliver peers' messages from the transport
			for m := range fromPeers {
				_ = n.Step(ctx, m)
			}
		}()
		go func() { // propose, from any goroutine
			for data := range proposals {
				// Propose waits for a leader and returns once the proposal is taken.
				if err := n.Propose(ctx, data); err != nil {
					log.Printf("proposal not taken: %v", err)
				}
			}
		}()
		ticker := time.NewTicker(tickInterval) // e.g. 100 * time.Millisecond
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
				n.Tick()
			case rd := <-n.Ready():
				// Persist, send and apply as in the RawNode loop, then Advance.
				if err := handleReady(n, rd); err != nil {
					return err
				}
				n.Advance()
			case <-done:
				return nil
			}
		}
		// readme:end
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// applied 3: x=1
	// applied 4: y=2
	// applied 5: x=3
}

// A single-member cluster on Node with AsyncStorageWrites: writes and
// applies run on their own goroutines, as README.md shows.
func Example_asyncStorageWrites() {
	storage := raft.NewMemoryStorage()
	cfg := &raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: storage,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, AsyncStorageWrites: true,
	}
	ctx := context.Background()
	node := raft.StartNode(cfg, []raft.Peer{{ID: 1}})
	done := make(chan struct{})
	stateMachine := newPrintingMachine(3, done, nil)
	transport := soloTransport{}
	appendc, applyc := make(chan raftpb.Message, 64), make(chan raftpb.Message, 64)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // the append thread
		defer wg.Done()
		for m := range appendc {
			if m.Snapshot != nil {
				_ = storage.ApplySnapshot(*m.Snapshot)
			}
			_ = storage.Append(m.Entries)
			if hs := (raftpb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}); !raft.IsEmptyHardState(hs) {
				_ = storage.SetHardState(hs)
			}
			for _, resp := range m.Responses {
				_ = node.Step(ctx, resp) // a single member: every response is its own
			}
		}
	}()
	go func() { // the apply thread
		defer wg.Done()
		for m := range applyc {
			for _, e := range m.Entries {
				if e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2 {
					if cc, err := raftpb.UnmarshalConfChange(e); err == nil {
						node.ApplyConfChange(cc)
					}
				}
				stateMachine.Apply(e)
			}
			for _, resp := range m.Responses {
				_ = node.Step(ctx, resp)
			}
		}
	}()
	go func() { // a client
		defer wg.Done()
		for _, cmd := range []string{"x=1", "y=2", "x=3"} {
			_ = node.Propose(ctx, []byte(cmd)) // waits for the leader
		}
	}()
	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
loop:
	for {
		select {
		case <-ticker.C:
			node.Tick()
		case rd := <-node.Ready():
			// readme:begin async-storage-writes
			var toPeers []raftpb.Message
			for _, m := range rd.Messages {
				switch m.To {
				case raft.LocalAppendThread: // MsgStorageAppend
					appendc <- m // write m.Snapshot, m.Entries and the hard state
					//              (m.Term, m.Vote, m.Commit) in order, sync, then
					//              deliver m.Responses: node.Step those addressed to
					//              this node, send the others to their peers
				case raft.LocalApplyThread: // MsgStorageApply
					applyc <- m // apply m.Entries in order, then node.Step m.Responses
				default:
					toPeers = append(toPeers, m) // needs no durability: send at once
				}
			}
			transport.Send(toPeers)
			// readme:end
		case <-done:
			break loop
		}
	}
	node.Stop()
	close(appendc)
	close(applyc)
	wg.Wait()
	// Output:
	// applied 3: x=1
	// applied 4: y=2
	// applied 5: x=3
}

// soloRawNode is a single-member cluster on RawNode that has elected itself;
// drive handles every Ready, calling afterApply once its committed entries
// are applied.
type soloRawNode struct {
	node         *raft.RawNode
	storage      *raft.MemoryStorage
	stateMachine *printingMachine
	confState    raftpb.ConfState
}

func newSoloRawNode() *soloRawNode {
	s := &soloRawNode{storage: raft.NewMemoryStorage(), stateMachine: newPrintingMachine(-1, nil, nil)}
	node, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s.storage,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: raft.DiscardLogger,
	})
	if err != nil {
		panic(err)
	}
	if err := node.Bootstrap([]raft.Peer{{ID: 1}}); err != nil {
		panic(err)
	}
	s.node = node
	s.drive(nil)
	if err := node.Campaign(); err != nil {
		panic(err)
	}
	s.drive(nil)
	return s
}

func (s *soloRawNode) drive(afterApply func(rd raft.Ready)) {
	for s.node.HasReady() {
		rd := s.node.Ready()
		if err := s.storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			panic(err)
		}
		for _, e := range rd.CommittedEntries {
			if e.Type == raftpb.EntryConfChange {
				cc, err := raftpb.UnmarshalConfChange(e)
				if err != nil {
					panic(err)
				}
				s.confState = *s.node.ApplyConfChange(cc)
			}
			s.stateMachine.Apply(e)
		}
		if afterApply != nil {
			afterApply(rd)
		}
		s.node.Advance(rd)
	}
}

// pendingRead is a read waiting for its read index.
type pendingRead struct {
	key   string
	index uint64
	reply func(value string)
}

// A linearizable read on a single member, as README.md shows it.
func Example_readIndex() {
	solo := newSoloRawNode()
	node, stateMachine := solo.node, solo.stateMachine
	if err := node.Propose([]byte("x=1")); err != nil {
		panic(err)
	}
	solo.drive(nil)

	pendingReads := map[string]*pendingRead{}
	requestID := []byte("read-1")
	pendingReads[string(requestID)] = &pendingRead{key: "x", reply: func(v string) { fmt.Println("read x:", v) }}
	// readme:begin read-index
	node.ReadIndex(requestID) // a unique context per request
	// readme:end
	solo.drive(func(rd raft.Ready) {
		// readme:begin read-serve
		// In the Ready loop, after applying CommittedEntries:
		for _, rs := range rd.ReadStates {
			if r, ok := pendingReads[string(rs.RequestCtx)]; ok {
				r.index = rs.Index
			}
		}
		// Serve every pending read whose index the state machine has reached.
		for id, r := range pendingReads {
			if r.index > 0 && stateMachine.Applied() >= r.index {
				r.reply(stateMachine.Get(r.key))
				delete(pendingReads, id)
			}
		}
		// readme:end
	})
	fmt.Println("pending reads:", len(pendingReads))
	// Output:
	// applied 3: x=1
	// read x: 1
	// pending reads: 0
}

// waitingWrite is a client write waiting for its entry to apply.
type waitingWrite struct {
	term uint64
	done func(ok bool)
}

// Proposal feedback on a single member, as README.md shows it.
func Example_proposalFeedback() {
	solo := newSoloRawNode()
	node := solo.node
	waiting := map[uint64]waitingWrite{}   // by index
	forwarded := map[uint64]waitingWrite{} // by ForwardID
	fallBack := func(w waitingWrite) { fmt.Println("unknown: look for the write's request id in the state machine") }
	// readme:begin proposal-feedback
	w := waitingWrite{done: func(ok bool) {
		fmt.Println("x=1 committed:", ok) // false: overwritten after a leader change; retry
	}}
	res, err := node.ProposeWithResult([]byte("x=1"))
	switch {
	case errors.Is(err, raft.ErrProposalNoLeader), errors.Is(err, raft.ErrProposalLeaderTransfer):
		fmt.Println("no leader to take it now: retry soon")
	case err != nil:
		fmt.Println("dropped:", err) // the error names the reason
	case res.Forwarded:
		forwarded[res.ForwardID] = w // its place is not known yet: see ForwardedOutcomes
	default:
		w.term = res.Term
		waiting[res.Index] = w
	}
	// readme:end
	// readme:begin proposal-forwarded
	// After stepping messages, before applying the next Ready:
	for _, o := range node.ForwardedOutcomes() {
		w := forwarded[o.ForwardID]
		delete(forwarded, o.ForwardID)
		if o.Unknown {
			fallBack(w) // its entry was not seen here: it may or may not commit
			continue
		}
		w.term = o.Term // the leader of o.Term appended it at o.Index
		waiting[o.Index] = w
	}
	// readme:end
	solo.drive(func(rd raft.Ready) {
		// readme:begin proposal-applied
		// In the Ready loop, for every committed entry:
		for _, e := range rd.CommittedEntries {
			if w, ok := waiting[e.Index]; ok {
				delete(waiting, e.Index)
				w.done(e.Term == w.term) // the same index with another term is another entry
			}
		}
		// readme:end
	})
	// Output:
	// applied 3: x=1
	// x=1 committed: true
}

// Compaction on a single member's MemoryStorage, as README.md shows it.
func Example_compaction() {
	solo := newSoloRawNode()
	storage, stateMachine := solo.storage, solo.stateMachine
	for _, cmd := range []string{"x=1", "y=2"} {
		if err := solo.node.Propose([]byte(cmd)); err != nil {
			panic(err)
		}
	}
	solo.drive(nil)
	i, confState := stateMachine.Applied(), solo.confState
	compact := func() error {
		// readme:begin compaction
		if _, err := storage.CreateSnapshot(i, &confState, stateMachine.Serialize()); err != nil {
			return err // raft.ErrSnapOutOfDate: a snapshot at or after i exists already
		}
		if err := storage.Compact(i); err != nil { // entries up to i are now only in the snapshot
			return err
		}
		// readme:end
		return nil
	}
	if err := compact(); err != nil {
		fmt.Println(err)
	}
	snap, _ := storage.Snapshot()
	first, _ := storage.FirstIndex()
	fmt.Printf("snapshot at %d (%s), log from %d\n", snap.Metadata.Index, snap.Data, first)
	// Output:
	// applied 3: x=1
	// applied 4: y=2
	// snapshot at 4 ({"x":"1","y":"2"}), log from 5
}

// A single member on the WAL, with the loop of README.md: it elects
// itself, applies what is proposed, snapshots and compacts.
func Example_wal() {
	dir, err := os.MkdirTemp("", "raftcore-example-wal")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	const id = 1
	var appliedIndex uint64 // what the state machine holds: nothing yet
	peers := []raft.Peer{{ID: id}}
	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
	fromPeers := make(chan raftpb.Message)
	proposals := make(chan []byte)
	done := make(chan struct{})
	transport := soloTransport{}
	stateMachine := newPrintingMachine(6, done, func() { go feed(proposals, "a=1", "b=2", "c=3", "d=4", "e=5", "f=6") })
	var lastSnap uint64
	const snapshotEvery, keepEntries = 4, 2 // a real server: thousands
	run := func() error {
		// readme:begin wal
		st, err := wal.Open(dir, wal.Options{}) // dir: e.g. "/var/lib/myserver/raft"
		if err != nil {
			return err // wal.ErrLocked: another process has it; wal.ErrCorrupt: see below
		}
		defer st.Close()
		_, confState, err := st.InitialState()
		if err != nil {
			return err
		}
		node, err := raft.NewRawNode(&raft.Config{
			ID:              id,
			ElectionTick:    10,
			HeartbeatTick:   1,
			Storage:         st,
			Applied:         appliedIndex, // what the state machine already holds
			MaxSizePerMsg:   1 << 20,
			MaxInflightMsgs: 256,
		})
		if err != nil {
			return err
		}
		if last, err := st.LastIndex(); err != nil {
			return err
		} else if last == 0 {
			// A new member; a restarted one recovers from st.
			if err := node.Bootstrap(peers); err != nil {
				return err
			}
		}
		for {
			select {
			case <-ticker.C:
				node.Tick()
			case m := <-fromPeers:
				_ = node.Step(m)
			case data := <-proposals:
				_ = node.Propose(data)
			case <-done:
				return nil
			}
			for node.HasReady() {
				rd := node.Ready()
				// 1. One write for the snapshot, entries and hard state, synced
				//    when rd.MustSync (or a snapshot) asks for it.
				if err := st.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
					return err // the disk failed: stop, restart from what is on disk
				}
				transport.Send(rd.Messages) // 2.
				if !raft.IsEmptySnap(rd.Snapshot) {
					stateMachine.Restore(rd.Snapshot.Data) // 3.
					confState = rd.Snapshot.Metadata.ConfState
				}
				for _, e := range rd.CommittedEntries {
					if e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2 {
						cc, err := raftpb.UnmarshalConfChange(e)
						if err != nil {
							return err
						}
						confState = *node.ApplyConfChange(cc)
					}
					stateMachine.Apply(e)
				}
				node.Advance(rd) // 4.
				if applied := stateMachine.Applied(); applied >= lastSnap+snapshotEvery {
					if _, err := st.CreateSnapshot(applied, &confState, stateMachine.Serialize()); err != nil {
						return err
					}
					if applied > keepEntries { // keep some entries for slow followers
						if err := st.Compact(applied - keepEntries); err != nil {
							return err
						}
					}
					lastSnap = applied
				}
			}
		}
		// readme:end
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	fmt.Println("last snapshot at", lastSnap)
	// Output:
	// applied 3: a=1
	// applied 4: b=2
	// applied 5: c=3
	// applied 6: d=4
	// applied 7: e=5
	// applied 8: f=6
	// last snapshot at 8
}

// rawCluster runs RawNodes in one goroutine, delivering every message at
// once: enough to show membership changes end to end.
type rawCluster struct {
	nodes    map[uint64]*raft.RawNode
	storages map[uint64]*raft.MemoryStorage
	// applyConfChange applies a committed conf change entry on a node.
	applyConfChange func(node *raft.RawNode, entry raftpb.Entry) error
}

// newRawCluster starts members voters, bootstrapped together, and newcomers,
// with empty storage, waiting to be added.
func newRawCluster(voters, newcomers []uint64) *rawCluster {
	c := &rawCluster{nodes: map[uint64]*raft.RawNode{}, storages: map[uint64]*raft.MemoryStorage{}}
	var peers []raft.Peer
	for _, id := range voters {
		peers = append(peers, raft.Peer{ID: id})
	}
	for i, id := range append(append([]uint64(nil), voters...), newcomers...) {
		s := raft.NewMemoryStorage()
		node, err := raft.NewRawNode(&raft.Config{
			ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: raft.DiscardLogger,
		})
		if err != nil {
			panic(err)
		}
		if i < len(voters) {
			if err := node.Bootstrap(peers); err != nil {
				panic(err)
			}
		}
		c.nodes[id], c.storages[id] = node, s
	}
	return c
}

// stabilize handles Readys and delivers messages until nothing is left.
func (c *rawCluster) stabilize() error {
	for {
		var msgs []raftpb.Message
		for id, node := range c.nodes {
			for node.HasReady() {
				rd := node.Ready()
				s := c.storages[id]
				if err := s.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
					return err
				}
				msgs = append(msgs, rd.Messages...)
				for _, e := range rd.CommittedEntries {
					if e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2 {
						if err := c.applyConfChange(node, e); err != nil {
							return err
						}
					}
				}
				node.Advance(rd)
			}
		}
		if len(msgs) == 0 {
			return nil
		}
		for _, m := range msgs {
			if to := c.nodes[m.To]; to != nil {
				_ = to.Step(m)
			}
		}
	}
}

// Membership changes on a three-member cluster, as README.md shows them:
// a learner joins and is promoted, then one member is replaced by another
// through a joint configuration.
func Example_membership() {
	c := newRawCluster([]uint64{1, 2, 3}, []uint64{4, 5})
	confStates := map[uint64]raftpb.ConfState{}
	c.applyConfChange = func(node *raft.RawNode, entry raftpb.Entry) error {
		// readme:begin conf-apply
		// In the Ready loop, for every conf change entry:
		cc, err := raftpb.UnmarshalConfChange(entry)
		if err != nil {
			return err
		}
		confState := node.ApplyConfChange(cc) // store it with your next snapshot
		// readme:end
		confStates[node.Status().ID] = *confState
		return nil
	}
	node := c.nodes[1]
	step := func(what string, propose func() error) {
		if err := propose(); err != nil {
			fmt.Println(what, err)
			return
		}
		if err := c.stabilize(); err != nil {
			fmt.Println(what, err)
			return
		}
		fmt.Printf("%s: %s; node 4 has %d entries, node 5 has %d\n", what, node.Status().Config,
			lastIndex(c.storages[4]), lastIndex(c.storages[5]))
	}
	step("start", c.stabilize)
	step("elect", node.Campaign)
	step("add learner", func() error {
		// readme:begin conf-add-learner
		// Add node 4 as a learner: it receives the log but does not vote yet.
		if err := node.ProposeConfChange(raftpb.ConfChange{Type: raftpb.ConfChangeAddLearnerNode, NodeID: 4}); err != nil {
			return err
		}
		// readme:end
		return nil
	})
	step("promote", func() error {
		// readme:begin conf-promote
		// Promote the learner to a voter.
		if err := node.ProposeConfChange(raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 4}); err != nil {
			return err
		}
		// readme:end
		return nil
	})
	step("replace", func() error {
		// readme:begin conf-replace
		// Replace node 3 by node 5 in one step, through a joint configuration
		// (both the old and the new majorities must agree while it lasts). The
		// leader leaves the joint configuration on its own.
		if err := node.ProposeConfChange(raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{
			{Type: raftpb.ConfChangeAddNode, NodeID: 5},
			{Type: raftpb.ConfChangeRemoveNode, NodeID: 3},
		}}); err != nil {
			return err
		}
		// readme:end
		return nil
	})
	fmt.Println("node 5's configuration:", confStates[5].Voters)
	// Output:
	// start: voters=(1 2 3); node 4 has 0 entries, node 5 has 0
	// elect: voters=(1 2 3); node 4 has 0 entries, node 5 has 0
	// add learner: voters=(1 2 3) learners=(4); node 4 has 5 entries, node 5 has 0
	// promote: voters=(1 2 3 4); node 4 has 6 entries, node 5 has 0
	// replace: voters=(1 2 4 5); node 4 has 8 entries, node 5 has 8
	// node 5's configuration: [1 2 4 5]
}

func lastIndex(s *raft.MemoryStorage) uint64 {
	i, err := s.LastIndex()
	if err != nil {
		panic(err)
	}
	return i
}
