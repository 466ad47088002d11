package raft

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// None is the node ID that means "no node": no leader known, no vote cast.
const None uint64 = 0

// ReadOnlyOption chooses how the leader confirms that a read index is safe
// to serve.
type ReadOnlyOption int

const (
	// ReadOnlySafe confirms leadership with a heartbeat round acknowledged
	// by a quorum before answering a read. It is safe under any timing.
	ReadOnlySafe ReadOnlyOption = iota
	// ReadOnlyLeaseBased answers from the leader's commit index without a
	// round, trusting that no other leader can exist within an election
	// timeout of the last quorum contact. It relies on bounded clock drift
	// and requires CheckQuorum. A leader transfer's campaign does not
	// wait for that timeout: a leader that sent its transferee the
	// message to campaign (MsgTimeoutNow) confirms reads with a round for
	// the rest of its term, even if it abandoned the transfer.
	ReadOnlyLeaseBased
)

func (o ReadOnlyOption) String() string {
	switch o {
	case ReadOnlySafe:
		return "ReadOnlySafe"
	case ReadOnlyLeaseBased:
		return "ReadOnlyLeaseBased"
	}
	return fmt.Sprintf("ReadOnlyOption(%d)", int(o))
}

// Config holds the parameters of a node. Build one, then pass it to
// NewRawNode (or StartNode); the node keeps its own copy of what it needs.
type Config struct {
	// ID identifies this node in the cluster. It must not be 0 (None).
	ID uint64

	// ElectionTick is how many Tick calls a follower waits without hearing
	// from a leader before it campaigns. The wait is randomized within
	// [ElectionTick, 2*ElectionTick) so that followers rarely campaign at
	// once. It must be greater than HeartbeatTick; ten times is usual.
	ElectionTick int
	// HeartbeatTick is how many Tick calls a leader waits between
	// heartbeats to its followers.
	HeartbeatTick int

	// Storage is where the node reads its persisted log and state. The
	// application writes Ready's entries, hard state and snapshots to it.
	// A fresh node's storage is empty; a restarted node resumes from it.
	Storage Storage

	// Applied is the last index the application has applied, for a node
	// that restarts with a state machine that already holds those entries
	// (e.g. restored from its own snapshot). Committed entries up to
	// Applied are not handed out again. Leave it 0 to replay the whole
	// committed log after the storage's snapshot.
	//
	// The node learns its configuration from the ConfState returned by
	// Storage.InitialState and from the conf changes it hands out for
	// applying. With Applied past the storage's snapshot, the conf changes
	// up to Applied are not handed out again, so InitialState must already
	// reflect them (store the ConfState with the state machine).
	Applied uint64

	// AsyncStorageWrites lets the application persist and apply on its own
	// goroutines: Ready then carries MsgStorageAppend and MsgStorageApply
	// messages instead of asking for synchronous writes, and Advance must
	// not be called.
	//
	// The Responses of those messages belong to the RawNode that handed
	// them out. After a restart, drop every response still pending from
	// before it: do not step it into the new RawNode, which did not hand
	// that work out and cannot always tell (it may take an old response
	// as acknowledging or applying entries of its own). The new node
	// learns what was written from Storage.
	AsyncStorageWrites bool

	// MaxSizePerMsg caps the total encoded size of the entries in one
	// append message. An append always carries at least one entry if any
	// is due. 0 means one entry per message; math.MaxUint64 means no limit.
	MaxSizePerMsg uint64
	// MaxCommittedSizePerReady caps the total size of the committed
	// entries handed out for applying and not yet applied (with
	// AsyncStorageWrites, across every MsgStorageApply not yet answered).
	// At least one entry is always handed out. 0 means MaxSizePerMsg, as
	// in etcd raft; math.MaxUint64 means no limit.
	MaxCommittedSizePerReady uint64
	// MaxUncommittedEntriesSize caps the total payload size of the
	// leader's uncommitted entries; a proposal that would exceed it is
	// dropped with ErrProposalDropped. 0 means no limit.
	MaxUncommittedEntriesSize uint64
	// MaxInflightMsgs caps how many append messages may be in flight to
	// one follower in the replicate state. It must be positive.
	MaxInflightMsgs int
	// MaxInflightBytes caps the total size of the entries in flight to one
	// follower. 0 means no limit; otherwise it must be at least
	// MaxSizePerMsg.
	MaxInflightBytes uint64

	// CheckQuorum makes a leader step down when it has not heard from a
	// quorum within an election timeout, and makes a node that heard from
	// a leader within the last election timeout ignore vote requests
	// (leader lease), even if a later term or its own campaign has made it
	// forget that leader since.
	CheckQuorum bool
	// PreVote makes a node first ask whether it could win before it raises
	// its term (Raft thesis §9.6), so that a node rejoining after a
	// partition does not disrupt a healthy leader.
	PreVote bool

	// ReadOnlyOption chooses how read-index requests are confirmed.
	// ReadOnlyLeaseBased requires CheckQuorum.
	ReadOnlyOption ReadOnlyOption

	// Logger receives the node's logs. Nil uses the logger set with
	// SetLogger (by default one on log/slog's default logger).
	Logger Logger

	// DisableProposalForwarding makes followers drop proposals (with
	// ErrProposalDropped) instead of forwarding them to the leader.
	DisableProposalForwarding bool

	// DisableConfChangeValidation turns off the leader's checks that at
	// most one conf change is pending and that joint transitions are valid.
	// Only for applications that validate conf changes themselves.
	DisableConfChangeValidation bool

	// StepDownOnRemoval makes a leader step down when a conf change that
	// removes it (or demotes it to learner) is applied.
	StepDownOnRemoval bool

	// TraceLogger is accepted for compatibility with etcd raft, where it
	// receives state-machine tracing events in builds made with a tracing
	// tag. raftcore has no such build (StateTraceDeployed is false): the
	// value is kept in the Config and never called.
	TraceLogger TraceLogger

	// The fields below are raftcore's own; etcd raft's come first, in
	// etcd's order, so that code written against either compiles.

	// SnapshotTimeout is how many ticks a leader waits, after sending a
	// snapshot to a follower, for the follower to acknowledge it or for the
	// application to call ReportSnapshot. Past it the leader gives up on
	// that snapshot and probes the follower again (sending a new snapshot
	// if it still needs one), so a lost MsgSnap or a forgotten
	// ReportSnapshot cannot stall the follower forever. Set it well above
	// the time a snapshot takes to transfer. 0 means 50*ElectionTick.
	SnapshotTimeout int

	// RandomSource drives the randomized election timeout. Nil draws a
	// source seeded from the runtime's random generator. Tests set a
	// seeded source (e.g. rand.NewPCG(seed, id)) to make a whole cluster
	// reproducible.
	RandomSource rand.Source

	// ReuseReadyMessages lets the node reuse the memory of a Ready's
	// Messages once Advance is called: the Messages slice (the array of
	// pb.Message values) belongs to the application only until then. An
	// application that sends or copies every message before calling
	// Advance, as most do (a transport's queue of pb.Message values is a
	// copy), saves the allocation and garbage of every message: on three
	// voters with one entry per Ready, most of what the node allocates.
	// What the messages refer to (their Entries, Snapshot and Context) is
	// not reused and stays valid as usual. Messages kept past Advance are
	// overwritten at Advance (by zero values, or by messages queued since
	// the Ready) or by later messages after it.
	// It requires synchronous storage writes (not AsyncStorageWrites,
	// which has no Advance). Off by default: a Ready's slices are then the
	// application's to keep, as in etcd raft.
	ReuseReadyMessages bool
}

// Errors returned by Config.Validate. Each is wrapped with the offending
// value.
var (
	ErrConfigNil              = errors.New("raft: config: nil Config")
	ErrConfigZeroID           = errors.New("raft: config: ID must not be 0 (None)")
	ErrConfigLocalThreadID    = errors.New("raft: config: ID must not be LocalAppendThread or LocalApplyThread")
	ErrConfigHeartbeatTick    = errors.New("raft: config: HeartbeatTick must be greater than 0")
	ErrConfigElectionTick     = errors.New("raft: config: ElectionTick must be greater than HeartbeatTick")
	ErrConfigNilStorage       = errors.New("raft: config: Storage must not be nil")
	ErrConfigMaxInflightMsgs  = errors.New("raft: config: MaxInflightMsgs must be greater than 0")
	ErrConfigMaxInflightBytes = errors.New("raft: config: MaxInflightBytes must be 0 or at least MaxSizePerMsg")
	ErrConfigLeaseNeedsQuorum = errors.New("raft: config: ReadOnlyLeaseBased requires CheckQuorum")
	ErrConfigReadOnlyOption   = errors.New("raft: config: unknown ReadOnlyOption")
	ErrConfigSnapshotTimeout  = errors.New("raft: config: SnapshotTimeout must not be negative")
	ErrConfigReuseWithAsync   = errors.New("raft: config: ReuseReadyMessages requires synchronous storage writes, not AsyncStorageWrites")
)

// Validate returns an error for every impossible setting (wrapping one of
// the ErrConfig errors) and fills in the defaults for limits left 0:
// MaxUncommittedEntriesSize becomes unlimited, MaxCommittedSizePerReady
// becomes MaxSizePerMsg, SnapshotTimeout becomes 50*ElectionTick (or the
// largest int, should that overflow), and a nil Logger becomes the package
// logger.
func (c *Config) Validate() error {
	if c == nil {
		return ErrConfigNil
	}
	if err := c.check(); err != nil {
		return err
	}
	if c.MaxUncommittedEntriesSize == 0 {
		c.MaxUncommittedEntriesSize = noLimit
	}
	if c.MaxCommittedSizePerReady == 0 {
		c.MaxCommittedSizePerReady = c.MaxSizePerMsg
	}
	if c.Logger == nil {
		c.Logger = getLogger()
	}
	if c.SnapshotTimeout == 0 {
		c.SnapshotTimeout = saturatingMul(50, c.ElectionTick)
	}
	return nil
}

// saturatingMul returns a*b for positive a and b, or math.MaxInt when the
// product does not fit: a very large ElectionTick (idle groups are
// sometimes given 1<<30 or more) must not wrap a derived timeout around to
// a negative or tiny value.
func saturatingMul(a, b int) int {
	if b > math.MaxInt/a {
		return math.MaxInt
	}
	return a * b
}

// saturatingAdd returns a+b for non-negative a and b, or math.MaxInt when
// the sum does not fit.
func saturatingAdd(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

func (c *Config) check() error {
	switch {
	case c.ID == None:
		return ErrConfigZeroID
	case IsLocalMsgTarget(c.ID):
		return fmt.Errorf("%w (got %#x)", ErrConfigLocalThreadID, c.ID)
	case c.HeartbeatTick <= 0:
		return fmt.Errorf("%w (got %d)", ErrConfigHeartbeatTick, c.HeartbeatTick)
	case c.ElectionTick <= c.HeartbeatTick:
		return fmt.Errorf("%w (got ElectionTick %d, HeartbeatTick %d)", ErrConfigElectionTick, c.ElectionTick, c.HeartbeatTick)
	case c.Storage == nil:
		return ErrConfigNilStorage
	case c.SnapshotTimeout < 0:
		return fmt.Errorf("%w (got %d)", ErrConfigSnapshotTimeout, c.SnapshotTimeout)
	case c.MaxInflightMsgs <= 0:
		return fmt.Errorf("%w (got %d)", ErrConfigMaxInflightMsgs, c.MaxInflightMsgs)
	case c.MaxInflightBytes != 0 && c.MaxInflightBytes < c.MaxSizePerMsg:
		return fmt.Errorf("%w (got MaxInflightBytes %d, MaxSizePerMsg %d)", ErrConfigMaxInflightBytes, c.MaxInflightBytes, c.MaxSizePerMsg)
	case c.ReadOnlyOption != ReadOnlySafe && c.ReadOnlyOption != ReadOnlyLeaseBased:
		return fmt.Errorf("%w (%d)", ErrConfigReadOnlyOption, int(c.ReadOnlyOption))
	case c.ReadOnlyOption == ReadOnlyLeaseBased && !c.CheckQuorum:
		return ErrConfigLeaseNeedsQuorum
	case c.ReuseReadyMessages && c.AsyncStorageWrites:
		return ErrConfigReuseWithAsync
	}
	return nil
}
