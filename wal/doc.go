// Package wal is a durable raft.Storage: a write-ahead log in files in one
// directory, for applications that want their node to survive power loss
// from the first day and may bring their own Storage later.
//
// # The Ready loop
//
//	st, err := wal.Open(dir, wal.Options{})
//	...
//	rn, err := raft.NewRawNode(&raft.Config{ID: id, Storage: st, ...})
//	if last, _ := st.LastIndex(); last == 0 {
//		rn.Bootstrap(peers) // a new node; a restarted one recovers from st
//	}
//	for rn.HasReady() {
//		rd := rn.Ready()
//		// 1. One durable write: snapshot, entries, hard state.
//		if err := st.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
//			... // stop the node: what is on disk is unknown
//		}
//		// 2. Send rd.Messages. 3. Apply rd.Snapshot and
//		// rd.CommittedEntries. 4. Advance.
//		rn.Advance(rd)
//	}
//
// To compact, snapshot the state machine at its applied index and drop the
// log before it, keeping a few entries for followers that are slightly
// behind:
//
//	st.CreateSnapshot(applied, &confState, stateMachineData)
//	st.Compact(applied - keep)
//
// # What is synced when
//
// Save writes its records with one write and syncs (fdatasync) once when
// the Ready must be durable (raft.MustSync: entries, a term or vote change)
// or holds a snapshot; a hard state whose only change is the commit index
// is written but not synced, as Raft allows. Snapshots are written to a
// temporary file, synced, renamed into place, and the directory synced,
// before the log records that they were applied. New segments are
// preallocated, given a header, synced, renamed into place and the
// directory synced; the segment before is synced first, since a torn
// record is tolerated only at the end of the log. Open syncs the parent of
// each directory it creates, and the last segment after cutting off a torn
// tail (otherwise the next write, torn in turn, could land on the old
// garbage). Deleting segments syncs the directory, to reclaim the space for
// good; it is not needed for safety (segments a crash brings back are
// replayed and dropped again).
//
// # Testing durability
//
// Every file operation goes through Options.FS (the OS's by default).
// Package crashfs is an FS that keeps only what was synced and simulates
// power loss; the tests cut the power before every operation of seeded
// workloads and check that every acknowledged Save survives, disable each
// sync in turn to show a test notices, and inject an error into each kind
// of operation to show the Storage fails stop (ErrFailed) and recovers on
// reopen.
//
// # On disk
//
// The directory holds segment files 0000000000000001.wal, ...002.wal, ...
// (numbered without gaps), the newest snapshot NNNN.snap (named after its
// index, in hex) and a LOCK file. Every record is framed with its length
// and a CRC-32C (Castagnoli) of length and contents, at 8-byte boundaries.
// Each segment starts with a header holding the hard state at its
// creation, so older segments can be deleted without losing it. Entries are
// marshaled raftpb.Entry records; an entry at index i replaces the entries
// at i and after, as in the Ready contract.
//
// # Recovery
//
// Open replays the segments into an index (entry index to file, offset and
// term: Term needs no disk access, Entries reads only what it returns) and
// joins the log to the newest snapshot: after Open the log starts after the
// snapshot (FirstIndex is its index + 1). A write a crash left unfinished at
// the end of the last segment (a partial record, unwritten zero sectors
// after it) is cut off. Anything else that fails its checksum or cannot
// have been written by this package, anywhere in the log, makes Open fail
// with an error wrapping ErrCorrupt that names the file and offset: the
// Storage never serves a log that damage has silently shortened. A write
// torn out of order (a later sector on disk, an earlier one not) cannot be
// told from damage and is reported as corruption too.
//
// To look inside a directory, run go run ./cmd/waldump DIR. A node whose
// directory is corrupt should be rebuilt from the other replicas: remove it
// from the cluster, wipe the directory, add it back as a new member.
//
// # Concurrency
//
// All methods are safe for concurrent use. Writers (Save, Compact,
// CreateSnapshot) are serialized; reads go on while a Save writes and
// syncs, and see each Save whole once it returned. The most recent entries
// (Options.CacheSize) are served from memory.
package wal
