// Package multiraft hosts many Raft groups on one node, in the ready-driven
// style of raft.RawNode: the host has no goroutines, clocks or randomness of
// its own, and the same inputs always give the same outputs.
//
// # Node IDs
//
// A host is one node, identified by Config.ID. Every group on the host uses
// that node ID as its raft ID: the replica of any group on node N is raft
// member N. Messages therefore travel between nodes, and all the groups' traffic
// from node A to node B goes in one multiraftpb.Batch per host Ready. A group
// must not be re-created on a node it was removed from (the replica would
// reuse a raft ID whose votes it has forgotten); the host keeps tombstones of
// removed groups and refuses them.
//
// # The loop
//
// Input: Tick (one for the whole host), Step (a batch from a peer node) and
// the per-group calls Propose, ProposeConfChange (and their WithResult
// forms), ReadIndex, Campaign and TransferLeader. Output: HasReady and
// Ready, then Advance:
//
//  1. For each GroupReady, persist its Snapshot, Entries and HardState to that
//     group's storage, as raft.Ready says.
//  2. Send every Batch to its node (Batch.To). The groups' messages are in
//     the batches, not in the GroupReady.
//  3. Apply each group's Snapshot and CommittedEntries (ApplyConfChange for
//     conf changes), serve its ReadStates.
//  4. Call Advance with the Ready.
//
// The cost of Ready and Advance follows the number of groups that have work:
// the host keeps the set of groups reached by input since the last Ready.
// While every group is quiesced the host needs no tick but the one that
// sends its node-level heartbeats or takes a silent peer for down:
// IdleTicks says how many ticks away that is, so an application may sleep
// that long and then call Tick as many times.
//
// A Host is not safe for concurrent use. StartNode runs one on a goroutine
// of its own, as raft.Node runs a RawNode, for applications that prefer
// channels: its methods may be called from any goroutine.
//
// # Proposal feedback
//
// ProposeWithResult and ProposeConfChangeWithResult say where a group's
// proposal went, as raft.RawNode's do. A follower's forwarded proposal is
// named by its ForwardID, and its outcome (raft.ForwardedOutcome: where the
// leader appended it, or Unknown) comes in a GroupReady's
// ForwardedOutcomes. The host follows the library's rule for
// RawNode.ForwardedOutcomes, to call it after stepping messages and before
// applying the next Ready: it takes a group's outcomes when it builds the
// host Ready, after every batch stepped so far, so an outcome arrives in
// the GroupReady whose CommittedEntries apply the proposal's entry or in
// an earlier one. It also takes them at each tick of the group, so that a
// proposal given up (Unknown) after four election timeouts is reported in
// the next Ready even when nothing else reaches the group. A quiesced
// group is not ticked: a forwarded proposal still unresolved when its
// group quiesces (its leader dropped it, or a snapshot covered it) is
// given up only once the group wakes and has ticked long enough. A
// GroupReady may carry outcomes alone; its raft.Ready is then empty.
//
// # Heartbeats and quiescence
//
// Heartbeats without a read context travel coalesced: a Batch carries one
// (group, term, commit) triple per group led on the sender with a follower on
// the receiver, and the receiving host expands each into the group's
// MsgHeartbeat; responses travel the same way.
//
// A group whose leader is one of its voters, has seen every member caught
// up (every Match at the commit index, everything applied) and has nothing
// pending (no proposal, read, conf change or leadership transfer) for
// QuiesceAfterTicks ticks is quiesced (a leader whose removal or demotion
// was applied never quiesces the group: it sends no heartbeats, so that the
// voters elect a leader of the new configuration): the leader sends each follower a last heartbeat marked Quiesce,
// and leader and followers stop ticking the group. A quiesced group costs
// nothing per tick. Any proposal or call on the group, and any message for it
// that it does not refuse (other than the followers' answers to that last
// heartbeat), wakes it. A read is pending while the leader's heartbeats
// carry a read context, as a leader's do until its reads are confirmed. A
// follower woken by anything but its leader (a local call, a peer's
// campaign) asks its leader to wake too (Batch.WakeGroups): otherwise its
// election timer would run out while the leader sends no heartbeats, and it
// would grant the next campaign, electing a new leader for nothing. For
// liveness, every host sends each peer node a node-level heartbeat every
// NodeHeartbeatTicks; when a peer is silent for NodeDownTicks, every group
// quiesced here under a leader on that node wakes, so its election timer runs
// and it elects a new leader if the old one is gone. A node that left every
// group is taken off the peers with RemovePeer (the host does not follow the
// groups' configurations); it becomes a peer again if heard from. A node
// becomes a peer when heard from, or when a group sends it a message and it
// is a member of that group: a forwarded request from a node outside its
// group is refused, since the answer to a read goes to its first sender.
//
// Quiescence only withholds ticks, and in Raft ticks decide only when
// elections and heartbeats happen, never what is committed: safety holds for
// any tick schedule. The assumptions are about liveness and leases:
//
//   - Groups using raft.ReadOnlyLeaseBased are never quiesced: a lease relies
//     on the followers' election timers running at the leader's rate, which
//     quiescence stops.
//   - NodeDownTicks must exceed NodeHeartbeatTicks plus the delivery delay of
//     a batch (twice NodeHeartbeatTicks when hosts sleep through IdleTicks,
//     which stamps a batch at the clock's older reading); otherwise a live
//     leader is taken for dead and its groups elect needlessly (safe, but
//     churn). All hosts should tick at about the same rate, as raft itself
//     assumes for its timeouts.
//   - A message lost on the way to a quiesced group can leave it asleep only
//     until the next message or wake: a follower that missed the Quiesce
//     heartbeat keeps ticking, campaigns and wakes the others.
package multiraft
