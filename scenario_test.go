package raft

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	pb "github.com/raftcore/raft/raftpb"
)

// TestScenarios runs the transcripts in testdata/scenarios. Each is a
// readable, commented walk through one protocol rule: commands on the left
// of "----", what the nodes did underneath. After a deliberate change of
// behaviour, regenerate them with
//
//	go test -run TestScenarios . -rewrite
//
// and read the diff: it is the specification changing.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, filepath.Join("testdata", "scenarios"), func(t *testing.T, path string) {
		env := newScenarioEnv()
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return env.handle(t, td)
		})
	})
}

// scenarioNode is one RawNode on MemoryStorage, driven by hand.
type scenarioNode struct {
	rn      *RawNode
	storage *MemoryStorage
	cfg     Config
}

// scenarioEnv is the cluster of a transcript: the nodes, the messages sent
// and not yet delivered (in send order) and the links that are cut.
type scenarioEnv struct {
	nodes map[uint64]*scenarioNode
	queue []pb.Message
	cut   map[[2]uint64]bool
}

func newScenarioEnv() *scenarioEnv {
	return &scenarioEnv{nodes: map[uint64]*scenarioNode{}, cut: map[[2]uint64]bool{}}
}

// quoteData renders entry payloads as quoted strings in transcripts.
func quoteData(b []byte) string {
	if len(b) == 0 {
		return "(empty)"
	}
	return strconv.Quote(string(b))
}

func (env *scenarioEnv) handle(t *testing.T, td *datadriven.TestData) string {
	var b strings.Builder
	switch td.Cmd {
	case "add-nodes":
		env.addNodes(t, td, &b)
	case "campaign":
		env.eachNode(t, td, func(id uint64, n *scenarioNode) {
			report(&b, n.rn.Campaign())
		})
	case "propose":
		id, rest := env.nodeAndRest(t, td)
		report(&b, env.nodes[id].rn.Propose([]byte(rest)))
	case "propose-conf-change":
		env.proposeConfChange(t, td, &b)
	case "tick-election":
		env.eachNode(t, td, func(id uint64, n *scenarioNode) {
			r := n.rn.raft
			k := r.randomizedElectionTimeout - r.electionElapsed
			if r.state == StateLeader {
				k = r.electionTimeout - r.electionElapsed
			}
			for i := 0; i < max(k, 1); i++ {
				n.rn.Tick()
			}
		})
	case "tick-heartbeat":
		env.eachNode(t, td, func(id uint64, n *scenarioNode) {
			for i := 0; i < n.rn.raft.heartbeatTimeout; i++ {
				n.rn.Tick()
			}
		})
	case "process-ready":
		env.eachNode(t, td, func(id uint64, n *scenarioNode) {
			env.processReady(t, id, &b)
		})
	case "deliver-msgs":
		env.deliverMsgs(t, env.targets(t, td), env.dropSet(t, td), &b)
	case "stabilize":
		env.stabilize(t, env.targets(t, td), &b)
	case "restart":
		env.eachNode(t, td, func(id uint64, n *scenarioNode) {
			env.restart(t, id, &b)
		})
	case "partition":
		env.partition(t, td, &b)
	case "heal":
		env.cut = map[[2]uint64]bool{}
		b.WriteString("all links up\n")
	case "read-index":
		id, rest := env.nodeAndRest(t, td)
		env.nodes[id].rn.ReadIndex([]byte(rest))
	case "transfer-leader":
		from, to := env.nodeArg(t, td, 0), env.nodeArg(t, td, 1)
		env.nodes[from].rn.TransferLeader(to)
	case "status":
		env.eachNode(t, td, func(id uint64, n *scenarioNode) {
			describeScenarioStatus(&b, n.rn)
		})
	case "raft-log":
		env.eachNode(t, td, func(id uint64, n *scenarioNode) {
			env.describeLog(t, id, &b)
		})
	default:
		td.Fatalf(t, "unknown command %q", td.Cmd)
	}
	if b.Len() == 0 {
		return "ok\n"
	}
	return b.String()
}

func report(b *strings.Builder, err error) {
	if err != nil {
		fmt.Fprintf(b, "error: %v\n", err)
	}
}

// ids returns the node IDs in ascending order.
func (env *scenarioEnv) ids() []uint64 {
	var ids []uint64
	for id := range env.nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// positional returns the command's arguments without values, in order.
func positional(td *datadriven.TestData) []string {
	var out []string
	for _, a := range td.CmdArgs {
		if len(a.Vals) == 0 {
			out = append(out, a.Key)
		}
	}
	return out
}

func (env *scenarioEnv) parseID(t *testing.T, td *datadriven.TestData, s string) uint64 {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || env.nodes[id] == nil {
		td.Fatalf(t, "no node %q", s)
	}
	return id
}

// nodeArg returns the i-th positional argument as a node ID.
func (env *scenarioEnv) nodeArg(t *testing.T, td *datadriven.TestData, i int) uint64 {
	pos := positional(td)
	if i >= len(pos) {
		td.Fatalf(t, "%s: want at least %d node IDs", td.Cmd, i+1)
	}
	return env.parseID(t, td, pos[i])
}

// nodeAndRest returns the first positional argument as a node ID and the
// others joined by spaces.
func (env *scenarioEnv) nodeAndRest(t *testing.T, td *datadriven.TestData) (uint64, string) {
	id := env.nodeArg(t, td, 0)
	return id, strings.Join(positional(td)[1:], " ")
}

// targets returns the node IDs named by the command, or all of them.
func (env *scenarioEnv) targets(t *testing.T, td *datadriven.TestData) []uint64 {
	pos := positional(td)
	if len(pos) == 0 {
		return env.ids()
	}
	var ids []uint64
	for _, s := range pos {
		ids = append(ids, env.parseID(t, td, s))
	}
	return ids
}

// eachNode calls f for each named node (all when none is named), in
// ascending order of ID unless the command names another order.
func (env *scenarioEnv) eachNode(t *testing.T, td *datadriven.TestData, f func(uint64, *scenarioNode)) {
	for _, id := range env.targets(t, td) {
		f(id, env.nodes[id])
	}
}

func (env *scenarioEnv) dropSet(t *testing.T, td *datadriven.TestData) map[uint64]bool {
	drop := map[uint64]bool{}
	if a, ok := td.Arg("drop"); ok {
		for _, v := range a.Vals {
			drop[env.parseID(t, td, v)] = true
		}
	}
	return drop
}

func (env *scenarioEnv) idList(t *testing.T, td *datadriven.TestData, key string) []uint64 {
	var out []uint64
	if a, ok := td.Arg(key); ok {
		for _, v := range a.Vals {
			id, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				td.Fatalf(t, "%s: %v", key, err)
			}
			out = append(out, id)
		}
	}
	return out
}

// addNodes creates N nodes with the next free IDs, each starting from a
// snapshot at index I (default 1, term 1) holding the given configuration
// (by default all new nodes are voters).
func (env *scenarioEnv) addNodes(t *testing.T, td *datadriven.TestData, b *strings.Builder) {
	n, err := strconv.Atoi(env.firstPositional(t, td))
	if err != nil {
		td.Fatalf(t, "add-nodes: %v", err)
	}
	first := uint64(len(env.nodes)) + 1
	cs := pb.ConfState{Voters: env.idList(t, td, "voters"), Learners: env.idList(t, td, "learners")}
	if len(cs.Voters) == 0 {
		for id := first; id < first+uint64(n); id++ {
			cs.Voters = append(cs.Voters, id)
		}
	}
	index := uint64(1)
	td.MaybeScanArgs(t, "index", &index)
	var preVote, checkQuorum bool
	td.MaybeScanArgs(t, "prevote", &preVote)
	td.MaybeScanArgs(t, "checkquorum", &checkQuorum)
	var async bool
	td.MaybeScanArgs(t, "async-storage-writes", &async)
	maxMsgSize := uint64(noLimit)
	td.MaybeScanArgs(t, "max-msg-size", &maxMsgSize)
	for id := first; id < first+uint64(n); id++ {
		s := NewMemoryStorage()
		snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: index, Term: 1, ConfState: cs}}
		if err := s.ApplySnapshot(snap); err != nil {
			td.Fatalf(t, "add-nodes: %v", err)
		}
		cfg := &Config{
			ID:                 id,
			ElectionTick:       10,
			HeartbeatTick:      1,
			Storage:            s,
			MaxSizePerMsg:      maxMsgSize,
			MaxInflightMsgs:    256,
			PreVote:            preVote,
			CheckQuorum:        checkQuorum,
			AsyncStorageWrites: async,
			Logger:             DiscardLogger,
			RandomSource:       rand.NewPCG(1, id),
		}
		rn, err := NewRawNode(cfg)
		if err != nil {
			td.Fatalf(t, "add-nodes: %v", err)
		}
		env.nodes[id] = &scenarioNode{rn: rn, storage: s, cfg: *cfg}
		fmt.Fprintf(b, "node %d: applied %d, config %s\n", id, index, cs.Describe())
	}
}

func (env *scenarioEnv) firstPositional(t *testing.T, td *datadriven.TestData) string {
	pos := positional(td)
	if len(pos) == 0 {
		td.Fatalf(t, "%s: missing argument", td.Cmd)
	}
	return pos[0]
}

// proposeConfChange proposes "propose-conf-change ID v4 r3 ..." as a
// ConfChangeV2; transition=explicit or transition=implicit picks how a
// joint configuration is left (default: automatically).
func (env *scenarioEnv) proposeConfChange(t *testing.T, td *datadriven.TestData, b *strings.Builder) {
	id, rest := env.nodeAndRest(t, td)
	ccs, err := pb.ConfChangesFromString(rest)
	if err != nil {
		td.Fatalf(t, "propose-conf-change: %v", err)
	}
	cc := pb.ConfChangeV2{Changes: ccs}
	var tr string
	if td.MaybeScanArgs(t, "transition", &tr) {
		switch tr {
		case "explicit":
			cc.Transition = pb.ConfChangeTransitionJointExplicit
		case "implicit":
			cc.Transition = pb.ConfChangeTransitionJointImplicit
		default:
			td.Fatalf(t, "unknown transition %q", tr)
		}
	}
	report(b, env.nodes[id].rn.ProposeConfChange(cc))
}

// processReady handles one Ready of node id by the book: persist, queue
// the messages, apply (conf changes included), advance.
func (env *scenarioEnv) processReady(t *testing.T, id uint64, b *strings.Builder) bool {
	n := env.nodes[id]
	if !n.rn.HasReady() {
		return false
	}
	rd := n.rn.Ready()
	fmt.Fprintf(b, "> %d handling Ready\n", id)
	writeIndented(b, DescribeReady(rd, quoteData))
	if n.cfg.AsyncStorageWrites {
		env.runStorageThreads(t, id, rd.Messages, b)
		return true
	}
	if err := n.storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		t.Fatalf("node %d: save: %v", id, err)
	}
	env.queue = append(env.queue, rd.Messages...)
	env.applyConfChanges(t, id, rd.CommittedEntries, b)
	n.rn.Advance(rd)
	return true
}

func (env *scenarioEnv) applyConfChanges(t *testing.T, id uint64, ents []pb.Entry, b *strings.Builder) {
	for _, e := range ents {
		if e.Type != pb.EntryConfChange && e.Type != pb.EntryConfChangeV2 {
			continue
		}
		cc, err := pb.UnmarshalConfChange(e)
		if err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		cs := env.nodes[id].rn.ApplyConfChange(cc)
		fmt.Fprintf(b, "  applied conf change: %s\n", cs.Describe())
	}
}

// runStorageThreads plays the storage threads of an AsyncStorageWrites
// node at once: it writes each MsgStorageAppend and applies each
// MsgStorageApply, then releases their responses (the node's own are
// stepped in, those to peers are queued). Other messages are queued as
// they are.
func (env *scenarioEnv) runStorageThreads(t *testing.T, id uint64, msgs []pb.Message, b *strings.Builder) {
	n := env.nodes[id]
	for _, m := range msgs {
		switch m.To {
		case LocalAppendThread:
			var snap pb.Snapshot
			if m.Snapshot != nil {
				snap = *m.Snapshot
			}
			hs := pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
			if err := n.storage.Save(hs, m.Entries, snap); err != nil {
				t.Fatalf("node %d: save: %v", id, err)
			}
		case LocalApplyThread:
			env.applyConfChanges(t, id, m.Entries, b)
		default:
			env.queue = append(env.queue, m)
			continue
		}
		for _, resp := range m.Responses {
			if resp.To != id {
				env.queue = append(env.queue, resp)
				continue
			}
			if err := n.rn.Step(resp); err != nil {
				t.Fatalf("node %d: storage response: %v", id, err)
			}
		}
	}
}

// restart models a crash and restart of node id: everything not in its
// storage is lost (volatile state, the unsent Ready), and a new RawNode
// starts from what was persisted.
func (env *scenarioEnv) restart(t *testing.T, id uint64, b *strings.Builder) {
	n := env.nodes[id]
	cfg := n.cfg
	cfg.RandomSource = rand.NewPCG(1, id)
	rn, err := NewRawNode(&cfg)
	if err != nil {
		t.Fatalf("restart %d: %v", id, err)
	}
	n.rn = rn
	hs, _, _ := n.storage.InitialState()
	fmt.Fprintf(b, "node %d restarted: %s\n", id, DescribeHardState(hs))
}

func writeIndented(b *strings.Builder, s string) {
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if line != "" {
			b.WriteString("  " + line + "\n")
		}
	}
}

// deliverMsgs steps every queued message addressed to one of ids into its
// node, in send order; messages to nodes in drop, and across a cut link,
// are discarded. It reports whether any message was taken from the queue.
func (env *scenarioEnv) deliverMsgs(t *testing.T, ids []uint64, drop map[uint64]bool, b *strings.Builder) bool {
	want := map[uint64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for id := range drop {
		want[id] = true
	}
	var keep, take []pb.Message
	for _, m := range env.queue {
		if want[m.To] {
			take = append(take, m)
		} else {
			keep = append(keep, m)
		}
	}
	env.queue = keep
	sort.SliceStable(take, func(i, j int) bool { return take[i].To < take[j].To })
	for _, m := range take {
		desc := DescribeMessage(m, quoteData)
		switch {
		case drop[m.To]:
			fmt.Fprintf(b, "dropped: %s\n", desc)
		case env.cut[[2]uint64{m.From, m.To}]:
			fmt.Fprintf(b, "dropped (partition): %s\n", desc)
		case env.nodes[m.To] == nil:
			fmt.Fprintf(b, "dropped (no such node): %s\n", desc)
		default:
			b.WriteString(desc + "\n")
			if err := env.nodes[m.To].rn.Step(m); err != nil {
				fmt.Fprintf(b, "  refused: %v\n", err)
			}
		}
	}
	return len(take) > 0
}

// stabilize handles Readys and delivers messages among ids until none is
// left to handle.
func (env *scenarioEnv) stabilize(t *testing.T, ids []uint64, b *strings.Builder) {
	for round := 0; round < 1000; round++ {
		busy := false
		for _, id := range ids {
			busy = env.processReady(t, id, b) || busy
		}
		busy = env.deliverMsgs(t, ids, nil, b) || busy
		if !busy {
			return
		}
	}
	t.Fatalf("stabilize: still busy after 1000 rounds")
}

// partition cuts every link between the named nodes and the others.
func (env *scenarioEnv) partition(t *testing.T, td *datadriven.TestData, b *strings.Builder) {
	side := map[uint64]bool{}
	for _, id := range env.targets(t, td) {
		side[id] = true
	}
	var in, out []uint64
	for _, a := range env.ids() {
		if side[a] {
			in = append(in, a)
		} else {
			out = append(out, a)
		}
		for _, c := range env.ids() {
			if side[a] != side[c] {
				env.cut[[2]uint64{a, c}] = true
			}
		}
	}
	fmt.Fprintf(b, "cut %v from %v\n", in, out)
}

func describeScenarioStatus(b *strings.Builder, rn *RawNode) {
	st := rn.Status()
	fmt.Fprintf(b, "%d: %s Term:%d Lead:%d Vote:%d Commit:%d Applied:%d\n",
		st.ID, st.RaftState, st.Term, st.Lead, st.Vote, st.Commit, st.Applied)
	fmt.Fprintf(b, "  config: %s\n", st.Config)
	if st.LeadTransferee != None {
		fmt.Fprintf(b, "  transferring to %d\n", st.LeadTransferee)
	}
	var ids []uint64
	for id := range st.Progress {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		pr := st.Progress[id]
		fmt.Fprintf(b, "  %d: %s\n", id, pr.String())
	}
}

// describeLog prints the node's log (all of it is stable after
// process-ready) and its commit and apply indexes.
func (env *scenarioEnv) describeLog(t *testing.T, id uint64, b *strings.Builder) {
	n := env.nodes[id]
	first, _ := n.storage.FirstIndex()
	last, _ := n.storage.LastIndex()
	l := n.rn.raft.raftLog
	fmt.Fprintf(b, "%d: log (%d,%d] committed %d applied %d\n", id, first-1, last, l.committed, l.applied)
	if last < first {
		return
	}
	ents, err := n.storage.Entries(first, last+1, noLimit)
	if err != nil {
		t.Fatalf("node %d: %v", id, err)
	}
	writeIndented(b, DescribeEntries(ents, quoteData))
}
