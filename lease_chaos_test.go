package raft

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/raftcore/raft/quorum"
	pb "github.com/raftcore/raft/raftpb"
)

// TestLeaseChaos checks lease-based reads (ReadOnlyLeaseBased with
// CheckQuorum and PreVote) under randomized schedules. Each run drives five
// nodes, three of them voters at first, through a seeded random sequence
// of steps:
//
//   - ticks (one in ten quiesced), in rounds in which every node ticks once,
//     a down node's tick included: its clock runs on while it is down;
//   - delivery of a random in-flight message (half the time one of the
//     three oldest), so messages are reordered; one delivery in twenty leaves the message in
//     flight (a duplicate); some messages are dropped; now and then the
//     nodes split into two sides that hear nothing from each other, until
//     the partition heals;
//   - Propose, ReadIndex (at a leader or any node), Campaign,
//     TransferLeader, ForgetLeader, and conf changes at a leader: adding
//     and removing voters (the leader itself too), adding learners, and
//     joint changes left automatically or explicitly;
//   - crashes, and restarts from what the node's storage holds (the
//     applied configuration is snapshotted at restart), at once or later.
//
// Each run picks the tick rate against other steps and the heartbeat
// interval (the election timeout is 10 ticks). After every step it checks:
//
//   - a leader whose lease holds (leaseValid) and which is a voter has no
//     commit of a later term on any node: no other leader has been elected
//     and committed behind its back;
//   - for such a leader, the nodes that would refuse a vote (itself, those
//     within their promise, and down ones, which restart with a promise)
//     form a quorum of its configuration: the lease ends before the
//     promises it rests on. Not once it sent a timeout-now (leaseGivenUp),
//     whose campaign ignores the promises; it holds no lease then anyway;
//   - every read answered (ReadState) is at or above the highest commit
//     index on any node when the read was asked;
//   - no node grants a vote or pre-vote within its promise (voteLease),
//     but to a leader transfer's campaign;
//   - Campaign never starts an election inside the node's promise.
//
// The lease assumes that every node's clock ticks at the same rate. In
// every mode each node ticks once per round; with the tick order fixed for
// the whole run the nodes' clocks keep the same phase, while an order
// drawn anew each round models up to a tick of jitter between them. The
// modes:
//
//   - fixed: one tick order per run, storage writes and applying done in
//     each Ready;
//   - shuffled: the tick order drawn anew each round;
//   - delayed-apply: a Ready with committed entries is, one time in three,
//     applied (and advanced) only later, the node handing out nothing
//     meanwhile;
//   - async-shuffled: AsyncStorageWrites, with the append and apply work
//     done at random later steps (and lost in a crash), and shuffled ticks.
//
// Flags: -lease.seeds runs per mode (a tenth of the default under the
// race detector), -lease.seed the first seed, and -lease.steps steps per
// run. A failure reports the seed, the mode, the tail of the event log and
// the command that replays the run (a run depends only on its seed, mode
// and steps).
func TestLeaseChaos(t *testing.T) {
	seeds := *leaseChaosSeeds
	if raceEnabled && !leaseChaosFlagSet("lease.seeds") {
		// The runs share no memory across goroutines, and the race
		// detector makes them ten times slower.
		seeds = max(1, seeds/10)
	}
	for _, mode := range leaseChaosModes {
		t.Run(mode.name, func(t *testing.T) {
			var total leaseChaosStats
			for i := 0; i < seeds; i++ {
				seed := *leaseChaosSeed + uint64(i)
				c := newLeaseChaos(t, mode, seed)
				c.run(*leaseChaosSteps)
				total.add(c.stats)
			}
			t.Logf("%d runs: %+v", seeds, total)
			if seeds >= 8 && (total.leaseReads == 0 || total.readsAnswered == 0) {
				// The checks above would hold vacuously.
				t.Fatalf("no read asked of a leader holding its lease, or none answered: %+v", total)
			}
		})
	}
}

var (
	leaseChaosSeeds = flag.Int("lease.seeds", 80, "TestLeaseChaos: runs per mode")
	leaseChaosSeed  = flag.Uint64("lease.seed", 0, "TestLeaseChaos: seed of the first run (the next runs take the next seeds)")
	leaseChaosSteps = flag.Int("lease.steps", 20000, "TestLeaseChaos: steps per run")
)

// leaseChaosFlagSet reports whether the flag name was given on the command line.
func leaseChaosFlagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// leaseChaosTail is how many of the latest events a failure reports.
const leaseChaosTail = 200

// leaseChaosMode is one way of driving the nodes (see TestLeaseChaos).
type leaseChaosMode struct {
	name string
	// shuffle draws the tick order anew each round.
	shuffle bool
	// lagApply defers applying some Readys' committed entries.
	lagApply bool
	// async sets AsyncStorageWrites.
	async bool
}

var leaseChaosModes = []leaseChaosMode{
	{name: "fixed"},
	{name: "shuffled", shuffle: true},
	{name: "delayed-apply", lagApply: true},
	{name: "async-shuffled", async: true, shuffle: true},
}

// leaseChaosStats shows how much a run exercised.
type leaseChaosStats struct {
	// leaseReads counts reads asked of a leader holding its lease.
	leaseReads int
	// readsAnswered counts read states handed out.
	readsAnswered int
	// maxTerm is the highest term reached.
	maxTerm uint64
}

func (s *leaseChaosStats) add(o leaseChaosStats) {
	s.leaseReads += o.leaseReads
	s.readsAnswered += o.readsAnswered
	s.maxTerm = max(s.maxTerm, o.maxTerm)
}

// chaosNode is one node and what its application keeps across crashes.
type chaosNode struct {
	id      uint64
	storage *MemoryStorage
	rn      *RawNode
	// confState and applied are the application's applied configuration
	// and index, kept across a crash (snapshotted at restart).
	confState pb.ConfState
	applied   uint64
	down      bool
	// deferred is a Ready persisted and sent but not yet applied and
	// advanced (delayed-apply mode): the node hands out no Ready until
	// it is.
	deferred *Ready
	// appendQ and applyQ are the storage work queued for the append and
	// apply threads (async mode).
	appendQ []pb.Message
	applyQ  []pb.Message
}

// leaseChaos is one run: the nodes, the network and the checks' memory.
type leaseChaos struct {
	t    *testing.T
	mode leaseChaosMode
	seed uint64
	rng  *rand.Rand

	nodes map[uint64]*chaosNode
	ids   []uint64
	// net holds the messages in flight.
	net []pb.Message
	// side splits the nodes in two while a partition lasts (nil: none).
	side map[uint64]bool

	// tickOrder is the run's tick order (fixed mode); round the ticks
	// left of the current round.
	tickOrder []uint64
	round     []uint64
	// tickPerMille is the chance, in a thousand, of a step being a tick;
	// heartbeat is the nodes' HeartbeatTick. Both are drawn per run.
	tickPerMille int
	heartbeat    int

	// reads maps a read's context to the highest commit index on any
	// node when it was asked.
	reads    map[string]uint64
	lastRead int

	// step counts the steps taken. events is a ring of the latest
	// events, next the oldest one's place once the ring is full.
	step   int
	events []string
	next   int
	stats  leaseChaosStats
}

func newLeaseChaos(t *testing.T, mode leaseChaosMode, seed uint64) *leaseChaos {
	c := &leaseChaos{
		t: t, mode: mode, seed: seed,
		rng:    rand.New(rand.NewPCG(seed, 7)),
		nodes:  map[uint64]*chaosNode{},
		reads:  map[string]uint64{},
		events: make([]string, 0, leaseChaosTail),
	}
	c.tickPerMille = []int{20, 50, 100, 300}[c.rng.IntN(4)]
	c.heartbeat = 1 + c.rng.IntN(4)
	const nodes, voters = 5, 3
	cs := pb.ConfState{}
	for id := uint64(1); id <= voters; id++ {
		cs.Voters = append(cs.Voters, id)
	}
	for id := uint64(1); id <= nodes; id++ {
		s := NewMemoryStorage()
		snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: cs}}
		if err := s.ApplySnapshot(snap); err != nil {
			t.Fatal(err)
		}
		n := &chaosNode{id: id, storage: s, confState: cs, applied: 1}
		c.nodes[id] = n
		c.ids = append(c.ids, id)
		c.start(n)
	}
	return c
}

// run takes steps steps, handling every node's Readys and checking after
// each.
func (c *leaseChaos) run(steps int) {
	for c.step = 0; c.step < steps; c.step++ {
		c.takeStep()
		for _, id := range c.ids {
			c.handleReadys(c.nodes[id])
		}
		c.checkLeases()
	}
	for _, n := range c.nodes {
		c.stats.maxTerm = max(c.stats.maxTerm, n.rn.raft.Term)
	}
}

// start (re)creates n's RawNode from its storage.
func (c *leaseChaos) start(n *chaosNode) {
	cfg := testConfig(n.id, n.storage)
	cfg.RandomSource = rand.NewPCG(c.rng.Uint64(), n.id)
	withLease(cfg)
	cfg.HeartbeatTick = c.heartbeat
	cfg.Applied = n.applied
	cfg.AsyncStorageWrites = c.mode.async
	rn, err := NewRawNode(cfg)
	if err != nil {
		c.fail("node %x: %v", n.id, err)
	}
	n.rn = rn
	n.down = false
}

// note records an event.
func (c *leaseChaos) note(format string, args ...any) {
	e := fmt.Sprintf("%d: ", c.step) + fmt.Sprintf(format, args...)
	if len(c.events) < cap(c.events) {
		c.events = append(c.events, e)
		return
	}
	c.events[c.next] = e
	c.next = (c.next + 1) % len(c.events)
}

// fail stops the test with the seed, the mode, the latest events and how
// to replay the run.
func (c *leaseChaos) fail(format string, args ...any) {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "step %d: %s\n\nseed %d, mode %s; the last %d events:\n", c.step, fmt.Sprintf(format, args...), c.seed, c.mode.name, len(c.events))
	for i := range c.events {
		b.WriteString(c.events[(c.next+i)%len(c.events)])
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "\nreplay: go test -run 'TestLeaseChaos/%s$' -lease.seed=%d -lease.seeds=1 -lease.steps=%d .",
		c.mode.name, c.seed, *leaseChaosSteps)
	c.t.Fatal(b.String())
}

// maxCommit is the highest commit index on any node.
func (c *leaseChaos) maxCommit() uint64 {
	var m uint64
	for _, n := range c.nodes {
		m = max(m, n.rn.raft.raftLog.committed)
	}
	return m
}

// takeStep takes one random step.
func (c *leaseChaos) takeStep() {
	p := c.rng.IntN(1000)
	if c.rng.IntN(1000) < c.tickPerMille {
		c.tick()
		return
	}
	if c.rng.IntN(100000) < c.tickPerMille {
		c.togglePartition()
		return
	}
	if c.mode.async && c.rng.IntN(4) == 0 {
		c.storageWork()
		return
	}
	switch {
	case p < 750:
		c.deliver()
	case p < 800:
		c.drop()
	case p < 850:
		c.propose()
	case p < 920:
		c.read()
	case p < 935:
		c.campaign()
	case p < 950:
		c.transfer()
	case p < 958:
		if n := c.randNode(); n != nil {
			c.note("forget %x", n.id)
			_ = n.rn.ForgetLeader()
		}
	case p < 968:
		c.crashOrRestart()
	case p < 975 && c.mode.async:
		c.storageWork()
	case p < 975:
		c.applyDeferred()
	case p < 985:
		c.changeConf()
	}
}

// tick ticks the next node of the round.
func (c *leaseChaos) tick() {
	if len(c.round) == 0 {
		if c.tickOrder == nil {
			c.tickOrder = append([]uint64(nil), c.ids...)
			c.shuffle(c.tickOrder)
		}
		c.round = append(c.round[:0], c.tickOrder...)
		if c.mode.shuffle {
			c.shuffle(c.round)
		}
	}
	n := c.nodes[c.round[0]]
	c.round = c.round[1:]
	if n.down {
		// Its clock runs on; it restarts with a full promise.
		return
	}
	r := n.rn.raft
	if c.rng.IntN(10) == 0 {
		n.rn.TickQuiesced()
		c.note("tick %x quiesced", n.id)
		return
	}
	n.rn.Tick()
	c.note("tick %x (%v, term %d, tick %d, promise %d)", n.id, r.state, r.Term, r.ticks, r.voteLease)
}

func (c *leaseChaos) shuffle(ids []uint64) {
	c.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
}

func (c *leaseChaos) togglePartition() {
	if c.side != nil {
		c.side = nil
		c.note("heal")
		return
	}
	c.side = map[uint64]bool{}
	for _, id := range c.ids {
		c.side[id] = c.rng.IntN(2) == 0
	}
	c.note("partition %v", c.side)
}

// randNode returns a random node, or nil if it is down.
func (c *leaseChaos) randNode() *chaosNode {
	if n := c.nodes[c.ids[c.rng.IntN(len(c.ids))]]; !n.down {
		return n
	}
	return nil
}

// leader returns a random node that is up and leads (in any term), or nil.
func (c *leaseChaos) leader() *chaosNode {
	var ls []*chaosNode
	for _, id := range c.ids {
		if n := c.nodes[id]; !n.down && n.rn.raft.state == StateLeader {
			ls = append(ls, n)
		}
	}
	if len(ls) == 0 {
		return nil
	}
	return ls[c.rng.IntN(len(ls))]
}

// deliver steps a message in flight (half the time one of the three
// oldest) into its recipient, and checks that a node within its promise
// grants no vote.
func (c *leaseChaos) deliver() {
	if len(c.net) == 0 {
		return
	}
	i := c.rng.IntN(len(c.net))
	if c.rng.IntN(2) == 0 {
		i = c.rng.IntN(min(len(c.net), 3))
	}
	m := c.net[i]
	if c.side != nil && c.side[m.From] != c.side[m.To] {
		c.net = append(c.net[:i], c.net[i+1:]...)
		return
	}
	if c.rng.IntN(20) != 0 {
		c.net = append(c.net[:i], c.net[i+1:]...)
	}
	to := c.nodes[m.To]
	if to == nil || to.down {
		return
	}
	c.note("deliver %v %x->%x term %d index %d logterm %d commit %d reject %v ctx %q",
		m.Type, m.From, m.To, m.Term, m.Index, m.LogTerm, m.Commit, m.Reject, m.Context)
	r := to.rn.raft
	promise, queued := r.voteLease, len(r.msgsAfterAppend)
	_ = to.rn.Step(m)
	if (m.Type != pb.MsgVote && m.Type != pb.MsgPreVote) || promise == 0 || string(m.Context) == string(campaignTransfer) {
		return
	}
	// Vote responses wait for the hard state to be durable.
	for _, resp := range r.msgsAfterAppend[min(queued, len(r.msgsAfterAppend)):] {
		if resp.To == m.From && resp.Type == voteRespMsgType(m.Type) && !resp.Reject {
			c.fail("node %x granted %v to %x with %d ticks of promise left", to.id, m.Type, m.From, promise)
		}
	}
}

func (c *leaseChaos) drop() {
	if len(c.net) > 0 {
		i := c.rng.IntN(len(c.net))
		c.net = append(c.net[:i], c.net[i+1:]...)
	}
}

func (c *leaseChaos) propose() {
	if l := c.leader(); l != nil {
		c.note("propose at %x", l.id)
		_ = l.rn.Propose([]byte("w"))
	}
}

// read asks a read of a leader or of any node, noting the highest commit
// index anywhere: the answer must not be below it.
func (c *leaseChaos) read() {
	var n *chaosNode
	if c.rng.IntN(2) == 0 {
		n = c.leader()
	} else {
		n = c.randNode()
	}
	if n == nil {
		return
	}
	c.lastRead++
	ctx := "r" + strconv.Itoa(c.lastRead)
	c.reads[ctx] = c.maxCommit()
	lease := n.rn.raft.state == StateLeader && n.rn.raft.leaseValid()
	if lease {
		c.stats.leaseReads++
	}
	c.note("read %s at %x (lease %v), highest commit %d", ctx, n.id, lease, c.reads[ctx])
	n.rn.ReadIndex([]byte(ctx))
}

// campaign calls Campaign on a random node, which must not start an
// election within the node's promise.
func (c *leaseChaos) campaign() {
	n := c.randNode()
	if n == nil {
		return
	}
	r := n.rn.raft
	c.note("campaign %x", n.id)
	promise, state, term := r.voteLease, r.state, r.Term
	_ = n.rn.Campaign()
	campaigning := r.state == StateCandidate || r.state == StatePreCandidate
	if promise > 0 && campaigning && (r.state != state || r.Term != term) {
		c.fail("node %x campaigned with %d ticks of promise left", n.id, promise)
	}
}

func (c *leaseChaos) transfer() {
	if l := c.leader(); l != nil {
		to := c.ids[c.rng.IntN(len(c.ids))]
		c.note("transfer %x -> %x", l.id, to)
		l.rn.TransferLeader(to)
	}
}

// crashOrRestart restarts a down node, or crashes one that is up (and half
// the time restarts it at once). A crash loses whatever the node had not
// written to its storage or applied.
func (c *leaseChaos) crashOrRestart() {
	n := c.nodes[c.ids[c.rng.IntN(len(c.ids))]]
	if !n.down {
		c.note("crash %x", n.id)
		n.down = true
		n.deferred = nil
		n.appendQ, n.applyQ = nil, nil
		if c.rng.IntN(2) != 0 {
			return
		}
	}
	c.note("restart %x", n.id)
	if _, err := n.storage.CreateSnapshot(n.applied, &n.confState, nil); err != nil && err != ErrSnapOutOfDate {
		c.fail("node %x: snapshot: %v", n.id, err)
	}
	c.start(n)
}

// applyDeferred applies the first deferred Ready (delayed-apply mode).
func (c *leaseChaos) applyDeferred() {
	for _, id := range c.ids {
		if n := c.nodes[id]; n.deferred != nil && !n.down {
			rd := *n.deferred
			n.deferred = nil
			c.applyReady(n, rd)
			return
		}
	}
}

func (c *leaseChaos) changeConf() {
	l := c.leader()
	if l == nil {
		return
	}
	cc := c.randConfChange(l.confState)
	c.note("conf change at %x: %v", l.id, cc)
	_ = l.rn.ProposeConfChange(cc)
}

// randConfChange returns a change of cs: leaving a joint configuration, or
// adding or removing a voter, adding a learner, or a joint change.
func (c *leaseChaos) randConfChange(cs pb.ConfState) pb.ConfChangeV2 {
	var cc pb.ConfChangeV2
	if len(cs.VotersOutgoing) > 0 {
		return cc // leave the joint configuration
	}
	id := c.ids[c.rng.IntN(len(c.ids))]
	isVoter := false
	for _, v := range cs.Voters {
		isVoter = isVoter || v == id
	}
	change := func(typ pb.ConfChangeType, id uint64) {
		cc.Changes = append(cc.Changes, pb.ConfChangeSingle{Type: typ, NodeID: id})
	}
	switch c.rng.IntN(4) {
	case 0:
		if isVoter && len(cs.Voters) > 1 {
			change(pb.ConfChangeRemoveNode, id)
		} else {
			change(pb.ConfChangeAddNode, id)
		}
	case 1:
		change(pb.ConfChangeAddLearnerNode, id)
	case 2:
		// A joint change adding one voter and removing another.
		other := c.ids[c.rng.IntN(len(c.ids))]
		cc.Transition = pb.ConfChangeTransitionJointExplicit
		if c.rng.IntN(2) == 0 {
			cc.Transition = pb.ConfChangeTransitionAuto
		}
		change(pb.ConfChangeAddNode, id)
		if other != id {
			change(pb.ConfChangeRemoveNode, other)
		}
	default:
		change(pb.ConfChangeAddNode, id)
	}
	return cc
}

// handleReadys does what the application does with n's Readys.
func (c *leaseChaos) handleReadys(n *chaosNode) {
	if n.down || n.deferred != nil {
		return
	}
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		c.checkReads(n, rd.ReadStates)
		if c.mode.async {
			c.queueStorageWork(n, rd)
			continue
		}
		if err := n.storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			c.fail("node %x: save: %v", n.id, err)
		}
		if !IsEmptySnap(rd.Snapshot) {
			n.confState = rd.Snapshot.Metadata.ConfState
			n.applied = rd.Snapshot.Metadata.Index
		}
		c.net = append(c.net, rd.Messages...)
		if c.mode.lagApply && len(rd.CommittedEntries) > 0 && c.rng.IntN(3) == 0 {
			n.deferred = &rd
			ents := rd.CommittedEntries
			c.note("node %x defers applying %d..%d", n.id, ents[0].Index, ents[len(ents)-1].Index)
			return
		}
		c.applyReady(n, rd)
	}
}

// checkReads checks that every read answered is at or above the highest
// commit index when it was asked.
func (c *leaseChaos) checkReads(n *chaosNode, rss []ReadState) {
	for _, rs := range rss {
		c.stats.readsAnswered++
		if asked, ok := c.reads[string(rs.RequestCtx)]; ok && rs.Index < asked {
			c.fail("node %x: read %q answered at %d, below the commit index %d when it was asked", n.id, rs.RequestCtx, rs.Index, asked)
		}
	}
}

func (c *leaseChaos) applyReady(n *chaosNode, rd Ready) {
	c.applyEntries(n, rd.CommittedEntries)
	n.rn.Advance(rd)
}

func (c *leaseChaos) applyEntries(n *chaosNode, ents []pb.Entry) {
	for _, e := range ents {
		if e.Index <= n.applied {
			continue
		}
		if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
			cc, err := pb.UnmarshalConfChange(e)
			if err != nil {
				c.fail("node %x: %v", n.id, err)
			}
			n.confState = *n.rn.ApplyConfChange(cc)
			c.note("node %x applied conf change %v at %d: %v", n.id, cc, e.Index, n.confState)
		}
		n.applied = e.Index
	}
}

// queueStorageWork sorts an async Ready's messages: storage work to the
// node's queues, the rest to the network.
func (c *leaseChaos) queueStorageWork(n *chaosNode, rd Ready) {
	for _, m := range rd.Messages {
		switch m.To {
		case LocalAppendThread:
			n.appendQ = append(n.appendQ, m)
		case LocalApplyThread:
			n.applyQ = append(n.applyQ, m)
		default:
			c.net = append(c.net, m)
		}
	}
}

// storageWork does a random node's next append or apply (async mode).
func (c *leaseChaos) storageWork() {
	n := c.randNode()
	if n == nil {
		return
	}
	if len(n.appendQ) > 0 && (len(n.applyQ) == 0 || c.rng.IntN(2) == 0) {
		c.storageAppend(n)
	} else if len(n.applyQ) > 0 {
		c.storageApply(n)
	}
}

func (c *leaseChaos) storageAppend(n *chaosNode) {
	m := n.appendQ[0]
	n.appendQ = n.appendQ[1:]
	if err := saveStorageAppend(n.storage, m); err != nil {
		c.fail("node %x: save: %v", n.id, err)
	}
	if m.Snapshot != nil {
		n.confState = m.Snapshot.Metadata.ConfState
		n.applied = max(n.applied, m.Snapshot.Metadata.Index)
	}
	c.note("node %x wrote term %d vote %d commit %d and %d entries", n.id, m.Term, m.Vote, m.Commit, len(m.Entries))
	for _, resp := range m.Responses {
		if resp.To == n.id {
			_ = n.rn.Step(resp)
		} else {
			c.net = append(c.net, resp)
		}
	}
}

func (c *leaseChaos) storageApply(n *chaosNode) {
	m := n.applyQ[0]
	if last, _ := n.storage.LastIndex(); len(m.Entries) > 0 && m.Entries[len(m.Entries)-1].Index > last {
		return // not written yet
	}
	n.applyQ = n.applyQ[1:]
	c.applyEntries(n, m.Entries)
	for _, resp := range m.Responses {
		_ = n.rn.Step(resp)
	}
}

// checkLeases checks every leader that holds its lease and is a voter.
func (c *leaseChaos) checkLeases() {
	for _, id := range c.ids {
		l := c.nodes[id]
		if l.down || l.rn.raft.state != StateLeader || !l.rn.raft.leaseValid() || !l.rn.raft.leaderIsVoter() {
			continue
		}
		lr := l.rn.raft
		if !lr.leaseGivenUp {
			// A leader transfer's campaign ignores the promises: they
			// say nothing once a timeout-now is out.
			c.checkPromises(lr)
		}
		for _, xid := range c.ids {
			x := c.nodes[xid]
			xl := x.rn.raft.raftLog
			term, _ := xl.term(xl.committed)
			if term > lr.Term {
				c.fail("leader %x term %d holds its lease (tick %d, acks %v) but node %x committed index %d of term %d",
					l.id, lr.Term, lr.ticks, lr.leaseAcks, x.id, xl.committed, term)
			}
		}
	}
}

// checkPromises checks that the nodes that would refuse a vote form a
// quorum of lr's configuration.
func (c *leaseChaos) checkPromises(lr *raft) {
	refusing := map[uint64]bool{}
	for _, id := range c.ids {
		if x := c.nodes[id]; x.down || id == lr.id || x.rn.raft.voteLease > 0 {
			refusing[id] = true
		}
	}
	if lr.trk.Config.Voters.VoteResult(refusing) != quorum.VoteWon {
		c.fail("leader %x term %d holds its lease (tick %d, acks %v) but only %v keep a promise",
			lr.id, lr.Term, lr.ticks, lr.leaseAcks, refusing)
	}
}
