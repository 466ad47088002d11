// Package quorum holds the pure arithmetic of Raft's agreement rules: given
// which voters make up a configuration and what each of them has
// acknowledged, it answers "which log index is committed?" and "has this
// election been won, lost, or is it still open?".
//
// A MajorityConfig is one set of voters decided by simple majority. A
// JointConfig pairs the incoming and the outgoing majority during a
// membership change (Raft paper §6, "joint consensus"): an index commits and
// an election is won only when both halves agree.
//
// Everything here is deterministic and side-effect free. The package knows
// nothing about terms, messages or logs; callers (the tracker and the core)
// translate their state into acked indexes and votes. CommittedIndex is on
// the hot path of every commit and does not allocate for configurations of
// up to seven voters.
package quorum
