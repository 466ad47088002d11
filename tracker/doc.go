// Package tracker holds what a Raft leader knows about its peers and its
// membership configuration.
//
// A Progress records, for one peer, the highest log index known to match the
// leader's log (Match), the next index to send (Next) and how replication to
// it is currently paced:
//
//	StateProbe      the leader does not know where the peer's log diverges; it
//	                sends one append per heartbeat interval and walks Next back
//	                on rejections until one is accepted.
//	StateReplicate  the peer is caught up enough to stream appends optimistically;
//	                Inflights bounds how many (and how many bytes) are unacked.
//	StateSnapshot   the peer needs a snapshot; no appends are sent until it is
//	                applied or reported failed.
//
// A ProgressTracker combines the active Config (voters, possibly joint, and
// learners) with the Progress of every peer and the votes of the current
// election, and answers the questions the core asks: what is committed, is a
// quorum still active, has the election been won.
//
// Nothing in this package is safe for concurrent use; the core owns it.
package tracker
