package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// The replicated log and the snapshots carry keys and values as bytes, so
// that they round-trip exactly: a key is any byte string, not necessarily
// UTF-8. Both encodings start with a format byte.
//
// A command (an entry's Data):
//
//	0x01 op id key value
//
// op is 1 (put) or 2 (delete); id, key and value are each a uvarint length
// followed by that many bytes, and nothing follows the value.
//
// A snapshot (the state machine in a Snapshot's Data):
//
//	0x01 npeers (id addr)* nkeys (key value)*
//
// npeers, nkeys and the ids are uvarints; addr, key and value are uvarint
// lengths followed by bytes; peers are in increasing id order, keys in
// increasing byte order, so one state has one encoding.
//
// Earlier versions wrote both as JSON objects (first byte '{'), which
// replaced bytes that are not UTF-8 in keys by U+FFFD. Those still decode,
// as they were written, so a log or snapshot from before the change loads.
const (
	commandFormatV1  = 0x01
	snapshotFormatV1 = 0x01
	legacyJSONFormat = '{'
)

// op is what a command does.
type op byte

const (
	opPut    op = 1
	opDelete op = 2
)

func (o op) String() string {
	switch o {
	case opPut:
		return "put"
	case opDelete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", byte(o))
}

// command is what a write proposes. ID is unique per request, so the
// member that took the request knows when it is applied.
type command struct {
	ID    string
	Op    op
	Key   string
	Value []byte
}

var (
	errTruncated     = errors.New("truncated")
	errTrailingBytes = errors.New("trailing bytes")
	errNonCanonical  = errors.New("varint longer than needed")
)

// encodeCommand returns c as an entry's Data.
func encodeCommand(c command) []byte {
	b := make([]byte, 0, 2+3*binary.MaxVarintLen64+len(c.ID)+len(c.Key)+len(c.Value))
	b = append(b, commandFormatV1, byte(c.Op))
	b = appendBytes(b, []byte(c.ID))
	b = appendBytes(b, []byte(c.Key))
	return appendBytes(b, c.Value)
}

// decodeCommand decodes an entry's Data, in either format. The command
// owns its Value (it does not alias data).
func decodeCommand(data []byte) (command, error) {
	if len(data) == 0 {
		return command{}, fmt.Errorf("command: %w", errTruncated)
	}
	switch data[0] {
	case commandFormatV1:
	case legacyJSONFormat:
		return decodeLegacyCommand(data)
	default:
		return command{}, fmt.Errorf("command: unknown format %#x", data[0])
	}
	if len(data) < 2 {
		return command{}, fmt.Errorf("command: %w", errTruncated)
	}
	c := command{Op: op(data[1])}
	if c.Op != opPut && c.Op != opDelete {
		return command{}, fmt.Errorf("command: unknown op %d", data[1])
	}
	d := decoder{b: data[2:]}
	c.ID = string(d.bytes())
	c.Key = string(d.bytes())
	c.Value = bytes.Clone(d.bytes())
	if err := d.end(); err != nil {
		return command{}, fmt.Errorf("command: %w", err)
	}
	return c, nil
}

// legacyCommand is a command as earlier versions wrote it.
type legacyCommand struct {
	ID    string `json:"id"`
	Op    string `json:"op"`
	Key   string `json:"key"`
	Value []byte `json:"value,omitempty"`
}

func decodeLegacyCommand(data []byte) (command, error) {
	var lc legacyCommand
	if err := json.Unmarshal(data, &lc); err != nil {
		return command{}, fmt.Errorf("command (JSON): %w", err)
	}
	c := command{ID: lc.ID, Key: lc.Key, Value: lc.Value}
	switch lc.Op {
	case "put":
		c.Op = opPut
	case "delete":
		c.Op = opDelete
	default:
		return command{}, fmt.Errorf("command (JSON): unknown op %q", lc.Op)
	}
	return c, nil
}

// encodeSnapshot returns the state machine's data and peers as a
// snapshot's Data.
func encodeSnapshot(data map[string][]byte, peers map[uint64]string) []byte {
	size := 1 + 2*binary.MaxVarintLen64
	for _, addr := range peers {
		size += 2*binary.MaxVarintLen64 + len(addr)
	}
	for k, v := range data {
		size += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	b := make([]byte, 0, size)
	b = append(b, snapshotFormatV1)
	b = binary.AppendUvarint(b, uint64(len(peers)))
	for _, id := range slices.Sorted(maps.Keys(peers)) {
		b = binary.AppendUvarint(b, id)
		b = appendBytes(b, []byte(peers[id]))
	}
	b = binary.AppendUvarint(b, uint64(len(data)))
	for _, k := range slices.Sorted(maps.Keys(data)) {
		b = appendBytes(b, []byte(k))
		b = appendBytes(b, data[k])
	}
	return b
}

// decodeSnapshot decodes a snapshot's Data, in either format. The maps
// own their values (they do not alias b).
func decodeSnapshot(b []byte) (map[string][]byte, map[uint64]string, error) {
	if len(b) == 0 {
		return nil, nil, fmt.Errorf("snapshot: %w", errTruncated)
	}
	switch b[0] {
	case snapshotFormatV1:
	case legacyJSONFormat:
		return decodeLegacySnapshot(b)
	default:
		return nil, nil, fmt.Errorf("snapshot: unknown format %#x", b[0])
	}
	d := decoder{b: b[1:]}
	// Counts come from the input: never allocate by them.
	peers := map[uint64]string{}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		id := d.uvarint()
		peers[id] = string(d.bytes())
	}
	data := map[string][]byte{}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		k := string(d.bytes())
		data[k] = bytes.Clone(d.bytes())
	}
	if err := d.end(); err != nil {
		return nil, nil, fmt.Errorf("snapshot: %w", err)
	}
	return data, peers, nil
}

// legacySnapshot is a snapshot as earlier versions wrote it.
type legacySnapshot struct {
	Data  map[string][]byte `json:"data"`
	Peers map[uint64]string `json:"peers"`
}

func decodeLegacySnapshot(b []byte) (map[string][]byte, map[uint64]string, error) {
	var s legacySnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, fmt.Errorf("snapshot (JSON): %w", err)
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	if s.Peers == nil {
		s.Peers = map[uint64]string{}
	}
	return s.Data, s.Peers, nil
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// decoder reads uvarints and length-prefixed byte strings; after the first
// error it reads nothing more and returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		// Longer than needed: one value, one encoding.
		d.err = errNonCanonical
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns the next length-prefixed string, aliasing the input.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errTruncated
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// end reports the first error, or trailing bytes.
func (d *decoder) end() error {
	if d.err == nil && len(d.b) > 0 {
		return errTrailingBytes
	}
	return d.err
}
