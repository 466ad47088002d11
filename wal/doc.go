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
// record is tolerated only at the end of the log. Open syncs what it read
// before serving it, every time: the last segment (after cutting off a
// torn tail, so that the next write, torn in turn, cannot land on the old
// garbage), the directory and every directory above it (but one it may not
// read, which no Open of this process created). A process that
// died between a write and its sync, or failed stop (ErrFailed), leaves
// data in the operating system's cache that a restarted node would read
// and build on; a later power failure must not take it back. Deleting
// segments syncs the directory, to reclaim the space for good; it is not
// needed for safety (segments a crash brings back are replayed and
// dropped again).
//
// # Testing durability
//
// Every file operation goes through Options.FS (the OS's by default).
// Package crashfs is an FS that keeps only what was synced and simulates
// power loss; the tests cut the power before every operation of seeded
// workloads and check that every acknowledged Save survives, kill the
// process there instead and cut the power later, disable each sync in
// turn to show a test notices, and inject an error into each kind of
// operation to show the Storage fails stop (ErrFailed) and recovers on
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
// Storage never serves a log that damage has silently shortened (but for
// the limitation below). A write torn out of order (a later sector on disk, an earlier one not) cannot be
// told from damage and is reported as corruption too.
//
// A torn record is told from damage by what a tear leaves: its header and
// type whole, an all-zero (unwritten) sector in its payload or the end of
// the file inside it, and no intact record past the end its header
// claims. What its own surviving payload holds does not count (entry data
// may hold anything, intact records included). A damaged length that
// would hide the records after it is caught by the checksum, which then
// matches a shorter length. Known limitation: damage to the last record of
// the last segment that leaves exactly that picture (a bit flip in a
// record with an all-zero 512-byte sector, or a header overwritten with a
// valid type and a length reaching past the rest of the segment together
// with a wrong checksum) cannot be told from a tear: that record and
// anything after it in the segment is cut off silently.
//
// To look inside a directory, run go run ./cmd/waldump DIR. A node whose
// directory is corrupt should be rebuilt from the other replicas: remove it
// from the cluster, wipe the directory, add it back as a new member.
//
// # Many groups: MultiLog
//
// A host of many Raft groups (package multiraft) keeps them all in one
// MultiLog, so that one write and one sync make a whole host Ready
// durable, however many groups it holds:
//
//	ml, err := wal.OpenMulti(dir, wal.Options{})
//	for _, id := range ml.Groups() { // restart every group the log holds
//		st, _ := ml.Group(id) // a raft.Storage for the group's Config
//		...
//	}
//	// tombstones for the host: ml.Removed()
//	for h.HasReady() {
//		rd := h.Ready()
//		ups := make([]wal.GroupUpdate, len(rd.Groups))
//		for i, g := range rd.Groups {
//			ups[i] = wal.GroupUpdate{GroupID: g.GroupID, HardState: g.HardState, Entries: g.Entries, Snapshot: g.Snapshot}
//		}
//		if err := ml.Save(ups); err != nil { // one write, at most one sync
//			... // stop the host: what is on disk is unknown
//		}
//		... // send rd.Batches, apply, h.Advance(rd)
//	}
//
// Every record but a segment's header carries its group's ID. Save
// writes all the groups' records (each group's snapshot marker, entries,
// hard state, in the order given) with one write, and syncs once if any
// group's part must be durable (raft.MustSync, or a snapshot); commit-only
// changes ride along unsynced. A group's snapshots are files of their own,
// named GGGGGGGGGGGGGGGG-IIIIIIIIIIIIIIII.snap (group, index, in hex),
// written and synced before the log records them, as for one log; with
// CreateSnapshot and Compact on its GroupStorage a group compacts on its
// own. Each group pins the oldest segment holding a record it needs after a
// restart (the entry after its snapshot or compaction point, whichever is
// lower); the oldest segments are deleted once no group pins them, so a
// group that writes little and so seldom compacts holds back every later
// segment: OldestSegmentHolders names the groups that keep the oldest one,
// for the host to snapshot and compact them once Segments grows. Every
// new segment starts with a checkpoint of every group's hard state and
// every removed group (written with its header, before it is renamed into
// place; it does not count against SegmentSize), so deleting older
// segments loses neither: a group that wrote nothing for long does
// not hold the log back by its hard state, only by entries it has not
// compacted. RemoveGroup writes and syncs a removal record, then deletes
// the group's snapshot file; from then on the group's records are ignored
// and Removed reports it, for good.
//
// OpenMulti replays every segment into the groups' storages, joins each
// group's log with its newest snapshot file as Open does for one log, cuts
// a torn tail, and reports any other damage as ErrCorrupt with file and
// offset. Its cost follows the size of the log: opening a log of 10,000
// groups with a few entries each is dominated by reading the preallocated
// last segment (docs/benchmarks.md). The groups share one cache of the
// entries of the latest Saves (Options.CacheSize in all, the oldest Saves
// dropped first); older entries are read from disk. The tests are those of one log, for many groups: torn tails, corruption,
// SIGKILL of a writing process, power loss at every file operation (with a
// test that each sync is needed), an error injected into each file
// operation, and one sync per Save counted through the FS.
//
// # Concurrency
//
// All methods are safe for concurrent use. Writers (Save, Compact,
// CreateSnapshot) are serialized; reads go on while a Save writes and
// syncs, and see each Save whole once it returned. The most recent entries
// (Options.CacheSize) are served from memory.
package wal
