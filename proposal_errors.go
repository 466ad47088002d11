package raft

import "errors"

// ErrProposalDropped is returned when a proposal is refused; the
// application may retry later (on another node, or once there is a
// leader). Every refusal says why with one of the errors below, each of
// which matches ErrProposalDropped with errors.Is, so code that only checks
// ErrProposalDropped keeps working.
var ErrProposalDropped = errors.New("raft: proposal dropped")

// The reasons a proposal is dropped. Match them with errors.Is.
var (
	// ErrProposalNoLeader: no leader is known (an election is under way,
	// or this node is cut off).
	ErrProposalNoLeader = proposalDropped("no leader")
	// ErrProposalLeaderTransfer: the leader is handing leadership over and
	// takes no proposals until the transfer ends.
	ErrProposalLeaderTransfer = proposalDropped("leader transfer in progress")
	// ErrProposalForwardingDisabled: this node is a follower and
	// Config.DisableProposalForwarding is set; propose on the leader.
	ErrProposalForwardingDisabled = proposalDropped("forwarding to the leader is disabled")
	// ErrProposalTooLarge: the leader's uncommitted entries would exceed
	// Config.MaxUncommittedEntriesSize.
	ErrProposalTooLarge = proposalDropped("uncommitted-size limit reached")
	// ErrProposalNodeRemoved: this leader is no longer a voter of the
	// configuration it leads (removed, or on its way out); it takes no
	// proposals but the change that completes its exit.
	ErrProposalNodeRemoved = proposalDropped("this node is leaving the configuration")
	// ErrProposalConfChangeRefused: the leader refused a configuration
	// change that is not safe now (another is pending, the configuration
	// is joint and the change does not leave it, a leave while not joint,
	// …); the error's text gives the reason. etcd raft appends an empty
	// entry instead and returns nil.
	ErrProposalConfChangeRefused = proposalDropped("configuration change refused")
)

// confChangeRefused is ErrProposalConfChangeRefused with its reason.
type confChangeRefused struct{ reason string }

func (e *confChangeRefused) Error() string {
	return "raft: proposal dropped: configuration change refused: " + e.reason
}

// Is makes the refusal match ErrProposalConfChangeRefused and
// ErrProposalDropped.
func (e *confChangeRefused) Is(target error) bool {
	return target == ErrProposalConfChangeRefused || target == ErrProposalDropped
}

// dropReason is one reason a proposal is dropped; it is ErrProposalDropped
// for errors.Is.
type dropReason struct{ reason string }

func proposalDropped(reason string) error { return &dropReason{reason: reason} }

func (e *dropReason) Error() string { return "raft: proposal dropped: " + e.reason }

// Is makes every reason match ErrProposalDropped.
func (e *dropReason) Is(target error) bool { return target == ErrProposalDropped }
