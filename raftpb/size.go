package raftpb

// PayloadSize is the size of an entry's payload, the part of an entry that
// counts against MaxUncommittedEntriesSize. Empty entries (such as the one a
// new leader appends) have size zero, so they are never refused.
func PayloadSize(e *Entry) uint64 { return uint64(len(e.Data)) }

// PayloadsSize sums PayloadSize over ents.
func PayloadsSize(ents []Entry) uint64 {
	var s uint64
	for i := range ents {
		s += PayloadSize(&ents[i])
	}
	return s
}

// EntriesSize sums the encoded size of ents, the measure MaxSizePerMsg and
// MaxCommittedSizePerReady limit. It marshals nothing.
func EntriesSize(ents []Entry) uint64 {
	var s uint64
	for i := range ents {
		s += uint64(ents[i].Size())
	}
	return s
}
