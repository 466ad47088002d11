// Package invariants gates raftcore's internal self-checks. Build with
// `-tags invariants` (as `make test` does) to turn them on; without the tag
// Enabled is false and the checks compile away.
//
// With the tag, these are checked after every change that could break them:
//
//   - The log (raftlog.go, log_unstable.go): committed <= lastIndex;
//     applied <= applying <= committed; the unstable tail starts right after
//     a pending snapshot, its entries run contiguously from its offset and
//     its in-progress mark lies within them; without a pending snapshot it
//     continues the entries in Storage without a gap. Appended entries are
//     contiguous, their terms do not decrease, and they start at most one
//     past the last index.
//   - The hard state (raft.go, rawnode.go): the term never goes back, the
//     vote of a term never changes once cast, the commit index handed out
//     for persisting never goes back.
//   - The leader's view of each peer (tracker/progress.go,
//     tracker/inflights.go): Match < Next; a pending snapshot exactly in
//     StateSnapshot; appends in flight only in StateReplicate; no move from
//     StateReplicate to StateReplicate or from StateSnapshot to
//     StateSnapshot; Inflights' count within its buffer and window, its byte
//     total the sum of its appends, their indexes increasing, the newest
//     equal to the last one added.
//
// A broken check panics (in the root package through the node's Logger)
// with a message that starts "raft: invariant: ", names the rule and gives
// every value involved. Each check costs constant time, except the
// Inflights one, which walks the appends in flight (at most
// MaxInflightMsgs); invariants_test.go in the root and tracker packages
// corrupts state on purpose to show each check firing.
package invariants
