package raftpb

import (
	"fmt"
	"io"
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
// What differs is the cost. Message.Unmarshal counts the entries first and
// grows Entries once, then copies every entry's payload into a single
// buffer of exactly their total size: two allocations for the entries of a
// message instead of one per entry plus the slice's regrowth. Each entry's
// Data is a full slice expression over that buffer (its capacity ends where
// its payload does), so appending to one entry's Data never overwrites the
// next. Nothing aliases the input: the caller may reuse it at once.

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
// it. b must have room (the caller sized it with sovRaft).
func putUvarint(b []byte, i int, v uint64) int {
	for v >= 0x80 {
		b[i] = byte(v) | 0x80
		v >>= 7
		i++
	}
	b[i] = byte(v)
	return i + 1
}

// Size returns the encoded size of e.
func (m *Entry) Size() (n int) {
	n = 3 + sovRaft(uint64(m.Type)) + sovRaft(m.Term) + sovRaft(m.Index)
	if m.Data != nil {
		l := len(m.Data)
		n += 1 + sovRaft(uint64(l)) + l
	}
	return n
}

// Marshal returns the encoding of e in a new slice.
func (m *Entry) Marshal() (dAtA []byte, err error) {
	dAtA = make([]byte, m.Size())
	n := m.encode(dAtA)
	return dAtA[:n], nil
}

// MarshalTo encodes e at the start of dAtA, which must hold Size() bytes,
// and returns the number of bytes written.
func (m *Entry) MarshalTo(dAtA []byte) (int, error) {
	return m.encode(dAtA[:m.Size()]), nil
}

// MarshalToSizedBuffer encodes e at the end of dAtA, which must hold
// Size() bytes, and returns the number of bytes written.
func (m *Entry) MarshalToSizedBuffer(dAtA []byte) (int, error) {
	size := m.Size()
	return m.encode(dAtA[len(dAtA)-size:]), nil
}

// encode writes e at the start of b, which holds at least Size() bytes.
func (m *Entry) encode(b []byte) int {
	b[0] = tagEntryType
	i := putUvarint(b, 1, uint64(m.Type))
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
func (m *Message) Size() (n int) { return m.sizeWith(nil) }

// sizeWith returns the encoded size of m; sizes, unless nil, holds the
// size of each entry.
func (m *Message) sizeWith(sizes []int) (n int) {
	n = 11 + sovRaft(uint64(m.Type)) + sovRaft(m.To) + sovRaft(m.From) + sovRaft(m.Term) +
		sovRaft(m.LogTerm) + sovRaft(m.Index) + sovRaft(m.Commit) + sovRaft(m.RejectHint) + sovRaft(m.Vote)
	for i := range m.Entries {
		var l int
		if sizes != nil {
			l = sizes[i]
		} else {
			l = m.Entries[i].Size()
		}
		n += 1 + sovRaft(uint64(l)) + l
	}
	if m.Snapshot != nil {
		l := m.Snapshot.Size()
		n += 1 + sovRaft(uint64(l)) + l
	}
	if m.Context != nil {
		l := len(m.Context)
		n += 1 + sovRaft(uint64(l)) + l
	}
	for i := range m.Responses {
		l := m.Responses[i].Size()
		n += 1 + sovRaft(uint64(l)) + l
	}
	return n
}

// Marshal returns the encoding of m in a new slice.
func (m *Message) Marshal() (dAtA []byte, err error) {
	// The entries' sizes are needed twice, for the total and for each
	// entry's length prefix: keep them (on the stack for a usual batch)
	// rather than computing them again.
	var stack [64]int
	sizes := stack[:0]
	if len(m.Entries) > len(stack) {
		sizes = make([]int, 0, len(m.Entries))
	}
	for i := range m.Entries {
		sizes = append(sizes, m.Entries[i].Size())
	}
	dAtA = make([]byte, m.sizeWith(sizes))
	n, err := m.encodeWith(dAtA, sizes)
	if err != nil {
		return nil, err
	}
	return dAtA[:n], nil
}

// MarshalTo encodes m at the start of dAtA, which must hold Size() bytes,
// and returns the number of bytes written.
func (m *Message) MarshalTo(dAtA []byte) (int, error) {
	return m.encode(dAtA[:m.Size()])
}

// MarshalToSizedBuffer encodes m at the end of dAtA, which must hold
// Size() bytes, and returns the number of bytes written.
func (m *Message) MarshalToSizedBuffer(dAtA []byte) (int, error) {
	size := m.Size()
	return m.encode(dAtA[len(dAtA)-size:])
}

// encode writes m at the start of b, which holds at least Size() bytes.
func (m *Message) encode(b []byte) (int, error) { return m.encodeWith(b, nil) }

// encodeWith is encode with the entries' sizes known (sizes) or, if nil,
// computed as each entry is written.
func (m *Message) encodeWith(b []byte, sizes []int) (int, error) {
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
	for k := range m.Entries {
		e := &m.Entries[k]
		var l int
		if sizes != nil {
			l = sizes[k]
		} else {
			l = e.Size()
		}
		b[i] = tagMsgEntries
		i = putUvarint(b, i+1, uint64(l))
		i += e.encode(b[i:])
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
		b[i] = tagMsgResponses
		i = putUvarint(b, i+1, uint64(r.Size()))
		n, err := r.encode(b[i:])
		if err != nil {
			return 0, err
		}
		i += n
	}
	return i, nil
}

// uvarint decodes the varint at b[i:] and returns it with the position
// after it. Like the generated decoders, it accepts up to ten bytes and
// drops bits past the 64th.
func uvarint(b []byte, i int) (uint64, int, error) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1, nil
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
	v, i, err := uvarint(b, i)
	if err != nil {
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

// Unmarshal decodes dAtA into e, merging as generated code does: fields
// present overwrite e's. Data is copied; dAtA is not retained.
func (m *Entry) Unmarshal(dAtA []byte) error {
	var c Entry
	if c.decodeCanonical(dAtA) {
		m.Term, m.Index, m.Type = c.Term, c.Index, c.Type
		if c.Data != nil {
			m.Data = append(m.Data[:0], c.Data...)
			if m.Data == nil {
				m.Data = []byte{}
			}
		}
		return nil
	}
	data, hasData, err := m.decode(dAtA)
	if hasData {
		m.Data = append(m.Data[:0], data...)
		if m.Data == nil {
			m.Data = []byte{}
		}
	}
	return err
}

// decode sets e's scalar fields from b and returns the last Data field
// present (hasData), still pointing into b: the caller copies it.
func (m *Entry) decode(b []byte) (data []byte, hasData bool, err error) {
	for i := 0; i < len(b); {
		keyAt := i
		field, wireType, next, err := fieldKey(b, i, "Entry")
		if err != nil {
			return data, hasData, err
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
				return data, hasData, wrongWireType(wireType, "Data")
			}
			var start int
			start, i, err = lengthDelimited(b, i)
			if err == nil {
				data, hasData = b[start:i], true
			}
		default:
			i, err = skipField(b, keyAt)
		}
		if err != nil {
			return data, hasData, err
		}
	}
	return data, hasData, nil
}

// Unmarshal decodes dAtA into m, merging as generated code does: scalar
// fields present overwrite m's, entries and responses are appended, a
// snapshot is merged into m.Snapshot. Payloads are copied (all the new
// entries' into one buffer); dAtA is not retained.
func (m *Message) Unmarshal(dAtA []byte) error {
	first := len(m.Entries)
	if n := countEntries(dAtA); n > cap(m.Entries)-first {
		ents := make([]Entry, first, first+n)
		copy(ents, m.Entries)
		m.Entries = ents
	}
	err := m.decode(dAtA)
	// Also after an error: whatever was decoded must not point into dAtA.
	ownPayloads(m.Entries[first:])
	return err
}

// countEntries returns how many entries dAtA's top level carries. It stops
// at the first malformed field: the count only sizes Entries, and decode
// reports the error.
func countEntries(b []byte) int {
	n := 0
	for i := 0; i < len(b); {
		wire, next, err := uvarint(b, i)
		if err != nil {
			return n
		}
		i = next
		switch wire & 7 {
		case 0:
			if _, i, err = uvarint(b, i); err != nil {
				return n
			}
		case 1:
			i += 8
		case 2:
			if _, i, err = lengthDelimited(b, i); err != nil {
				return n
			}
			if wire == tagMsgEntries {
				n++
			}
		case 5:
			i += 4
		default:
			return n
		}
	}
	return n
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

// decode merges b into m. New entries' Data point into b.
func (m *Message) decode(b []byte) error {
	for i := 0; i < len(b); {
		keyAt := i
		field, wireType, next, err := fieldKey(b, i, "Message")
		if err != nil {
			return err
		}
		i = next
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
			i, err = m.decodeEntry(b, i, wireType)
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
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *Message) decodeEntry(b []byte, i, wireType int) (int, error) {
	if wireType != 2 {
		return i, wrongWireType(wireType, "Entries")
	}
	start, end, err := lengthDelimited(b, i)
	if err != nil {
		return i, err
	}
	var e *Entry
	if n := len(m.Entries); n < cap(m.Entries) {
		// The slot may hold an old entry (a caller's spare capacity):
		// decodeCanonical sets every field, decode needs it zeroed.
		m.Entries = m.Entries[:n+1]
		e = &m.Entries[n]
		if e.decodeCanonical(b[start:end]) {
			return end, nil
		}
		*e = Entry{}
	} else {
		m.Entries = append(m.Entries, Entry{})
		e = &m.Entries[n]
	}
	data, hasData, err := e.decode(b[start:end])
	if hasData {
		e.Data = data
	}
	return end, err
}

// decodeCanonical decodes b into the zero Entry e if b holds exactly the
// fields an encoder writes, in its order (Type, Term, Index, then Data if
// present), and reports whether it did; e.Data then points into b. Any
// other input, including anything malformed, is left to decode, and e is
// untouched.
func (e *Entry) decodeCanonical(b []byte) bool {
	if len(b) < 6 || b[0] != tagEntryType {
		return false
	}
	typ, i, err := uvarint(b, 1)
	if err != nil || i >= len(b) || b[i] != tagEntryTerm {
		return false
	}
	term, i, err := uvarint(b, i+1)
	if err != nil || i >= len(b) || b[i] != tagEntryIndex {
		return false
	}
	index, i, err := uvarint(b, i+1)
	if err != nil {
		return false
	}
	var data []byte
	if i < len(b) {
		if b[i] != tagEntryData {
			return false
		}
		start, end, err := lengthDelimited(b, i+1)
		if err != nil || end != len(b) {
			return false
		}
		data = b[start:end]
	}
	e.Term, e.Index, e.Type, e.Data = term, index, EntryType(typ), data
	return true
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
	return end, m.Responses[len(m.Responses)-1].Unmarshal(b[start:end])
}
