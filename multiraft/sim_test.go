package multiraft

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

var simSeeds = flag.Int("multiraft.seeds", 0, "run the multiraft simulation over this many more seeds")

// simulation drives a cluster through a seeded random schedule of ticks,
// deliveries, drops, partitions, crashes, proposals and key-value clients
// (see kvClients), checking each group's safety after every step and the
// clients' history for linearizability at the end.
type simulation struct {
	*cluster
	rng *rand.Rand
	// leaders[g][term] is the node seen leading group g in term.
	leaders map[uint64]map[uint64]uint64
	// ref[g] is group g's committed log as first applied anywhere
	// (ref[g][i] is the entry at index i+1).
	ref map[uint64][]pb.Entry
	// applied[node][g] is the last index node applied in group g.
	applied map[uint64]map[uint64]uint64
	// commit[node][g] is the durable commit index of node's group g.
	commit   map[uint64]map[uint64]uint64
	proposed int
	steps    int
	// asleep and awake count, over steps, the live replicas quiesced
	// and ticking.
	asleep, awake int
	kv            *kvClients
}

func newSimulation(t testing.TB, seed uint64, nodes, groups int) *simulation {
	s := &simulation{
		cluster: newCluster(t, seed, nodes, groups, Config{QuiesceAfterTicks: 3}),
		rng:     rand.New(rand.NewPCG(seed, 0x5eed)),
		leaders: map[uint64]map[uint64]uint64{},
		ref:     map[uint64][]pb.Entry{},
		applied: map[uint64]map[uint64]uint64{},
		commit:  map[uint64]map[uint64]uint64{},
	}
	for _, n := range s.nodes {
		s.applied[n.id] = map[uint64]uint64{}
		s.commit[n.id] = map[uint64]uint64{}
	}
	s.kv = newKVClients(s)
	s.onApply = func(n *testNode, g uint64, e pb.Entry) {
		s.checkApply(n, g, e)
		s.kv.apply(n, g, e)
	}
	s.onPersist = s.checkPersist
	s.onReadState = s.kv.readState
	return s
}

// crash stops node id and abandons its clients' operations.
func (s *simulation) crash(id uint64) {
	s.cluster.crash(id)
	s.kv.crashed(id)
}

// checkApply: entries are applied once, in order, and every node applies
// the same entry at each index.
func (s *simulation) checkApply(n *testNode, g uint64, e pb.Entry) {
	s.t.Helper()
	if want := s.applied[n.id][g] + 1; e.Index != want {
		s.t.Fatalf("step %d: node %d group %d applied index %d, want %d", s.steps, n.id, g, e.Index, want)
	}
	s.applied[n.id][g] = e.Index
	ref := s.ref[g]
	if e.Index <= uint64(len(ref)) {
		if r := ref[e.Index-1]; r.Term != e.Term || !bytes.Equal(r.Data, e.Data) {
			s.t.Fatalf("step %d: node %d group %d applied %d/%d %q where %d/%d %q was applied", s.steps, n.id, g, e.Term, e.Index, e.Data, r.Term, r.Index, r.Data)
		}
		return
	}
	s.ref[g] = append(ref, e)
}

// checkPersist: the durable commit index never goes back, and no entry at
// or below it is overwritten with a different one.
func (s *simulation) checkPersist(n *testNode, gr *GroupReady) {
	s.t.Helper()
	committed := s.commit[n.id][gr.GroupID]
	for _, e := range gr.Entries {
		if e.Index > committed {
			break
		}
		st := n.storages[gr.GroupID]
		old, err := st.Term(e.Index)
		if err == nil && old != e.Term {
			s.t.Fatalf("step %d: node %d group %d overwrites committed entry %d (term %d) with term %d", s.steps, n.id, gr.GroupID, e.Index, old, e.Term)
		}
	}
	if !raft.IsEmptyHardState(gr.HardState) {
		if gr.Commit < committed {
			s.t.Fatalf("step %d: node %d group %d commit goes back from %d to %d", s.steps, n.id, gr.GroupID, committed, gr.Commit)
		}
		s.commit[n.id][gr.GroupID] = gr.Commit
	}
}

// checkLeaders: at most one leader per term per group.
func (s *simulation) checkLeaders() {
	s.t.Helper()
	for _, n := range s.nodes {
		if n.down {
			continue
		}
		for _, g := range s.groups {
			st, err := n.host.BasicStatus(g)
			if err != nil || st.RaftState != raft.StateLeader {
				continue
			}
			terms := s.leaders[g]
			if terms == nil {
				terms = map[uint64]uint64{}
				s.leaders[g] = terms
			}
			if l, ok := terms[st.Term]; ok && l != n.id {
				s.t.Fatalf("step %d: group %d has leaders %d and %d in term %d", s.steps, g, l, n.id, st.Term)
			}
			terms[st.Term] = n.id
		}
	}
}

func (s *simulation) live() []*testNode {
	var out []*testNode
	for _, n := range s.nodes {
		if !n.down {
			out = append(out, n)
		}
	}
	return out
}

// step takes one random action, then handles every Ready and checks.
func (s *simulation) step() {
	s.t.Helper()
	s.steps++
	switch r := s.rng.IntN(1000); {
	case r < 500:
		for k := 0; k < 5 && len(s.queue) > 0; k++ {
			i := s.rng.IntN(len(s.queue))
			if s.rng.IntN(20) == 0 {
				s.queue = append(s.queue[:i], s.queue[i+1:]...) // dropped
			} else {
				s.deliver(i)
			}
		}
	case r < 750:
		// Usually every node ticks; sometimes one alone (clocks drift).
		live := s.live()
		if s.rng.IntN(3) == 0 {
			live = live[s.rng.IntN(len(live)):][:1]
		}
		for _, n := range live {
			n.host.Tick()
		}
	case r < 850:
		s.kv.issue()
	case r < 900:
		live := s.live()
		n := live[s.rng.IntN(len(live))]
		g := s.groups[s.rng.IntN(len(s.groups))]
		s.proposed++
		_ = n.host.Propose(g, []byte(fmt.Sprintf("p%d", s.proposed)))
	case r < 915:
		s.partition()
	case r < 920:
		if live := s.live(); len(live) == len(s.nodes) {
			s.crash(live[s.rng.IntN(len(live))].id)
		}
	case r < 930:
		for _, n := range s.nodes {
			if n.down {
				s.restart(n.id)
				s.applied[n.id] = map[uint64]uint64{}
			}
		}
	}
	for _, n := range s.nodes {
		if !n.down && n.host.HasReady() {
			s.handleReady(n)
		}
	}
	s.checkLeaders()
	s.kv.expire()
	for _, n := range s.live() {
		s.awake += n.host.NumActive()
		s.asleep += n.host.NumGroups() - n.host.NumActive()
	}
}

// partition isolates a random node, or heals.
func (s *simulation) partition() {
	if s.rng.IntN(2) == 0 {
		s.cut = nil
		return
	}
	iso := uint64(s.rng.IntN(len(s.nodes)) + 1)
	s.cut = func(from, to uint64) bool { return from == iso || to == iso }
}

// heal restarts every node and lifts every partition; then every group
// must commit a new proposal on every node.
func (s *simulation) checkLiveness() {
	s.t.Helper()
	s.cut = nil
	for _, n := range s.nodes {
		if n.down {
			s.restart(n.id)
			s.applied[n.id] = map[uint64]uint64{}
		}
	}
	for range 60 {
		s.tick()
		s.checkLeaders()
	}
	// A node stops: the groups its leaders led, quiesced or not, must
	// elect new leaders on the others with no other input.
	down := s.nodes[s.rng.IntN(len(s.nodes))]
	s.crash(down.id)
	s.awaitLeaders()
	s.awaitProposals("live")
	s.restart(down.id)
	s.applied[down.id] = map[uint64]uint64{}
	s.awaitProposals("back")
}

// awaitLeaders ticks until every group has a leader on a live node.
func (s *simulation) awaitLeaders() {
	s.t.Helper()
	for tick := 0; tick < 200; tick++ {
		s.tick()
		s.checkLeaders()
		missing := 0
		for _, g := range s.groups {
			if s.leader(g) == 0 {
				missing++
			}
		}
		if missing == 0 {
			s.t.Logf("every group has a live leader within %d ticks", tick)
			return
		}
	}
	for _, g := range s.groups {
		if s.leader(g) == 0 {
			st, _ := s.live()[0].host.BasicStatus(g)
			s.t.Fatalf("group %d has no leader on a live node: %+v", g, st)
		}
	}
}

// awaitProposals proposes tag<g> to every group g (again every 20 ticks
// until it is applied) and fails unless every live node applies it.
func (s *simulation) awaitProposals(tag string) {
	s.t.Helper()
	want := func(g uint64) []byte { return []byte(fmt.Sprintf("%s%d", tag, g)) }
	done := func(g uint64) bool {
		for _, n := range s.live() {
			found := false
			for _, e := range n.applied[g] {
				if bytes.Equal(e.Data, want(g)) {
					found = true
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	for tick := 0; tick < 400; tick++ {
		if tick%20 == 0 {
			for _, g := range s.groups {
				if !done(g) {
					live := s.live()
					_ = live[s.rng.IntN(len(live))].host.Propose(g, want(g))
				}
			}
		}
		s.tick()
		s.checkLeaders()
		pending := 0
		for _, g := range s.groups {
			if !done(g) {
				pending++
			}
		}
		if pending == 0 {
			s.t.Logf("%s: every group committed within %d ticks", tag, tick)
			return
		}
	}
	for _, g := range s.groups {
		if !done(g) {
			st, _ := s.live()[0].host.BasicStatus(g)
			s.t.Fatalf("%s: group %d did not commit its proposal: %+v", tag, g, st)
		}
	}
}

func runSimulation(t testing.TB, seed uint64, steps int) {
	s := newSimulation(t, seed, 3, 50)
	for range steps {
		s.step()
	}
	elections, entries := 0, 0
	for _, g := range s.groups {
		elections += len(s.leaders[g])
		entries += len(s.ref[g])
	}
	s.t.Logf("seed %d: %d steps, %d leaders seen, %d entries committed, %d proposals, replicas quiesced %.0f%% of the time",
		seed, steps, elections, entries, s.proposed, 100*float64(s.asleep)/float64(s.asleep+s.awake))
	s.checkLiveness()
	puts, gets := s.kv.check()
	s.t.Logf("seed %d: %d puts and %d gets answered, linearizable per key", seed, puts, gets)
}

func TestSimulation(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel()
			runSimulation(t, seed, 5000)
		})
	}
	for seed := uint64(100); seed < 100+uint64(*simSeeds); seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel()
			runSimulation(t, seed, 5000)
		})
	}
}
