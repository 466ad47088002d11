package multiraftpb

import (
	"errors"
	"fmt"
	"io"
)

// Batch decodes with the hand-written Unmarshal below instead of a
// generated one (multiraft.proto turns gogo's off for it); GroupMessage,
// Heartbeat and HeartbeatResponse keep theirs. A batch arrives from the
// network, so what it costs to decode is bounded by its size: the
// generated decoder grows each repeated field by appending, which for a
// frame of empty GroupMessages (two bytes each, 168 bytes decoded) made
// 1 MiB of input allocate 488 MB. Unmarshal walks the input twice: first
// to count each repeated field's items (checking every key and length, so
// that nothing is allocated for a malformed input), then to decode them
// into slices grown once to their final length.

// ErrEmptyGroupMessage is returned by Batch.Unmarshal for a GroupMessage
// without a group ID or without an encoded message, which no host accepts.
// The generated decoder would take it; refusing it before decoding bounds
// what each item costs (a GroupMessage of eight bytes at least).
var ErrEmptyGroupMessage = errors.New("proto: GroupMessage without a group or a message")

// batchCounts are the items of a Batch's repeated fields in an encoding.
type batchCounts struct {
	messages, heartbeats, responses, wakes int
}

// Unmarshal decodes dAtA into m, merging as generated code does: fields
// present overwrite m's scalars, repeated fields are appended to. It
// accepts what the generated decoder accepts but for a GroupMessage
// without a group or a message (ErrEmptyGroupMessage) and a packed
// WakeGroups whose last varint runs past the field (which the generated
// decoder finishes reading from the bytes after it), and allocates each
// repeated field once. Messages' payloads are copied; dAtA is not
// retained.
func (m *Batch) Unmarshal(dAtA []byte) error {
	var n batchCounts
	if err := m.walk(dAtA, &n); err != nil {
		return err
	}
	m.Messages = grow(m.Messages, n.messages)
	m.Heartbeats = grow(m.Heartbeats, n.heartbeats)
	m.HeartbeatResponses = grow(m.HeartbeatResponses, n.responses)
	m.WakeGroups = grow(m.WakeGroups, n.wakes)
	return m.walk(dAtA, nil)
}

// grow returns s with room for n more items, in one new array of exactly
// that size if it has not. (slices.Grow's array is rounded up to a size
// class, and built through a temporary one under the race detector.)
func grow[T any](s []T, n int) []T {
	if n <= cap(s)-len(s) {
		return s
	}
	g := make([]T, len(s), len(s)+n)
	copy(g, s)
	return g
}

// walk goes over the fields of a Batch's encoding b. With counts, it only
// checks the encoding and counts the repeated fields' items; without, it
// decodes them into m.
func (m *Batch) walk(b []byte, counts *batchCounts) error {
	for i := 0; i < len(b); {
		num, wireType, next, err := fieldKey(b, i)
		if err != nil {
			return err
		}
		if wireType != batchWireType(num) && !(num == 7 && wireType == 2) {
			if batchWireType(num) >= 0 {
				return fmt.Errorf("proto: wrong wireType = %d for field %d of Batch", wireType, num)
			}
			n, err := skipMultiraft(b[i:])
			if err != nil {
				return err
			}
			if n < 0 || i+n > len(b) {
				return io.ErrUnexpectedEOF
			}
			i += n
			continue
		}
		if wireType == 0 {
			var v uint64
			if v, i, err = uvarint(b, next); err != nil {
				return err
			}
			m.setVarint(num, v, counts)
			continue
		}
		start, end, err := lengthDelimited(b, next)
		if err != nil {
			return err
		}
		if err := m.decodeItem(num, b[start:end], counts); err != nil {
			return err
		}
		i = end
	}
	return nil
}

// batchWireType is the wire type of Batch's field num, or -1 for an
// unknown field. Field 7 (WakeGroups) may be packed too (wire type 2).
func batchWireType(num int32) int {
	switch num {
	case 1, 2, 6, 7:
		return 0
	case 3, 4, 5:
		return 2
	}
	return -1
}

// setVarint sets or appends the varint field num (counting only, with
// counts).
func (m *Batch) setVarint(num int32, v uint64, counts *batchCounts) {
	switch {
	case num == 7 && counts != nil:
		counts.wakes++
	case counts != nil:
	case num == 1:
		m.From = v
	case num == 2:
		m.To = v
	case num == 6:
		m.NodeHeartbeat = v != 0
	case num == 7:
		m.WakeGroups = append(m.WakeGroups, v)
	}
}

// decodeItem decodes (or, with counts, checks and counts) the
// length-delimited field num whose value is p.
func (m *Batch) decodeItem(num int32, p []byte, counts *batchCounts) error {
	if counts != nil {
		switch num {
		case 3:
			counts.messages++
			return checkGroupMessage(p)
		case 4:
			counts.heartbeats++
		case 5:
			counts.responses++
		case 7:
			for _, c := range p {
				if c < 0x80 {
					counts.wakes++
				}
			}
		}
		return nil
	}
	switch num {
	case 3:
		m.Messages = append(m.Messages, GroupMessage{})
		return m.Messages[len(m.Messages)-1].Unmarshal(p)
	case 4:
		m.Heartbeats = append(m.Heartbeats, Heartbeat{})
		return m.Heartbeats[len(m.Heartbeats)-1].Unmarshal(p)
	case 5:
		m.HeartbeatResponses = append(m.HeartbeatResponses, HeartbeatResponse{})
		return m.HeartbeatResponses[len(m.HeartbeatResponses)-1].Unmarshal(p)
	}
	// Packed WakeGroups.
	for i := 0; i < len(p); {
		v, next, err := uvarint(p, i)
		if err != nil {
			return err
		}
		m.WakeGroups = append(m.WakeGroups, v)
		i = next
	}
	return nil
}

// checkGroupMessage checks the keys and lengths of a GroupMessage's
// encoding p, and that it has a nonzero group ID and a non-empty message;
// GroupMessage.Unmarshal decodes it later.
func checkGroupMessage(p []byte) error {
	var group uint64
	message := false
	for i := 0; i < len(p); {
		num, wireType, next, err := fieldKey(p, i)
		if err != nil {
			return err
		}
		switch {
		case num == 1 && wireType == 0:
			if group, i, err = uvarint(p, next); err != nil {
				return err
			}
		case num == 2 && wireType == 2:
			start, end, err := lengthDelimited(p, next)
			if err != nil {
				return err
			}
			message = message || end > start
			i = end
		case num == 1 || num == 2:
			return fmt.Errorf("proto: wrong wireType = %d for field %d of GroupMessage", wireType, num)
		default:
			n, err := skipMultiraft(p[i:])
			if err != nil {
				return err
			}
			if n < 0 || i+n > len(p) {
				return io.ErrUnexpectedEOF
			}
			i += n
		}
	}
	if group == 0 || !message {
		return ErrEmptyGroupMessage
	}
	return nil
}

// fieldKey decodes the key at b[i:] with the generated decoders' checks.
func fieldKey(b []byte, i int) (num int32, wireType int, next int, err error) {
	key, next, err := uvarint(b, i)
	if err != nil {
		return 0, 0, next, err
	}
	num, wireType = int32(key>>3), int(key&7)
	if wireType == 4 {
		return 0, 0, next, errors.New("proto: wiretype end group for non-group")
	}
	if num <= 0 {
		return 0, 0, next, fmt.Errorf("proto: illegal tag %d (wire type %d)", num, key)
	}
	return num, wireType, next, nil
}

// uvarint decodes the varint at b[i:] as the generated decoders do (up to
// ten bytes, bits past the 64th dropped) and returns the position after it.
func uvarint(b []byte, i int) (uint64, int, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, i, ErrIntOverflowMultiraft
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
// bounds of the value that follows, checked against len(b).
func lengthDelimited(b []byte, i int) (start, end int, err error) {
	v, i, err := uvarint(b, i)
	if err != nil {
		return 0, 0, err
	}
	n := int(v)
	if n < 0 || i+n < 0 {
		return 0, 0, ErrInvalidLengthMultiraft
	}
	if i+n > len(b) {
		return 0, 0, io.ErrUnexpectedEOF
	}
	return i, i + n, nil
}
