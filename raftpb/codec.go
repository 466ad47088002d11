package raftpb

import (
	"fmt"
	"io"
	"math"
	"math/bits"
)

// Entry and Message encode and decode with the hand-written methods in this
// file instead of generated ones (raft.proto turns gogo's off for them). The
// bytes are exactly what the generated code would produce and accept:
// fields in field-number order, every scalar written even when zero, Data
// and Context written when non-nil, and on decoding the same merge rules
// (scalars overwritten, repeated fields appended, unknown fields skipped)
// and the same inputs rejected. The tests hold them to a generated
// reference codec (internal/raftpbref) on random and malformed input.
//
// What differs is the cost. Message.Unmarshal walks the input once for
// everything but the entries, noting where each entry lies (in an array on
// its stack, for up to stackEntries entries; a message with more walks its
// entries a second time), then grows Entries once, decodes the entries
// (those in the encoders' canonical field order on a path of their own)
// and copies every payload into a single buffer of exactly their total
// size: two allocations for the entries of a message instead of one per
// entry plus the slice's regrowth, and one for a message with a single
// entry of up to maxPackedPayload bytes (an append of one proposal, a
// follower's usual message when proposals come one at a time), whose
// entry and payload share one object. Each entry's Data is a full slice
// expression over that buffer (its capacity ends where its payload does),
// so appending to one entry's Data never overwrites the next. Nothing
// aliases the input: the caller may reuse it at once. Keys of one byte,
// the only ones encoders write for Message's fields, are matched whole,
// and varints and lengths of one or two bytes are decoded without a loop;
// anything else takes the general path, which follows the generated code.
// Message.Marshal sizes each entry once, keeping the sizes for the length
// prefixes; sizing and encoding write each entry out in the loop rather
// than calling Entry's methods.

// Wire tags (field number << 3 | wire type) of Entry and Message.
const (
	tagEntryType  = 0x08 // field 1, varint
	tagEntryTerm  = 0x10 // field 2, varint
	tagEntryIndex = 0x18 // field 3, varint
	tagEntryData  = 0x22 // field 4, length-delimited

	tagMsgType       = 0x08 // field 1, varint
	tagMsgTo         = 0x10 // field 2, varint
	tagMsgFrom       = 0x18 // field 3, varint
	tagMsgTerm       = 0x20 // field 4, varint
	tagMsgLogTerm    = 0x28 // field 5, varint
	tagMsgIndex      = 0x30 // field 6, varint
	tagMsgEntries    = 0x3a // field 7, length-delimited
	tagMsgCommit     = 0x40 // field 8, varint
	tagMsgSnapshot   = 0x4a // field 9, length-delimited
	tagMsgReject     = 0x50 // field 10, varint
	tagMsgRejectHint = 0x58 // field 11, varint
	tagMsgContext    = 0x62 // field 12, length-delimited
	tagMsgVote       = 0x68 // field 13, varint
	tagMsgResponses  = 0x72 // field 14, length-delimited
)

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

// entrySizes keeps the sizes of a message's first entries between sizing
// the message and writing the entries' length prefixes.
type entrySizes [stackEntries]int

// size returns the encoded size of m and, unless sizes is nil, records
// the sizes of its first entries in it.
func (m *Message) size(sizes *entrySizes) (n int) {
	n = 11 + varintSize(uint64(m.Type)) + varintSize(m.To) + varintSize(m.From) + varintSize(m.Term) +
		varintSize(m.LogTerm) + varintSize(m.Index) + varintSize(m.Commit) + varintSize(m.RejectHint) + varintSize(m.Vote)
	ents := m.Entries
	if sizes != nil {
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
	var n int
	if len(m.Entries) == 0 {
		// Most messages: no sizes to keep, no array to clear.
		dAtA = make([]byte, m.size(nil))
		n, err = m.encode(dAtA, nil)
	} else {
		var sizes entrySizes
		dAtA = make([]byte, m.size(&sizes))
		n, err = m.encode(dAtA, &sizes)
	}
	if err != nil {
		return nil, err
	}
	return dAtA[:n], nil
}

// MarshalTo encodes m at the start of dAtA, which must hold Size() bytes,
// and returns the number of bytes written.
func (m *Message) MarshalTo(dAtA []byte) (int, error) {
	var sizes entrySizes
	return m.encode(dAtA[:m.size(&sizes)], &sizes)
}

// MarshalToSizedBuffer encodes m at the end of dAtA, which must hold
// Size() bytes, and returns the number of bytes written.
func (m *Message) MarshalToSizedBuffer(dAtA []byte) (int, error) {
	var sizes entrySizes
	size := m.size(&sizes)
	return m.encode(dAtA[len(dAtA)-size:], &sizes)
}

// encode writes m at the start of b, which holds at least Size() bytes;
// sizes, unless nil, holds the sizes of m's first entries, as size
// recorded them.
func (m *Message) encode(b []byte, sizes *entrySizes) (int, error) {
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
	if sizes != nil {
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

// uvarint decodes the varint at b[i:] and returns it with the position
// after it. Like the generated decoders, it accepts up to ten bytes and
// drops bits past the 64th. A one-byte value is decoded inline.
func uvarint(b []byte, i int) (uint64, int, error) {
	if uint(i) < uint(len(b)) {
		if c := b[i]; c < 0x80 {
			return uint64(c), i + 1, nil
		}
	}
	return uvarintLong(b, i)
}

// uvarintLong is uvarint for a varint that is not a single byte (or is
// missing): b[i], if present, has its continuation bit set. Two-byte
// values, such as the length of an entry up to 16 KiB, skip the loop.
func uvarintLong(b []byte, i int) (uint64, int, error) {
	if i+1 < len(b) && b[i+1] < 0x80 {
		return uint64(b[i]&0x7f) | uint64(b[i+1])<<7, i + 2, nil
	}
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, i, ErrIntOverflowRaft
		}
		if i >= len(b) {
			return 0, i, io.ErrUnexpectedEOF
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i, nil
		}
	}
}

// lengthDelimited decodes the length prefix at b[i:] and returns the
// bounds [start, end) of the value that follows, checked against len(b).
func lengthDelimited(b []byte, i int) (start, end int, err error) {
	var v uint64
	if uint(i) < uint(len(b)) && b[i] < 0x80 {
		v, i = uint64(b[i]), i+1
	} else if v, i, err = uvarintLong(b, i); err != nil {
		return 0, 0, err
	}
	n := int(v)
	if n < 0 {
		return 0, 0, ErrInvalidLengthRaft
	}
	end = i + n
	if end < 0 {
		return 0, 0, ErrInvalidLengthRaft
	}
	if end > len(b) {
		return 0, 0, io.ErrUnexpectedEOF
	}
	return i, end, nil
}

// shortLength decodes a length prefix of one or two bytes at b[i:] (a
// length below 16 KiB) and returns the bounds of the value that follows.
// ok is false, and the caller leaves the prefix to lengthDelimited, for a
// longer prefix, for a value running past b, and when b holds fewer than
// two bytes from i (a one-byte prefix of an empty value at its very end).
func shortLength(b []byte, i int) (start, end int, ok bool) {
	if uint(i+1) < uint(len(b)) {
		c, d := b[i], b[i+1]
		if c < 0x80 {
			start, end = i+1, i+1+int(c)
		} else if d < 0x80 {
			start, end = i+2, i+2+(int(c&0x7f)|int(d)<<7)
		}
	}
	return start, end, start > 0 && end <= len(b)
}

// fieldKey decodes the key at b[i:] into field number and wire type, with
// the generated decoders' checks; typ names the message in errors.
func fieldKey(b []byte, i int, typ string) (field int32, wireType int, next int, err error) {
	wire, next, err := uvarint(b, i)
	if err != nil {
		return 0, 0, next, err
	}
	field = int32(wire >> 3)
	wireType = int(wire & 7)
	if wireType == 4 {
		return 0, 0, next, fmt.Errorf("proto: %s: wiretype end group for non-group", typ)
	}
	if field <= 0 {
		return 0, 0, next, fmt.Errorf("proto: %s: illegal tag %d (wire type %d)", typ, field, wire)
	}
	return field, wireType, next, nil
}

// skipField skips the unknown field whose key starts at b[keyAt:] and
// returns the position after it.
func skipField(b []byte, keyAt int) (int, error) {
	n, err := skipRaft(b[keyAt:])
	if err != nil {
		return 0, err
	}
	if n < 0 || keyAt+n < 0 {
		return 0, ErrInvalidLengthRaft
	}
	if keyAt+n > len(b) {
		return 0, io.ErrUnexpectedEOF
	}
	return keyAt + n, nil
}

func wrongWireType(wireType int, field string) error {
	return fmt.Errorf("proto: wrong wireType = %d for field %s", wireType, field)
}

// varintField decodes a varint field's value, checking its wire type.
func varintField(b []byte, i, wireType int, field string) (uint64, int, error) {
	if wireType != 0 {
		return 0, i, wrongWireType(wireType, field)
	}
	return uvarint(b, i)
}

// setData sets e.Data to a copy of p, reusing e.Data's array as generated
// code does; an empty p gives an empty, non-nil Data.
func (m *Entry) setData(p []byte) {
	m.Data = append(m.Data[:0], p...)
	if m.Data == nil {
		m.Data = []byte{}
	}
}

// Unmarshal decodes dAtA into e, merging as generated code does: fields
// present overwrite e's. Data is copied; dAtA is not retained.
func (m *Entry) Unmarshal(dAtA []byte) error {
	var c Entry
	if start, end, ok := c.decodeCanonical(dAtA); ok {
		m.Term, m.Index, m.Type = c.Term, c.Index, c.Type
		if start >= 0 {
			m.setData(dAtA[start:end])
		}
		return nil
	}
	start, end, err := m.decode(dAtA)
	if start >= 0 {
		m.setData(dAtA[start:end])
	}
	return err
}

// decodeCanonical decodes b into e's Term, Index and Type if b holds
// exactly the fields an encoder writes, in its order (Type, Term, Index,
// then Data if present) with a one-byte Type, and reports whether it did,
// with the bounds of Data in b (start < 0 if absent). Any other input,
// including anything malformed, is left to decode, and e is untouched.
func (m *Entry) decodeCanonical(b []byte) (start, end int, ok bool) {
	if len(b) < 6 || b[0] != tagEntryType || b[1] >= 0x80 || b[2] != tagEntryTerm {
		return 0, 0, false
	}
	term, i := uint64(b[3]), 4
	if term >= 0x80 {
		if term, i = varintAt(b, 3); i < 0 {
			return 0, 0, false
		}
	}
	if i >= len(b) || b[i] != tagEntryIndex {
		return 0, 0, false
	}
	index, i := varintAt(b, i+1)
	if i < 0 {
		return 0, 0, false
	}
	start = -1
	if i < len(b) {
		if b[i] != tagEntryData {
			return 0, 0, false
		}
		l, j := varintAt(b, i+1)
		if j < 0 || l != uint64(len(b)-j) {
			return 0, 0, false
		}
		start, end = j, len(b)
	}
	m.Term, m.Index, m.Type = term, index, EntryType(b[1])
	return start, end, true
}

// varintAt decodes the varint at b[i:] as uvarint does, for the fast
// paths, which leave anything unusual to the general decoder: it returns a
// negative position instead of an error.
func varintAt(b []byte, i int) (v uint64, next int) {
	for shift := uint(0); shift < 64; shift += 7 {
		if uint(i) >= uint(len(b)) {
			return 0, -1
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i
		}
	}
	return 0, -1
}

// decode sets e's scalar fields from b and returns the bounds in b of the
// last Data field present (start < 0 if none): the caller copies it.
func (m *Entry) decode(b []byte) (start, end int, err error) {
	start = -1
	for i := 0; i < len(b); {
		keyAt := i
		field, wireType, next, err := fieldKey(b, i, "Entry")
		if err != nil {
			return start, end, err
		}
		i = next
		var v uint64
		switch field {
		case 1:
			v, i, err = varintField(b, i, wireType, "Type")
			m.Type = EntryType(v)
		case 2:
			v, i, err = varintField(b, i, wireType, "Term")
			m.Term = v
		case 3:
			v, i, err = varintField(b, i, wireType, "Index")
			m.Index = v
		case 4:
			if wireType != 2 {
				return start, end, wrongWireType(wireType, "Data")
			}
			var s int
			s, i, err = lengthDelimited(b, i)
			if err == nil {
				start, end = s, i
			}
		default:
			i, err = skipField(b, keyAt)
		}
		if err != nil {
			return start, end, err
		}
	}
	return start, end, nil
}

// stackEntries is how many entries Message.Unmarshal keeps track of in an
// array on its stack; the entries of a message with more are decoded by a
// second walk over the input.
const stackEntries = 128

// span is a range [start, end) of a Message.Unmarshal's input; start < 0
// marks an absent payload.
type span struct{ start, end int32 }

// entryIndex is where the entries of a message lie in its encoding,
// recorded while Message.Unmarshal decodes the other fields: the entries
// are counted first so that Entries grows once, then decoded, then their
// payloads copied into one buffer of their total size.
type entryIndex struct {
	// stopAtEntry makes decodeFields stop at the first entry, and stopped
	// tells that it did.
	stopAtEntry, stopped bool
	n                    int // entries seen, even past len(spans)
	// spans are the first entries' bounds; once decoded, the bounds of
	// their payloads.
	spans []span
}

func (x *entryIndex) add(start, end int) {
	if x.n < len(x.spans) {
		x.spans[x.n] = span{int32(start), int32(end)}
	}
	x.n++
}

// addRun records the entries whose one-byte keys follow one another from
// b[i] on, as encoders write them, and returns the position after the
// last.
func (x *entryIndex) addRun(b []byte, i int) (int, error) {
	for i < len(b) && b[i] == tagMsgEntries {
		start, end, ok := shortLength(b, i+1)
		if !ok {
			var err error
			if start, end, err = lengthDelimited(b, i+1); err != nil {
				return i, err
			}
		}
		x.add(start, end)
		i = end
	}
	return i, nil
}

// Unmarshal decodes dAtA into m, merging as generated code does: scalar
// fields present overwrite m's, entries and responses are appended, a
// snapshot is merged into m.Snapshot. Payloads are copied (all the new
// entries' into one buffer); dAtA is not retained.
func (m *Message) Unmarshal(dAtA []byte) error {
	// Most messages carry no entries: the array to record them in, which
	// takes clearing, comes into play at the first one.
	idx := entryIndex{stopAtEntry: true}
	i, err := m.decodeFields(dAtA, 0, &idx)
	if err != nil || i == len(dAtA) {
		return err
	}
	return m.unmarshalEntries(dAtA, i)
}

// unmarshalEntries goes on with Unmarshal at b[i:], where the first entry
// is.
func (m *Message) unmarshalEntries(b []byte, i int) error {
	var spans [stackEntries]span
	idx := entryIndex{spans: spans[:]}
	if len(b) > math.MaxInt32 {
		idx.spans = nil
	}
	return m.unmarshal(b, i, &idx)
}

// unmarshal is Unmarshal from b[i:] with idx to record the entries in.
// Nested messages (Responses) pass one without spans, so that the stack of
// a deep nesting stays as small as the generated decoder's.
func (m *Message) unmarshal(b []byte, i int, idx *entryIndex) error {
	_, err := m.decodeFields(b, i, idx)
	if idx.n == 0 {
		return err
	}
	// After an error too: the entries before it are decoded, as the
	// generated decoder would, and own their payloads.
	if entErr := m.decodeEntries(b, idx); err == nil {
		err = entErr
	}
	return err
}

// decodeFields merges b[i:] into m, all but the entries, which it records
// in idx, and returns len(b), or with idx.stopAtEntry set the position of
// the first entry's key. The common keys, one byte each, are matched
// whole; any other key takes decodeField.
func (m *Message) decodeFields(b []byte, i int, idx *entryIndex) (int, error) {
	for i < len(b) {
		var err error
		switch tag := b[i]; tag {
		case tagMsgType, tagMsgTo, tagMsgFrom, tagMsgTerm, tagMsgLogTerm, tagMsgIndex,
			tagMsgCommit, tagMsgReject, tagMsgRejectHint, tagMsgVote:
			var v uint64
			if i+1 < len(b) && b[i+1] < 0x80 {
				v, i = uint64(b[i+1]), i+2
			} else if v, i, err = uvarintLong(b, i+1); err != nil {
				return i, err
			}
			m.setScalar(tag, v)
		case tagMsgEntries:
			if idx.stopAtEntry {
				return i, nil
			}
			if i, err = idx.addRun(b, i); err != nil {
				return i, err
			}
		default:
			if i, err = m.decodeField(b, i, idx); err != nil || idx.stopped {
				return i, err
			}
		}
	}
	return i, nil
}

// setScalar sets the varint field whose one-byte key is tag to v.
func (m *Message) setScalar(tag byte, v uint64) {
	switch tag {
	case tagMsgType:
		m.Type = MessageType(v)
	case tagMsgTo:
		m.To = v
	case tagMsgFrom:
		m.From = v
	case tagMsgTerm:
		m.Term = v
	case tagMsgLogTerm:
		m.LogTerm = v
	case tagMsgIndex:
		m.Index = v
	case tagMsgCommit:
		m.Commit = v
	case tagMsgReject:
		m.Reject = int(v) != 0
	case tagMsgRejectHint:
		m.RejectHint = v
	case tagMsgVote:
		m.Vote = v
	}
}

// decodeField decodes the field whose key starts at b[keyAt:], whatever
// the key's form, and returns the position after it, or keyAt if it
// stopped at an entry (see entryIndex.stopAtEntry).
func (m *Message) decodeField(b []byte, keyAt int, idx *entryIndex) (int, error) {
	field, wireType, i, err := fieldKey(b, keyAt, "Message")
	if err != nil {
		return i, err
	}
	var v uint64
	switch field {
	case 1:
		v, i, err = varintField(b, i, wireType, "Type")
		m.Type = MessageType(v)
	case 2:
		v, i, err = varintField(b, i, wireType, "To")
		m.To = v
	case 3:
		v, i, err = varintField(b, i, wireType, "From")
		m.From = v
	case 4:
		v, i, err = varintField(b, i, wireType, "Term")
		m.Term = v
	case 5:
		v, i, err = varintField(b, i, wireType, "LogTerm")
		m.LogTerm = v
	case 6:
		v, i, err = varintField(b, i, wireType, "Index")
		m.Index = v
	case 7:
		if wireType != 2 {
			return i, wrongWireType(wireType, "Entries")
		}
		if idx.stopAtEntry {
			idx.stopped = true
			return keyAt, nil
		}
		var start int
		if start, i, err = lengthDelimited(b, i); err == nil {
			idx.add(start, i)
		}
	case 8:
		v, i, err = varintField(b, i, wireType, "Commit")
		m.Commit = v
	case 9:
		i, err = m.decodeSnapshot(b, i, wireType)
	case 10:
		v, i, err = varintField(b, i, wireType, "Reject")
		m.Reject = int(v) != 0
	case 11:
		v, i, err = varintField(b, i, wireType, "RejectHint")
		m.RejectHint = v
	case 12:
		i, err = m.decodeContext(b, i, wireType)
	case 13:
		v, i, err = varintField(b, i, wireType, "Vote")
		m.Vote = v
	case 14:
		i, err = m.decodeResponse(b, i, wireType)
	default:
		i, err = skipField(b, keyAt)
	}
	return i, err
}

// decodeEntries appends the entries idx recorded, decoded from b, and
// copies their payloads. Entries grows at most once.
func (m *Message) decodeEntries(b []byte, idx *entryIndex) error {
	first, n := len(m.Entries), idx.n
	if n == 1 && cap(m.Entries) == 0 && len(idx.spans) > 0 && m.decodeSingle(b, idx.spans[0]) {
		return nil
	}
	if n > cap(m.Entries)-first {
		ents := make([]Entry, first, first+n)
		copy(ents, m.Entries)
		m.Entries = ents
	}
	if n > len(idx.spans) {
		err := m.decodeEntriesAgain(b)
		ownPayloads(m.Entries[first:])
		return err
	}
	ents, spans := m.Entries[first:first+n], idx.spans[:n]
	var err error
	k := 0
	for ; k < n; k++ {
		s, e := int(spans[k].start), int(spans[k].end)
		ds, de, ok := ents[k].decodeCanonical(b[s:e])
		if !ok {
			ents[k] = Entry{}
			if ds, de, err = ents[k].decode(b[s:e]); err != nil {
				break
			}
		}
		spans[k] = span{-1, -1}
		if ds >= 0 {
			spans[k] = span{int32(s + ds), int32(s + de)}
		}
	}
	m.Entries = m.Entries[:first+k]
	copyPayloads(ents[:k], spans[:k], b)
	return err
}

// decodeSingle sets Entries, which has no capacity, to the one entry
// b[sp] in encoders' field order, and reports whether it did: only if
// its payload is at most maxPackedPayload bytes, so that the entry and its
// payload take a single allocation instead of two. Anything else, and
// anything malformed, is left to decodeEntries' general path.
func (m *Message) decodeSingle(b []byte, sp span) bool {
	s := int(sp.start)
	var e Entry
	ds, de, ok := e.decodeCanonical(b[s:sp.end])
	if !ok || ds < 0 || de-ds > maxPackedPayload {
		return false
	}
	ents, buf := packedEntry(de - ds)
	copy(buf, b[s+ds:s+de])
	ents[0] = Entry{Term: e.Term, Index: e.Index, Type: e.Type, Data: buf}
	m.Entries = ents
	return true
}

// maxPackedPayload is the largest payload packedEntry holds: an Entry (48
// bytes) and its payload in one object of up to 512 bytes, the largest
// size whose objects with pointers need no header of their own.
const maxPackedPayload = 464

// packedEntry returns a slice of one zero Entry and an n-byte buffer
// (n <= maxPackedPayload, a full slice expression: its capacity is n), both
// in one new object sized to one of the allocator's size classes. A
// decoded entry's Data is its buffer, so the object lives as long as
// either is reachable.
func packedEntry(n int) ([]Entry, []byte) {
	switch {
	case n == 0:
		return make([]Entry, 1), []byte{}
	case n <= 16:
		p := new(struct {
			e [1]Entry
			b [16]byte
		})
		return p.e[:], p.b[:n:n]
	case n <= 48:
		p := new(struct {
			e [1]Entry
			b [48]byte
		})
		return p.e[:], p.b[:n:n]
	case n <= 80:
		p := new(struct {
			e [1]Entry
			b [80]byte
		})
		return p.e[:], p.b[:n:n]
	case n <= 128:
		p := new(struct {
			e [1]Entry
			b [128]byte
		})
		return p.e[:], p.b[:n:n]
	case n <= 208:
		p := new(struct {
			e [1]Entry
			b [208]byte
		})
		return p.e[:], p.b[:n:n]
	case n <= 272:
		p := new(struct {
			e [1]Entry
			b [272]byte
		})
		return p.e[:], p.b[:n:n]
	case n <= 336:
		p := new(struct {
			e [1]Entry
			b [336]byte
		})
		return p.e[:], p.b[:n:n]
	default:
		p := new(struct {
			e [1]Entry
			b [maxPackedPayload]byte
		})
		return p.e[:], p.b[:n:n]
	}
}

// decodeAt decodes the entry b[start:end] into e, all but Data, and
// returns the bounds of its payload in b (start < 0 if absent). Every
// field but Data is set: e may be a stale slot of a caller's spare
// capacity.
func (m *Entry) decodeAt(b []byte, start, end int) (int, int, error) {
	eb := b[start:end]
	ds, de, ok := m.decodeCanonical(eb)
	if !ok {
		*m = Entry{}
		var err error
		if ds, de, err = m.decode(eb); err != nil {
			return -1, -1, err
		}
	}
	if ds < 0 {
		return -1, -1, nil
	}
	return start + ds, start + de, nil
}

// copyPayloads sets the Data of each of ents to a copy of b[spans[k]], all
// of them in one new buffer, each a full slice expression over it (its
// capacity ends where its payload does, so appending to one entry's Data
// never overwrites the next).
func copyPayloads(ents []Entry, spans []span, b []byte) {
	total := 0
	for _, s := range spans {
		total += int(s.end - s.start)
	}
	var buf []byte
	if total > 0 {
		buf = make([]byte, total)
	}
	off := 0
	for k := range ents {
		s := spans[k]
		if s.start < 0 {
			if ents[k].Data != nil {
				ents[k].Data = nil
			}
			continue
		}
		if s.start == s.end {
			ents[k].Data = []byte{}
			continue
		}
		n := copy(buf[off:], b[s.start:s.end])
		ents[k].Data = buf[off : off+n : off+n]
		off += n
	}
}

// decodeEntriesAgain walks b again and appends its entries, their Data
// pointing into b, for a message with more entries than an entryIndex
// holds.
func (m *Message) decodeEntriesAgain(b []byte) error {
	for i := 0; i < len(b); {
		field, wireType, next, err := fieldKey(b, i, "Message")
		if err != nil {
			return err
		}
		if field == 7 {
			i, err = m.decodeEntry(b, next, wireType)
		} else {
			i, err = skipField(b, i)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ownPayloads copies the payloads of ents, which point into the input, into
// one new buffer, each entry's Data a full slice expression over it.
func ownPayloads(ents []Entry) {
	total := 0
	for i := range ents {
		total += len(ents[i].Data)
	}
	var buf []byte
	if total > 0 {
		buf = make([]byte, total)
	}
	off := 0
	for i := range ents {
		d := ents[i].Data
		if d == nil {
			continue
		}
		if len(d) == 0 {
			ents[i].Data = []byte{}
			continue
		}
		end := off + copy(buf[off:], d)
		ents[i].Data = buf[off:end:end]
		off = end
	}
}

// decodeEntry appends the entry at b[i:], its Data pointing into b.
func (m *Message) decodeEntry(b []byte, i, wireType int) (int, error) {
	if wireType != 2 {
		return i, wrongWireType(wireType, "Entries")
	}
	start, end, err := lengthDelimited(b, i)
	if err != nil {
		return i, err
	}
	if n := len(m.Entries); n < cap(m.Entries) {
		m.Entries = m.Entries[:n+1]
	} else {
		m.Entries = append(m.Entries, Entry{})
	}
	e := &m.Entries[len(m.Entries)-1]
	ds, de, err := e.decodeAt(b, start, end)
	e.Data = nil
	if ds >= 0 {
		e.Data = b[ds:de]
	}
	return end, err
}

func (m *Message) decodeSnapshot(b []byte, i, wireType int) (int, error) {
	if wireType != 2 {
		return i, wrongWireType(wireType, "Snapshot")
	}
	start, end, err := lengthDelimited(b, i)
	if err != nil {
		return i, err
	}
	if m.Snapshot == nil {
		m.Snapshot = &Snapshot{}
	}
	return end, m.Snapshot.Unmarshal(b[start:end])
}

func (m *Message) decodeContext(b []byte, i, wireType int) (int, error) {
	if wireType != 2 {
		return i, wrongWireType(wireType, "Context")
	}
	start, end, err := lengthDelimited(b, i)
	if err != nil {
		return i, err
	}
	m.Context = append(m.Context[:0], b[start:end]...)
	if m.Context == nil {
		m.Context = []byte{}
	}
	return end, nil
}

func (m *Message) decodeResponse(b []byte, i, wireType int) (int, error) {
	if wireType != 2 {
		return i, wrongWireType(wireType, "Responses")
	}
	start, end, err := lengthDelimited(b, i)
	if err != nil {
		return i, err
	}
	m.Responses = append(m.Responses, Message{})
	var idx entryIndex
	return end, m.Responses[len(m.Responses)-1].unmarshal(b[start:end], 0, &idx)
}
