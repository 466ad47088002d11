package raftpb

import "math/bits"

// putUvarint writes v as a varint at b[i:] and returns the position after
// it. b must have room (the caller sized it with varintSize). Values below
// 2^14 (types, flags, the terms of most clusters, the length prefixes of
// entries up to 16 KiB) are written without a loop.
func putUvarint(b []byte, i int, v uint64) int {
	if v < 1<<7 {
		b[i] = byte(v)
		return i + 1
	}
	if v < 1<<14 {
		b[i] = byte(v) | 0x80
		b[i+1] = byte(v >> 7)
		return i + 2
	}
	return putUvarintLong(b, i, v)
}

// putUvarintLong is putUvarint for values of three bytes or more.
func putUvarintLong(b []byte, i int, v uint64) int {
	for v >= 0x80 {
		b[i] = byte(v) | 0x80
		v >>= 7
		i++
	}
	b[i] = byte(v)
	return i + 1
}

// Size returns the encoded size of e.
func (m *Entry) Size() int {
	n := 3 + varintSize(uint64(m.Type)) + varintSize(m.Term) + varintSize(m.Index)
	if m.Data == nil {
		return n
	}
	return n + 1 + varintSize(uint64(len(m.Data))) + len(m.Data)
}

// varintSize returns the encoded size of v, as sovRaft does but without a
// division: 9/64 of the bit length, rounded up, is one byte per 7 bits.
func varintSize(v uint64) int {
	return (9*bits.Len64(v) + 64) >> 6
}

// Marshal returns the encoding of e in a new slice.
func (m *Entry) Marshal() (dAtA []byte, err error) {
	dAtA = make([]byte, m.Size())
	n := m.encode(dAtA, 0)
	return dAtA[:n], nil
}

// MarshalTo encodes e at the start of dAtA, which must hold Size() bytes,
// and returns the number of bytes written.
func (m *Entry) MarshalTo(dAtA []byte) (int, error) {
	return m.encode(dAtA[:m.Size()], 0), nil
}

// MarshalToSizedBuffer encodes e at the end of dAtA, which must hold
// Size() bytes, and returns the number of bytes written.
func (m *Entry) MarshalToSizedBuffer(dAtA []byte) (int, error) {
	size := m.Size()
	return m.encode(dAtA[len(dAtA)-size:], 0), nil
}

// encode writes e at b[i:], which holds at least Size() bytes, and returns
// the position after it.
func (m *Entry) encode(b []byte, i int) int {
	b[i] = tagEntryType
	i = putUvarint(b, i+1, uint64(m.Type))
	b[i] = tagEntryTerm
	i = putUvarint(b, i+1, m.Term)
	b[i] = tagEntryIndex
	i = putUvarint(b, i+1, m.Index)
	if m.Data != nil {
		b[i] = tagEntryData
		i = putUvarint(b, i+1, uint64(len(m.Data)))
		i += copy(b[i:], m.Data)
	}
	return i
}

// Size returns the encoded size of m.
func (m *Message) Size() (n int) { return m.size(nil) }

// fewEntries is how many entries' sizes Marshal keeps in an array that
// costs nothing to clear; a message with more takes one of stackEntries.
const fewEntries = 8

// size returns the encoded size of m and records the sizes of its first
// len(sizes) entries in sizes (nil for none), for encode's length
// prefixes.
func (m *Message) size(sizes []int) (n int) {
	n = 11 + varintSize(uint64(m.Type)) + varintSize(m.To) + varintSize(m.From) + varintSize(m.Term) +
		varintSize(m.LogTerm) + varintSize(m.Index) + varintSize(m.Commit) + varintSize(m.RejectHint) + varintSize(m.Vote)
	ents := m.Entries
	if len(sizes) > 0 {
		// The same sum as below, each entry's size kept.
		k := min(len(ents), len(sizes))
		for i := range ents[:k] {
			e := &ents[i]
			l := 3 + varintSize(uint64(e.Type)) + varintSize(e.Term) + varintSize(e.Index)
			if e.Data != nil {
				l += 1 + varintSize(uint64(len(e.Data))) + len(e.Data)
			}
			sizes[i] = l
			n += 1 + varintSize(uint64(l)) + l
		}
		ents = ents[k:]
	}
	// Entry.Size, written out: the call per entry would cost more than
	// the sum.
	for i := range ents {
		e := &ents[i]
		l := 3 + varintSize(uint64(e.Type)) + varintSize(e.Term) + varintSize(e.Index)
		if e.Data != nil {
			l += 1 + varintSize(uint64(len(e.Data))) + len(e.Data)
		}
		n += 1 + varintSize(uint64(l)) + l
	}
	if m.Snapshot != nil {
		l := m.Snapshot.Size()
		n += 1 + varintSize(uint64(l)) + l
	}
	if m.Context != nil {
		l := len(m.Context)
		n += 1 + varintSize(uint64(l)) + l
	}
	for i := range m.Responses {
		l := m.Responses[i].Size()
		n += 1 + varintSize(uint64(l)) + l
	}
	return n
}

// Marshal returns the encoding of m in a new slice.
func (m *Message) Marshal() (dAtA []byte, err error) {
	if len(m.Entries) > fewEntries {
		return m.marshalMany()
	}
	// Most messages: no entries, or a few, whose sizes take an array
	// that costs nothing to clear.
	var sizes [fewEntries]int
	dAtA = make([]byte, m.size(sizes[:]))
	n, err := m.encode(dAtA, sizes[:])
	if err != nil {
		return nil, err
	}
	return dAtA[:n], nil
}

// marshalMany is Marshal for a message of more than fewEntries entries.
func (m *Message) marshalMany() ([]byte, error) {
	var sizes [stackEntries]int
	dAtA := make([]byte, m.size(sizes[:]))
	n, err := m.encode(dAtA, sizes[:])
	if err != nil {
		return nil, err
	}
	return dAtA[:n], nil
}

// MarshalTo encodes m at the start of dAtA, which must hold Size() bytes,
// and returns the number of bytes written.
func (m *Message) MarshalTo(dAtA []byte) (int, error) {
	if len(m.Entries) > fewEntries {
		return m.marshalToMany(dAtA, false)
	}
	var sizes [fewEntries]int
	return m.encode(dAtA[:m.size(sizes[:])], sizes[:])
}

// MarshalToSizedBuffer encodes m at the end of dAtA, which must hold
// Size() bytes, and returns the number of bytes written.
func (m *Message) MarshalToSizedBuffer(dAtA []byte) (int, error) {
	if len(m.Entries) > fewEntries {
		return m.marshalToMany(dAtA, true)
	}
	var sizes [fewEntries]int
	size := m.size(sizes[:])
	return m.encode(dAtA[len(dAtA)-size:], sizes[:])
}

// marshalToMany is MarshalTo, or with atEnd MarshalToSizedBuffer, for a
// message of more than fewEntries entries.
func (m *Message) marshalToMany(dAtA []byte, atEnd bool) (int, error) {
	var sizes [stackEntries]int
	size := m.size(sizes[:])
	if atEnd {
		return m.encode(dAtA[len(dAtA)-size:], sizes[:])
	}
	return m.encode(dAtA[:size], sizes[:])
}

// encode writes m at the start of b, which holds at least Size() bytes;
// sizes holds the sizes of m's first len(sizes) entries, as size recorded
// them.
func (m *Message) encode(b []byte, sizes []int) (int, error) {
	b[0] = tagMsgType
	i := putUvarint(b, 1, uint64(m.Type))
	b[i] = tagMsgTo
	i = putUvarint(b, i+1, m.To)
	b[i] = tagMsgFrom
	i = putUvarint(b, i+1, m.From)
	b[i] = tagMsgTerm
	i = putUvarint(b, i+1, m.Term)
	b[i] = tagMsgLogTerm
	i = putUvarint(b, i+1, m.LogTerm)
	b[i] = tagMsgIndex
	i = putUvarint(b, i+1, m.Index)
	ents := m.Entries
	if len(sizes) > 0 {
		k := min(len(ents), len(sizes))
		i = encodeEntries(b, i, ents[:k], sizes[:k])
		ents = ents[k:]
	}
	for k := range ents {
		e := &ents[k]
		b[i] = tagMsgEntries
		i = putUvarint(b, i+1, uint64(e.Size()))
		i = e.encode(b, i)
	}
	b[i] = tagMsgCommit
	i = putUvarint(b, i+1, m.Commit)
	if m.Snapshot != nil {
		l := m.Snapshot.Size()
		b[i] = tagMsgSnapshot
		i = putUvarint(b, i+1, uint64(l))
		n, err := m.Snapshot.MarshalToSizedBuffer(b[i : i+l])
		if err != nil {
			return 0, err
		}
		i += n
	}
	b[i] = tagMsgReject
	b[i+1] = 0
	if m.Reject {
		b[i+1] = 1
	}
	b[i+2] = tagMsgRejectHint
	i = putUvarint(b, i+3, m.RejectHint)
	if m.Context != nil {
		b[i] = tagMsgContext
		i = putUvarint(b, i+1, uint64(len(m.Context)))
		i += copy(b[i:], m.Context)
	}
	b[i] = tagMsgVote
	i = putUvarint(b, i+1, m.Vote)
	for k := range m.Responses {
		r := &m.Responses[k]
		// Without sizes: a nesting of responses keeps to small frames.
		l := r.Size()
		b[i] = tagMsgResponses
		i = putUvarint(b, i+1, uint64(l))
		n, err := r.encode(b[i:i+l], nil)
		if err != nil {
			return 0, err
		}
		i += n
	}
	return i, nil
}

// encodeEntries writes ents, each with its key and length prefix
// (sizes[k] is the size of ents[k]), at b[i:] and returns the position
// after them. Entry.encode is written out: the call per entry would cost
// more than most of what it writes.
func encodeEntries(b []byte, i int, ents []Entry, sizes []int) int {
	for k := range ents {
		e := &ents[k]
		b[i] = tagMsgEntries
		i = putUvarint(b, i+1, uint64(sizes[k]))
		b[i] = tagEntryType
		i = putUvarint(b, i+1, uint64(e.Type))
		b[i] = tagEntryTerm
		i = putUvarint(b, i+1, e.Term)
		b[i] = tagEntryIndex
		i = putUvarint(b, i+1, e.Index)
		if e.Data != nil {
			b[i] = tagEntryData
			i = putUvarint(b, i+1, uint64(len(e.Data)))
			i += copy(b[i:], e.Data)
		}
	}
	return i
}
