package multiraft

import (
	"fmt"
	"hash/fnv"
	"math"
	"strings"

	"github.com/anishathalye/porcupine"
	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/rafttest"
)

const (
	// simKeys is the number of keys the simulation's clients use; each
	// lives in the group its hash picks.
	simKeys = 16
	// simClients is the number of clients, each with at most one
	// operation outstanding.
	simClients = 12
	// simOpPatience is how many steps a client waits for an answer
	// before it gives up on the operation (which may still take effect).
	simOpPatience = 200
)

// kvClients are the simulation's key-value clients and each node's
// key-value state machine per group. A client sends each operation through
// a random live node: a put, or a get through the log, as a proposal, and
// a get through ReadIndex. The history is checked for linearizability key
// by key with porcupine.
type kvClients struct {
	s *simulation
	// clock orders calls and returns; every event takes the next value.
	clock int64
	// state[node][group] is what node has applied of group.
	state   map[uint64]map[uint64]map[string]string
	history []*kvOp
	// pending are the operations whose client waits for an answer.
	pending []*kvOp
	busy    [simClients]bool
	// staleReads serves gets from the local state at once, a client-side
	// mutation the check must catch (see TestSimCatchesStaleReads).
	staleReads bool
}

// kvOp is one client operation.
type kvOp struct {
	id      int
	client  int
	node    uint64
	group   uint64
	in      rafttest.KVInput
	out     rafttest.KVOutput
	viaRead bool
	// readIndex is the read point of a ReadIndex get once known.
	readIndex uint64
	started   int
	call, ret int64 // ret == 0: no answer (yet)
}

// simStaleReads makes new simulations' clients read stale (see
// kvClients.staleReads); only TestSimCatchesStaleReads sets it.
var simStaleReads bool

func newKVClients(s *simulation) *kvClients {
	return &kvClients{s: s, state: map[uint64]map[uint64]map[string]string{}, staleReads: simStaleReads}
}

func keyGroup(key string, groups int) uint64 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return uint64(h.Sum32())%uint64(groups) + 1
}

func (k *kvClients) tick() int64 {
	k.clock++
	return k.clock
}

func (k *kvClients) groupState(node, g uint64) map[string]string {
	byGroup := k.state[node]
	if byGroup == nil {
		byGroup = map[uint64]map[string]string{}
		k.state[node] = byGroup
	}
	st := byGroup[g]
	if st == nil {
		st = map[string]string{}
		byGroup[g] = st
	}
	return st
}

// issue starts an operation of a random idle client, if any.
func (k *kvClients) issue() {
	s := k.s
	client := s.rng.IntN(simClients)
	if k.busy[client] {
		return
	}
	live := s.live()
	n := live[s.rng.IntN(len(live))]
	key := fmt.Sprintf("k%d", s.rng.IntN(simKeys))
	op := &kvOp{id: len(k.history) + 1, client: client, node: n.id, group: keyGroup(key, len(s.groups)), started: s.steps}
	op.in = rafttest.KVInput{Op: rafttest.KVGet, Key: key}
	var err error
	switch r := s.rng.IntN(4); {
	case r < 2:
		op.in = rafttest.KVInput{Op: rafttest.KVPut, Key: key, Value: fmt.Sprintf("v%d", op.id)}
		op.out = rafttest.KVOutput{Unknown: true}
		op.call = k.tick()
		err = n.host.Propose(op.group, []byte(fmt.Sprintf("kv/%d/put/%s/%s", op.id, key, op.in.Value)))
	case k.staleReads:
		op.call = k.tick()
		v, ok := k.groupState(n.id, op.group)[key]
		op.out = rafttest.KVOutput{Found: ok, Value: v}
		op.ret = k.tick()
		k.history = append(k.history, op)
		return
	case r < 3:
		op.viaRead = true
		op.call = k.tick()
		err = n.host.ReadIndex(op.group, []byte(fmt.Sprintf("kv/%d", op.id)))
	default:
		op.call = k.tick()
		err = n.host.Propose(op.group, []byte(fmt.Sprintf("kv/%d/get/%s", op.id, key)))
	}
	if err != nil {
		return // refused at once: it never took effect
	}
	k.history = append(k.history, op)
	k.pending = append(k.pending, op)
	k.busy[client] = true
}

// finish answers op and frees its client.
func (k *kvClients) finish(op *kvOp) {
	op.ret = k.tick()
	k.drop(op)
}

// drop frees op's client; op stays in the history without an answer
// unless it has one.
func (k *kvClients) drop(op *kvOp) {
	k.busy[op.client] = false
	for i, p := range k.pending {
		if p == op {
			k.pending = append(k.pending[:i], k.pending[i+1:]...)
			return
		}
	}
}

func (k *kvClients) find(id int) *kvOp {
	for _, op := range k.pending {
		if op.id == id {
			return op
		}
	}
	return nil
}

// apply runs an entry node n applied in group g through n's state machine
// and answers the operation if n is the node its client asked.
func (k *kvClients) apply(n *testNode, g uint64, e pb.Entry) {
	if e.Type != pb.EntryNormal || !strings.HasPrefix(string(e.Data), "kv/") {
		k.answerReads(n, g)
		return
	}
	f := strings.SplitN(string(e.Data), "/", 5)
	var id int
	fmt.Sscan(f[1], &id)
	st := k.groupState(n.id, g)
	op := k.find(id)
	if op != nil && op.node != n.id {
		op = nil
	}
	switch f[2] {
	case "put":
		st[f[3]] = f[4]
		if op != nil {
			k.finish(op)
		}
	case "get":
		if op != nil {
			v, ok := st[f[3]]
			op.out = rafttest.KVOutput{Found: ok, Value: v}
			k.finish(op)
		}
	}
	k.answerReads(n, g)
}

// readState records the read point of a ReadIndex get.
func (k *kvClients) readState(n *testNode, g uint64, rs raft.ReadState) {
	var id int
	if _, err := fmt.Sscanf(string(rs.RequestCtx), "kv/%d", &id); err != nil {
		return
	}
	if op := k.find(id); op != nil && op.node == n.id && op.readIndex == 0 {
		op.readIndex = rs.Index
		k.answerReads(n, g)
	}
}

// answerReads answers the ReadIndex gets through n on g whose read point
// n has applied.
func (k *kvClients) answerReads(n *testNode, g uint64) {
	for i := 0; i < len(k.pending); i++ {
		op := k.pending[i]
		if !op.viaRead || op.node != n.id || op.group != g || op.readIndex == 0 || k.s.applied[n.id][g] < op.readIndex {
			continue
		}
		v, ok := k.groupState(n.id, g)[op.in.Key]
		op.out = rafttest.KVOutput{Found: ok, Value: v}
		k.finish(op)
		i--
	}
}

// crashed forgets node's state and abandons the operations sent through
// it.
func (k *kvClients) crashed(node uint64) {
	delete(k.state, node)
	for i := 0; i < len(k.pending); i++ {
		if op := k.pending[i]; op.node == node {
			k.drop(op)
			i--
		}
	}
}

// expire makes clients give up on operations older than simOpPatience.
func (k *kvClients) expire() {
	for i := 0; i < len(k.pending); i++ {
		if op := k.pending[i]; k.s.steps-op.started > simOpPatience {
			k.drop(op)
			i--
		}
	}
}

// check fails unless the history is linearizable, key by key. A put
// without an answer may have taken effect at any time after its call; a
// get without one says nothing.
func (k *kvClients) check() (puts, gets int) {
	s := k.s
	s.t.Helper()
	var ops []porcupine.Operation
	for _, op := range k.history {
		ret := op.ret
		if ret == 0 {
			if op.in.Op == rafttest.KVGet {
				continue
			}
			ret = math.MaxInt64
		} else if op.in.Op == rafttest.KVGet {
			gets++
		} else {
			puts++
		}
		ops = append(ops, porcupine.Operation{ClientId: op.client, Input: op.in, Call: op.call, Output: op.out, Return: ret})
	}
	if !porcupine.CheckOperations(rafttest.KVModel(), ops) {
		s.t.Fatalf("the key-value history (%d operations, %d puts and %d gets answered) is not linearizable", len(ops), puts, gets)
	}
	return puts, gets
}
