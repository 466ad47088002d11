package tracker

import "fmt"

// StateType is how the leader paces replication to one peer; see the package
// documentation for what each state means.
type StateType uint64

const (
	// StateProbe sends at most one append per heartbeat interval while the
	// leader searches for the point where the peer's log matches.
	StateProbe StateType = iota
	// StateReplicate streams appends optimistically, bounded by Inflights.
	StateReplicate
	// StateSnapshot waits for a snapshot to be applied; no appends are sent.
	StateSnapshot
)

// String returns "StateProbe", "StateReplicate" or "StateSnapshot".
func (st StateType) String() string {
	switch st {
	case StateProbe:
		return "StateProbe"
	case StateReplicate:
		return "StateReplicate"
	case StateSnapshot:
		return "StateSnapshot"
	}
	return fmt.Sprintf("StateType(%d)", uint64(st))
}
