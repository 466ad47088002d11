package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	pb "github.com/raftcore/raft/raftpb"
)

// A record on disk is
//
//	length  uint32, little endian: bytes in the body (type + payload)
//	crc     uint32, little endian: CRC-32C of the 4 length bytes and the body
//	type    1 byte
//	payload length-1 bytes
//	padding zero bytes up to the next multiple of 8
//
// Records start at multiples of 8, so a record's 8-byte header never
// straddles a disk sector: after a crash a header is either written whole or
// not at all (zero, since segments are preallocated). A length that is
// zero with a zero CRC is the end of the written data.
const (
	headerSize = 8
	recAlign   = 8
	// maxBody bounds the length field: anything larger is damage, not a
	// record (entries are bounded far below this by the application).
	maxBody = 1 << 30
	// sectorSize is the unit a disk writes atomically; a torn write leaves
	// whole sectors unwritten.
	sectorSize = 512
)

type recType byte

const (
	// recSegmentHeader opens every segment: its sequence number and the
	// hard state when the segment was created, so that older segments can
	// be deleted without losing the hard state.
	recSegmentHeader recType = 1 + iota
	// recEntry holds one marshaled raftpb.Entry.
	recEntry
	// recHardState holds a marshaled raftpb.HardState.
	recHardState
	// recSnapshot marks that a snapshot (index, term) was applied: the log
	// restarts after it. The snapshot itself is in its own file.
	recSnapshot
	// recSnapshotFile is the single record of a snapshot file: a
	// marshaled raftpb.Snapshot.
	recSnapshotFile
	// The records of a MultiLog. Every one but the header starts with the
	// group ID (8 bytes, little endian); the rest is as in the record of
	// one group's log.
	//
	// recMultiHeader opens every segment of a MultiLog: its sequence
	// number and the length in bytes of the checkpoint records after it,
	// written with it: every group's hard state and every removed group.
	recMultiHeader
	recGroupEntry
	recGroupHardState
	recGroupSnapshot
	// recGroupRemoved: the group is removed; later records of it are
	// ignored.
	recGroupRemoved
)

func (t recType) String() string {
	switch t {
	case recSegmentHeader:
		return "segment-header"
	case recEntry:
		return "entry"
	case recHardState:
		return "hard-state"
	case recSnapshot:
		return "snapshot"
	case recSnapshotFile:
		return "snapshot-file"
	case recMultiHeader:
		return "multi-segment-header"
	case recGroupEntry:
		return "group-entry"
	case recGroupHardState:
		return "group-hard-state"
	case recGroupSnapshot:
		return "group-snapshot"
	case recGroupRemoved:
		return "group-removed"
	}
	return fmt.Sprintf("type-%d", byte(t))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameSize is the bytes a record with an n-byte payload takes on disk.
func frameSize(n int) int {
	return (headerSize + 1 + n + recAlign - 1) &^ (recAlign - 1)
}

// appendFrame appends an unsealed record of type t with an n-byte payload to
// buf and returns the new buf and the payload to fill; seal(buf, start, n)
// then writes the header.
func appendFrame(buf []byte, t recType, n int) (out []byte, start int, payload []byte) {
	start = len(buf)
	size := frameSize(n)
	buf = slices.Grow(buf, size)[:start+size]
	clear(buf[start+headerSize+1+n:]) // padding
	buf[start+headerSize] = byte(t)
	return buf, start, buf[start+headerSize+1 : start+headerSize+1+n]
}

// appendRecord appends a whole record with the given payload.
func appendRecord(buf []byte, t recType, payload []byte) []byte {
	buf, start, p := appendFrame(buf, t, len(payload))
	copy(p, payload)
	return seal(buf, start, len(payload))
}

// seal writes the header of the record at buf[start:] whose payload is n
// bytes long.
func seal(buf []byte, start, n int) []byte {
	binary.LittleEndian.PutUint32(buf[start:], uint32(1+n))
	crc := crc32.Checksum(buf[start:start+4], castagnoli)
	crc = crc32.Update(crc, castagnoli, buf[start+headerSize:start+headerSize+1+n])
	binary.LittleEndian.PutUint32(buf[start+4:], crc)
	return buf
}

// appendEntry appends e as a recEntry record, marshaled in place.
func appendEntry(buf []byte, e *pb.Entry) []byte {
	n := e.Size()
	buf, start, p := appendFrame(buf, recEntry, n)
	if _, err := e.MarshalToSizedBuffer(p); err != nil {
		panic(fmt.Sprintf("wal: marshal entry %d: %v", e.Index, err)) // sized above: cannot fail
	}
	return seal(buf, start, n)
}

// frameStatus is what readFrame found at an offset.
type frameStatus int

const (
	frameOK frameStatus = iota
	// frameEnd: a zero header, the end of the written data (if nothing
	// follows it).
	frameEnd
	// frameShort: the record runs past the end of the data.
	frameShort
	// frameBad: the length is impossible or the CRC does not match.
	frameBad
)

// readFrame decodes the record at data[off:]. It returns the record's type
// and payload (aliasing data) and the offset of the next record.
func readFrame(data []byte, off int) (t recType, payload []byte, next int, st frameStatus) {
	if off >= len(data) {
		return 0, nil, off, frameEnd
	}
	if off+headerSize > len(data) {
		if allZero(data[off:]) {
			return 0, nil, off, frameEnd
		}
		return 0, nil, off, frameShort
	}
	length := binary.LittleEndian.Uint32(data[off:])
	crc := binary.LittleEndian.Uint32(data[off+4:])
	if length == 0 {
		if crc == 0 {
			return 0, nil, off, frameEnd
		}
		return 0, nil, off, frameBad
	}
	if length > maxBody {
		return 0, nil, off, frameBad
	}
	end := off + headerSize + int(length)
	if end > len(data) {
		return 0, nil, off, frameShort
	}
	got := crc32.Checksum(data[off:off+4], castagnoli)
	got = crc32.Update(got, castagnoli, data[off+headerSize:end])
	if got != crc {
		return 0, nil, off, frameBad
	}
	// The padding of the last record may be cut off: next may be past the
	// end of data.
	next = off + frameSize(int(length)-1)
	return recType(data[off+headerSize]), data[off+headerSize+1 : end], next, frameOK
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// tornAt reports whether the damaged record at data[off:] looks like a
// write that did not finish, rather than damage to data that was written.
//
// A write that did not finish keeps a prefix of its sectors (a sector is
// written whole or not at all) and leaves the rest as it was: zero, since
// segments are preallocated and zeroed past a cut tail. Records start at
// multiples of 8, so a record's header lies in one sector. What a tear
// leaves of the record at off is then either nothing (a zero header), or
// its header and type written whole, with its payload cut at a sector
// boundary (an all-zero sector from there on) or where the file ends; and
// nothing written after it. (A disk that wrote a later sector of the
// record but not an earlier one leaves garbage after the zero sector; it
// is accepted as long as no intact record lies past the record's end.)
//
// The record's own surviving payload is the application's data and may
// hold anything, intact records included (an entry holding a copy of a
// log): only what lies past the record's claimed end may refuse the tear.
// That trusts the length field, which a tear leaves intact but damage may
// not: a length damaged to reach past the records after it would hide
// them. lengthDamaged catches that case, when the length is all that was
// damaged (the checksum then matches a shorter length). CRC-32C has no
// key: entry data crafted to forge that match could still make its own
// torn write look like damage, which only a record format binding each
// record to its offset would make harder; data that merely holds records
// (a copy of a log) cannot.
func tornAt(data []byte, off int, st frameStatus) bool {
	switch {
	case st == frameEnd:
		// The header was never written, so nothing after it was.
		return !validFrameFrom(data, off+recAlign)
	case off+headerSize > len(data):
		return true // the data ends inside the header
	}
	length := int(binary.LittleEndian.Uint32(data[off:]))
	if length == 0 || length > maxBody || !appendedType(data, off) {
		return false // headers are written whole: this is damage
	}
	bodyEnd := off + headerSize + length
	if st == frameBad && !zeroSectorIn(data, off, min(bodyEnd, len(data))) {
		return false
	}
	recEnd := off + frameSize(length-1)
	return !validFrameFrom(data, recEnd) && !lengthDamaged(data, off, length, recEnd)
}

// appendedType reports whether the type byte of the record at off is one
// a Save or a MultiLog appends, or zero in a sector a tear left unwritten.
func appendedType(data []byte, off int) bool {
	if off+headerSize >= len(data) {
		return true
	}
	switch t := recType(data[off+headerSize]); t {
	case recEntry, recHardState, recSnapshot, recGroupEntry, recGroupHardState, recGroupSnapshot, recGroupRemoved:
		return true
	case 0:
		return (off+headerSize)%sectorSize == 0
	}
	return false
}

// zeroSectorIn reports whether data[off:end] holds an all-zero sector from
// a sector boundary on (the last one may be cut short by end).
func zeroSectorIn(data []byte, off, end int) bool {
	for s := (off/sectorSize + 1) * sectorSize; s < end; s += sectorSize {
		if allZero(data[s:min(s+sectorSize, end)]) {
			return true
		}
	}
	return false
}

// validFrameFrom reports whether an intact record starts at from or
// after it (at a record boundary; from is one).
func validFrameFrom(data []byte, from int) bool {
	for p := from; p+headerSize <= len(data); p += recAlign {
		if binary.LittleEndian.Uint64(data[p:]) == 0 {
			continue
		}
		if _, _, _, st := readFrame(data, p); st == frameOK {
			return true
		}
	}
	return false
}

// lengthDamaged reports whether the damaged record at off, of the given
// length and claimed end, is an intact record whose length field alone
// was damaged to a larger or smaller value: a checksum over a different
// length matches, for a record ending where intact records continue to
// the end of the written data, or where the written data ends. A torn
// record matches only if its checksum collides (one chance in 2^32 for
// each of the few lengths tried).
func lengthDamaged(data []byte, off, length, recEnd int) bool {
	end := writtenEnd(data, off)
	var ends []int
	if head := chainHead(data, off, min(recEnd, end), end); head > 0 {
		ends = append(ends, head)
	}
	ends = append(ends, end)
	want := binary.LittleEndian.Uint32(data[off+4:])
	var lb [4]byte
	for _, e := range ends {
		// The lengths whose record ends at e: off+headerSize+n rounded up
		// to recAlign is e.
		for n := e - off - headerSize - recAlign + 1; n <= e-off-headerSize; n++ {
			if n < 1 || n == length || off+headerSize+n > len(data) {
				continue
			}
			binary.LittleEndian.PutUint32(lb[:], uint32(n))
			crc := crc32.Update(crc32.Checksum(lb[:], castagnoli), castagnoli, data[off+headerSize:off+headerSize+n])
			if crc == want {
				return true
			}
		}
	}
	return false
}

// writtenEnd returns the offset, rounded up to a record boundary, after
// the last non-zero byte of data past off.
func writtenEnd(data []byte, off int) int {
	i := len(data)
	for i-recAlign > off && binary.LittleEndian.Uint64(data[i-recAlign:]) == 0 {
		i -= recAlign
	}
	for i > off && data[i-1] == 0 {
		i--
	}
	return min((i+recAlign-1)&^(recAlign-1), len(data))
}

// chainHead returns the first record boundary in (off, limit) where an
// intact record starts that is followed by intact records up to end (the
// end of the written data), or 0.
func chainHead(data []byte, off, limit, end int) int {
	if end <= off+recAlign {
		return 0
	}
	// reaches[i]: a chain of intact records from off+i*recAlign runs to
	// end. Filled from the back.
	reaches := make([]bool, (end-off)/recAlign+1)
	reaches[len(reaches)-1] = true
	head := 0
	for i := len(reaches) - 2; i > 0; i-- {
		p := off + i*recAlign
		if binary.LittleEndian.Uint64(data[p:]) == 0 {
			continue
		}
		if _, _, next, st := readFrame(data, p); st == frameOK {
			reaches[i] = next >= end || reaches[(next-off)/recAlign]
		}
		if reaches[i] && p < limit {
			head = p
		}
	}
	return head
}

// errBadEntry is returned by peekEntry and decodeEntry for a payload that
// is not a well-formed entry.
var errBadEntry = errors.New("malformed entry")

// decodeEntry decodes a marshaled raftpb.Entry into e without copying: Data
// aliases b. It reads the fields gogo protobuf writes (type 1, term 2,
// index 3, data 4) in any order and refuses anything else.
func decodeEntry(b []byte, e *pb.Entry) error {
	*e = pb.Entry{}
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return errBadEntry
		}
		b = b[n:]
		field, wire := tag>>3, tag&7
		switch {
		case wire == 0 && field >= 1 && field <= 3:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return errBadEntry
			}
			b = b[n:]
			switch field {
			case 1:
				e.Type = pb.EntryType(v)
			case 2:
				e.Term = v
			case 3:
				e.Index = v
			}
		case wire == 2 && field == 4:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return errBadEntry
			}
			e.Data = b[n : n+int(l) : n+int(l)]
			b = b[n+int(l):]
		default:
			return errBadEntry
		}
	}
	return nil
}
