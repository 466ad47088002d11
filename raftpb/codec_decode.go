package raftpb

import (
	"fmt"
	"io"
	"math"
	"slices"
)

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
// second walk over the input. It starts with an array of fewEntries, which
// costs nothing to clear, and moves to one of stackEntries at the entry
// after those.
const stackEntries = 128

// span is a range [start, end) of a Message.Unmarshal's input; start < 0
// marks an absent payload.
type span struct{ start, end int32 }

// entryIndex is where the entries of a message lie in its encoding,
// recorded while Message.Unmarshal decodes the other fields: the entries
// are counted first so that Entries grows once, then decoded, then their
// payloads copied into one buffer of their total size.
type entryIndex struct {
	// stopWhenFull makes decodeFields stop at an entry it has no span
	// left for (with no spans, at the first entry), and stopped tells
	// that it did.
	stopWhenFull, stopped bool
	n                     int // entries seen, even past len(spans)
	// spans are the first entries' bounds; once decoded, the bounds of
	// their payloads.
	spans []span
	// depth is how deep in Responses the message being decoded is: 0 for
	// the outermost.
	depth int
	// responses counts the messages decoded into Responses so far, at
	// every depth, by the Unmarshal this is part of; maxResponses is how
	// many it may decode (responseLimit of its input's length).
	responses, maxResponses int
}

// responseLimit is how many Responses Unmarshal decodes from n bytes, at
// every depth together: MaxResponses, or one per responseBytes of input if
// that is more.
func responseLimit(n int) int { return max(MaxResponses, n/responseBytes) }

func (x *entryIndex) add(start, end int) {
	if x.n < len(x.spans) {
		x.spans[x.n] = span{int32(start), int32(end)}
	}
	x.n++
}

// full reports whether decodeFields is to stop at the next entry, and if
// so marks that it stopped.
func (x *entryIndex) full() bool {
	if x.stopWhenFull && x.n == len(x.spans) {
		x.stopped = true
		return true
	}
	return false
}

// addRun records the entries whose one-byte keys follow one another from
// b[i] on, as encoders write them, and returns the position after the
// last, or of the entry it stopped at (see stopWhenFull).
func (x *entryIndex) addRun(b []byte, i int) (int, error) {
	for i < len(b) && b[i] == tagMsgEntries {
		if x.full() {
			return i, nil
		}
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
	// Most messages carry no entries: the array to record them in comes
	// into play at the first one.
	idx := entryIndex{stopWhenFull: true, maxResponses: responseLimit(len(dAtA))}
	i, err := m.decodeFields(dAtA, 0, &idx)
	if err != nil || !idx.stopped {
		return err
	}
	return m.unmarshalEntries(dAtA, i, idx.responses)
}

// unmarshalEntries goes on with Unmarshal at b[i:], where the first entry
// is, with room for fewEntries of them, and unmarshalMany goes on from the
// entry after those; responses are those decoded before b[i].
func (m *Message) unmarshalEntries(b []byte, i, responses int) error {
	if len(b) > math.MaxInt32 {
		idx := entryIndex{responses: responses, maxResponses: responseLimit(len(b))}
		return m.unmarshal(b, i, &idx)
	}
	var spans [fewEntries]span
	idx := entryIndex{spans: spans[:], stopWhenFull: true, responses: responses, maxResponses: responseLimit(len(b))}
	i, err := m.decodeFields(b, i, &idx)
	if err == nil && idx.stopped {
		return m.unmarshalMany(b, i, &idx)
	}
	return m.decodeEntriesAfter(b, &idx, err)
}

func (m *Message) unmarshalMany(b []byte, i int, few *entryIndex) error {
	var spans [stackEntries]span
	idx := entryIndex{spans: spans[:], n: few.n, responses: few.responses, maxResponses: few.maxResponses}
	copy(spans[:], few.spans)
	return m.unmarshal(b, i, &idx)
}

// unmarshal is Unmarshal from b[i:] with idx to record the entries in.
// Nested messages (Responses) pass one without spans, so that the stack of
// a deep nesting stays as small as the generated decoder's.
func (m *Message) unmarshal(b []byte, i int, idx *entryIndex) error {
	_, err := m.decodeFields(b, i, idx)
	return m.decodeEntriesAfter(b, idx, err)
}

// decodeEntriesAfter decodes the entries idx recorded, after decodeFields
// returned err.
func (m *Message) decodeEntriesAfter(b []byte, idx *entryIndex, err error) error {
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
// in idx, and returns len(b), or if it stopped (see stopWhenFull) the
// position of the key of the entry it stopped at. The common keys, one
// byte each, are matched whole; any other key takes decodeField.
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
			if i, err = idx.addRun(b, i); err != nil || idx.stopped {
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
// stopped at an entry (see entryIndex.stopWhenFull).
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
		if idx.full() {
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
		i, err = m.decodeResponse(b, i, wireType, idx)
	default:
		i, err = skipField(b, keyAt)
	}
	return i, err
}

// decodeEntries appends the entries idx recorded, decoded from b, and
// copies their payloads. Entries grows at most once.
func (m *Message) decodeEntries(b []byte, idx *entryIndex) error {
	first, n := len(m.Entries), idx.n
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
// never overwrites the next). The spans lie in b in order (the decoder
// records them walking forward). When the stretch of b from the first
// payload to the last is not much longer than the payloads themselves
// (the entry headers between them are small), that stretch is copied
// whole: one copy into memory that need not be zeroed first, instead of
// one per entry into a zeroed buffer.
func copyPayloads(ents []Entry, spans []span, b []byte) {
	total, lo, hi := 0, int32(-1), int32(-1)
	for _, s := range spans {
		if s.start < s.end {
			total += int(s.end - s.start)
			if lo < 0 {
				lo = s.start
			}
			hi = s.end
		}
	}
	switch {
	case total == 0:
		copyPayloadsInto(ents, spans, b, nil)
	case int(hi-lo) <= 2*total+256:
		region := append([]byte(nil), b[lo:hi]...)
		for k := range ents {
			s := spans[k]
			switch {
			case s.start < 0:
				if ents[k].Data != nil {
					ents[k].Data = nil
				}
			case s.start == s.end:
				ents[k].Data = []byte{}
			default:
				ents[k].Data = region[s.start-lo : s.end-lo : s.end-lo]
			}
		}
	default:
		copyPayloadsInto(ents, spans, b, make([]byte, total))
	}
}

// copyPayloadsInto is copyPayloads into buf, of the payloads' total size,
// one payload after another.
func copyPayloadsInto(ents []Entry, spans []span, b []byte, buf []byte) {
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

// MaxResponseDepth bounds how deeply messages may nest in Responses for
// Unmarshal: a message in the Responses of a message in the Responses of
// ... more than MaxResponseDepth levels down is an error. Responses carry
// the messages a local storage write or apply acknowledges, which have no
// Responses of their own, so one level is all that is ever used; the
// bound keeps a crafted input of a few megabytes from recursing until the
// goroutine's stack is exhausted, which would kill the process (the
// generated decoder, and so etcd raft's, has no bound).
const MaxResponseDepth = 8

// MaxResponses bounds how many messages Unmarshal decodes into Responses,
// at every depth together, unless the input has more than responseBytes
// bytes for each: more is an error. A local storage write carries the
// node's own acknowledgement and the messages that wait for it: usually a
// few, but one MsgAppResp per append a follower took while a write was
// slow (hundreds), each of which takes more than responseBytes to encode.
// The bound keeps a crafted input from costing a Message (160 bytes) for
// every two bytes of empty response (the generated decoder, and so etcd
// raft's, has no bound).
const MaxResponses = 256

// responseBytes is the input one Response beyond MaxResponses needs: less
// than any Message this wire format's encoders write takes (its ten scalar
// fields are always written, 20 bytes at least, and two more frame it). So
// a crafted input decodes at most a Message (160 bytes) per 16 bytes: with
// the growth of the slice, about 20 times the input.
const responseBytes = 16

var (
	errResponseDepth = fmt.Errorf("proto: Message: Responses nested more than %d levels deep", MaxResponseDepth)
	errResponseCount = fmt.Errorf("proto: Message: more than %d Responses, or than one per %d bytes of input", MaxResponses, responseBytes)
)

// decodeResponse decodes the response at b[i:] into m, within the bounds
// idx keeps (MaxResponseDepth, MaxResponses).
func (m *Message) decodeResponse(b []byte, i, wireType int, idx *entryIndex) (int, error) {
	if wireType != 2 {
		return i, wrongWireType(wireType, "Responses")
	}
	if idx.depth >= MaxResponseDepth {
		return i, errResponseDepth
	}
	if idx.responses >= idx.maxResponses {
		return i, errResponseCount
	}
	start, end, err := lengthDelimited(b, i)
	if err != nil {
		return i, err
	}
	idx.responses++
	if len(m.Responses) == cap(m.Responses) {
		// Room for every response left at this level (within the bound):
		// grown one at a time, the slice's reallocations would cost
		// several times its final size.
		want := min(countResponses(b, end)+1, idx.maxResponses-idx.responses+1)
		m.Responses = slices.Grow(m.Responses, want)
	}
	m.Responses = append(m.Responses, Message{})
	nested := entryIndex{depth: idx.depth + 1, responses: idx.responses, maxResponses: idx.maxResponses}
	err = m.Responses[len(m.Responses)-1].unmarshal(b[start:end], 0, &nested)
	idx.responses = nested.responses
	return end, err
}

// countResponses counts the Responses fields in b[i:], a message's fields
// from a key on, stopping at the first it cannot skip (the decoder reports
// that one).
func countResponses(b []byte, i int) int {
	n := 0
	for i < len(b) {
		if b[i] == tagMsgResponses {
			n++
		}
		next, err := skipField(b, i)
		if err != nil || next <= i {
			return n
		}
		i = next
	}
	return n
}
