package multiraft

import (
	"fmt"
	"testing"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// appliedAt returns the entry node id applied at index in group g.
func (c *cluster) appliedAt(id, g, index uint64) (pb.Entry, bool) {
	for _, e := range c.node(id).applied[g] {
		if e.Index == index {
			return e, true
		}
	}
	return pb.Entry{}, false
}

// outcomeLog records the forwarded outcomes each node's GroupReadys carry,
// and checks that each arrives no later than the Ready that applies its
// entry.
type outcomeLog struct {
	got map[[2]uint64][]raft.ForwardedOutcome // (node, group)
}

func watchOutcomes(c *cluster) *outcomeLog {
	l := &outcomeLog{got: map[[2]uint64][]raft.ForwardedOutcome{}}
	c.onPersist = func(n *testNode, gr *GroupReady) {
		k := [2]uint64{n.id, gr.GroupID}
		l.got[k] = append(l.got[k], gr.ForwardedOutcomes...)
	}
	return l
}

// TestProposeWithResultOnLeader: on each group's leader, ProposeWithResult
// reports the (index, term) the proposal was appended at, and the entry
// every node applies there is the proposal, of that term. A leader's
// proposal is not forwarded, so no outcome follows.
func TestProposeWithResultOnLeader(t *testing.T) {
	c := newCluster(t, 1, 3, 3, Config{DisableQuiescence: true})
	c.electSpread()
	outcomes := watchOutcomes(c)
	results := map[uint64]raft.ProposalResult{}
	for _, g := range c.groups {
		lead := c.leader(g)
		st, err := c.node(lead).host.BasicStatus(g)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.node(lead).host.ProposeWithResult(g, []byte(fmt.Sprintf("lead%d", g)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Forwarded || res.Leader != lead || res.Term != st.Term || res.Index != st.Commit+1 {
			t.Fatalf("group %d: result %+v, want appended at (%d, %d) by %d", g, res, st.Commit+1, st.Term, lead)
		}
		results[g] = res
	}
	// A conf change too: adding a learner on node 4 (never started: its
	// batches are dropped).
	c.cut = func(_, to uint64) bool { return to == 4 }
	cc := pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: 4}
	ccres, err := c.node(1).host.ProposeConfChangeWithResult(1, cc)
	if err != nil {
		t.Fatal(err)
	}
	if ccres.Forwarded || ccres.Index != results[1].Index+1 || ccres.Term != results[1].Term {
		t.Fatalf("conf change result %+v, want the entry after %+v", ccres, results[1])
	}
	c.settle()
	for _, g := range c.groups {
		res := results[g]
		for _, n := range c.nodes {
			e, ok := c.appliedAt(n.id, g, res.Index)
			if !ok || e.Term != res.Term || string(e.Data) != fmt.Sprintf("lead%d", g) {
				t.Fatalf("node %d group %d: applied %+v at %d, want the proposal at term %d", n.id, g, e, res.Index, res.Term)
			}
		}
	}
	if e, ok := c.appliedAt(1, 1, ccres.Index); !ok || e.Type != pb.EntryConfChange || e.Term != ccres.Term {
		t.Fatalf("applied %+v at %d, want the conf change", e, ccres.Index)
	}
	for k, o := range outcomes.got {
		if len(o) > 0 {
			t.Fatalf("node %d group %d: outcomes %+v for proposals made on the leader", k[0], k[1], o)
		}
	}
}

// TestForwardedProposalOutcome: on a quiesced cluster, ProposeWithResult on
// a follower wakes the group (as Propose does), forwards the proposal to
// its leader, and a GroupReady of that follower later carries the outcome
// under the ForwardID, with the (index, term) of the entry every node
// applies, no later than the Ready that applies it there. The other
// groups stay asleep, and the group quiesces again afterwards.
func TestForwardedProposalOutcome(t *testing.T) { forwardedOutcome(t, 1) }

func forwardedOutcome(t testing.TB, seed uint64) {
	c := quietClusterSeed(t, seed, 3)
	outcomes := watchOutcomes(c)
	// Group 2 is led by node 2; propose on nodes 1 and 3, a write and a
	// conf change (adding voter 3 again, which changes nothing).
	const g = 2
	f1 := c.node(1)
	f3 := c.node(3)
	res1, err := f1.host.ProposeWithResult(g, []byte("forwarded"))
	if err != nil {
		t.Fatal(err)
	}
	if f1.host.Quiesced(g) {
		t.Fatal("ProposeWithResult did not wake the follower's group")
	}
	res3, err := f3.host.ProposeConfChangeWithResult(g, pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []raft.ProposalResult{res1, res3} {
		if !res.Forwarded || res.Leader != 2 || res.ForwardID == 0 || res.Index != 0 {
			t.Fatalf("result %+v, want forwarded to 2 with a ForwardID", res)
		}
	}
	// Each outcome must be known before the follower applies its entry.
	c.onApply = func(n *testNode, group uint64, e pb.Entry) {
		if group != g || (n.id != 1 && n.id != 3) {
			return
		}
		for _, o := range outcomes.got[[2]uint64{n.id, g}] {
			if o.Index == e.Index {
				return
			}
		}
		if (n.id == 1 && string(e.Data) == "forwarded") || (n.id == 3 && e.Type == pb.EntryConfChange && e.Index > 3) {
			t.Fatalf("node %d applies its forwarded proposal at %d before its outcome", n.id, e.Index)
		}
	}
	c.settle()
	for _, f := range []struct {
		n   *testNode
		res raft.ProposalResult
	}{{f1, res1}, {f3, res3}} {
		got := outcomes.got[[2]uint64{f.n.id, g}]
		if len(got) != 1 || got[0].ForwardID != f.res.ForwardID || got[0].Unknown {
			t.Fatalf("node %d: outcomes %+v, want one for ForwardID %d", f.n.id, got, f.res.ForwardID)
		}
		o := got[0]
		for _, n := range c.nodes {
			e, ok := c.appliedAt(n.id, g, o.Index)
			if !ok || e.Term != o.Term {
				t.Fatalf("node %d applied %+v at %d, want term %d", n.id, e, o.Index, o.Term)
			}
		}
	}
	if e, _ := c.appliedAt(2, g, outcomes.got[[2]uint64{1, g}][0].Index); string(e.Data) != "forwarded" {
		t.Fatalf("node 1's outcome points at %+v", e)
	}
	if e, _ := c.appliedAt(2, g, outcomes.got[[2]uint64{3, g}][0].Index); e.Type != pb.EntryConfChange {
		t.Fatalf("node 3's outcome points at %+v", e)
	}
	for _, other := range []uint64{1, 3} {
		for _, n := range c.nodes {
			if !n.host.Quiesced(other) {
				t.Fatalf("node %d: group %d woke with group %d", n.id, other, g)
			}
		}
	}
	for range 40 {
		c.tick()
	}
	for _, n := range c.nodes {
		if !n.host.Quiesced(g) {
			t.Fatalf("node %d: group %d did not quiesce again", n.id, g)
		}
	}
}

// TestForwardedOutcomeUnknownOnTick: a follower cut off from everyone
// forwards a proposal that never arrives; the tick that gives it up (four
// election timeouts later) hands its Unknown outcome to the next Ready,
// even though nothing else reaches the group then.
func TestForwardedOutcomeUnknownOnTick(t *testing.T) { forwardedOutcomeUnknownOnTick(t, 1) }

func forwardedOutcomeUnknownOnTick(t testing.TB, seed uint64) {
	c := newCluster(t, seed, 3, 3, Config{DisableQuiescence: true})
	c.electSpread()
	outcomes := watchOutcomes(c)
	c.cut = func(from, to uint64) bool { return from == 3 || to == 3 }
	const g = 1 // led by node 1
	res, err := c.node(3).host.ProposeWithResult(g, []byte("lost"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Forwarded || res.ForwardID == 0 {
		t.Fatalf("result %+v, want forwarded", res)
	}
	c.settle()
	const window = 4 * 10 // four election timeouts of groupConfig
	for tick := 1; tick <= window; tick++ {
		c.tick()
		got := outcomes.got[[2]uint64{3, g}]
		if tick < window {
			if len(got) != 0 {
				t.Fatalf("tick %d: outcome %+v before the proposal was given up", tick, got)
			}
			continue
		}
		if len(got) != 1 || !got[0].Unknown || got[0].ForwardID != res.ForwardID {
			t.Fatalf("tick %d: outcomes %+v, want ForwardID %d unknown", tick, got, res.ForwardID)
		}
	}
}

// A follower watching a proposal it forwarded does not quiesce: its
// window is counted in ticks, so asleep it would never report the
// outcome. Here the leader refuses the proposal (leaving a joint
// configuration that is not joint) and says nothing, the group idles, and
// the follower still reports the proposal unknown within its window.
func TestQuiescedFollowerStillReportsForwarded(t *testing.T) {
	c := quietClusterSeed(t, 1, 3)
	outcomes := watchOutcomes(c)
	const g = 2 // led by node 2
	// (With a context, so that its entry is not empty: an empty proposal
	// is reported unknown at once.)
	res, err := c.node(1).host.ProposeConfChangeWithResult(g, pb.ConfChangeV2{Context: []byte("leave")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Forwarded {
		t.Fatalf("node 1 leads group %d", g)
	}
	c.settle()
	for range 400 { // ten times the window
		c.tick()
	}
	got := outcomes.got[[2]uint64{1, g}]
	if len(got) != 1 || got[0].ForwardID != res.ForwardID || !got[0].Unknown {
		t.Fatalf("outcomes %+v, want ForwardID %d unknown", got, res.ForwardID)
	}
}
