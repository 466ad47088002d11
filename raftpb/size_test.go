package raftpb

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPayloadSize(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
		want uint64
	}{
		{name: "nil data", e: Entry{}, want: 0},
		{name: "empty non-nil data", e: Entry{Data: []byte{}}, want: 0},
		{name: "leader's empty entry", e: Entry{Term: 9, Index: 100}, want: 0},
		{name: "five bytes", e: Entry{Data: []byte("hello")}, want: 5},
		{
			name: "header fields do not count",
			e:    Entry{Term: 1 << 62, Index: 1 << 63, Type: EntryConfChangeV2, Data: []byte{1, 2, 3}},
			want: 3,
		},
		{name: "4 KiB", e: Entry{Data: make([]byte, 4096)}, want: 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, PayloadSize(&tt.e))
			require.Equal(t, tt.want, PayloadsSize([]Entry{tt.e}))
		})
	}
}

func TestPayloadsSize(t *testing.T) {
	tests := []struct {
		name string
		ents []Entry
		want uint64
	}{
		{name: "nil", ents: nil, want: 0},
		{name: "empty", ents: []Entry{}, want: 0},
		{name: "only empty entries", ents: []Entry{{Index: 1}, {Index: 2, Data: []byte{}}}, want: 0},
		{
			name: "mixed",
			ents: []Entry{
				{Index: 1, Data: []byte("ab")},
				{Index: 2},
				{Index: 3, Data: []byte("cdefg")},
				{Index: 4, Type: EntryConfChange, Data: make([]byte, 100)},
			},
			want: 107,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, PayloadsSize(tt.ents))
		})
	}
}

// TestEntriesSize checks EntriesSize against sizes worked out by hand from
// the encoding (every entry writes Type, Term and Index, each a one-byte tag
// and a varint; Data, when non-nil, a tag, a varint length and the bytes),
// and against the length of the actual encoding.
func TestEntriesSize(t *testing.T) {
	tests := []struct {
		name string
		ents []Entry
		want uint64
	}{
		{name: "nil", ents: nil, want: 0},
		{name: "zero entry", ents: []Entry{{}}, want: 6},
		{name: "empty non-nil data still writes its tag", ents: []Entry{{Data: []byte{}}}, want: 8},
		{name: "small entry", ents: []Entry{{Term: 1, Index: 2, Data: []byte("hello")}}, want: 6 + 1 + 1 + 5},
		{
			name: "multi-byte varints",
			// Term 300 takes 2 bytes, Index 2^63 takes 10.
			ents: []Entry{{Type: EntryConfChangeV2, Term: 300, Index: 1 << 63}},
			want: (1 + 1) + (1 + 2) + (1 + 10),
		},
		{
			name: "largest term and index",
			ents: []Entry{{Term: 1<<64 - 1, Index: 1<<64 - 1}},
			want: (1 + 1) + (1 + 10) + (1 + 10),
		},
		{
			name: "payload needing a two-byte length",
			ents: []Entry{{Term: 1, Index: 1, Data: make([]byte, 200)}},
			want: 6 + 1 + 2 + 200,
		},
		{
			name: "payload of exactly 127 bytes keeps a one-byte length",
			ents: []Entry{{Term: 1, Index: 1, Data: make([]byte, 127)}},
			want: 6 + 1 + 1 + 127,
		},
		{
			name: "4 KiB payload",
			ents: []Entry{{Term: 5, Index: 1000, Data: make([]byte, 4096)}},
			// Index 1000 takes 2 bytes; length 4096 takes 2.
			want: 2 + 2 + 3 + (1 + 2 + 4096),
		},
		{
			name: "several entries add up",
			ents: []Entry{{}, {Term: 1, Index: 2, Data: []byte("hello")}, {Data: []byte{}}},
			want: 6 + 13 + 8,
		},
		{
			name: "negative type is sign extended",
			ents: []Entry{{Type: EntryType(-1)}},
			want: (1 + 10) + 2 + 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, EntriesSize(tt.ents))
			require.Equal(t, tt.want, encodedLen(t, tt.ents))
		})
	}
}

// encodedLen sums the lengths of the entries' actual encodings.
func encodedLen(t *testing.T, ents []Entry) uint64 {
	t.Helper()
	var n uint64
	for i := range ents {
		b, err := ents[i].Marshal()
		require.NoError(t, err)
		n += uint64(len(b))
	}
	return n
}

// TestEntriesSizeWireVectors checks EntriesSize against the byte length of
// every Entry compatibility vector.
func TestEntriesSizeWireVectors(t *testing.T) {
	found := 0
	for _, v := range loadWireVectors(t) {
		if v.Type != "Entry" {
			continue
		}
		found++
		t.Run(v.Name, func(t *testing.T) {
			want, err := hex.DecodeString(v.Hex)
			require.NoError(t, err)
			var e Entry
			require.NoError(t, e.Unmarshal(want))
			require.Equal(t, uint64(len(want)), EntriesSize([]Entry{e}))
			require.Equal(t, uint64(len(e.Data)), PayloadSize(&e))
		})
	}
	require.NotZero(t, found, "the vectors include entries")
}

// TestEntriesSizeRandom compares EntriesSize and PayloadsSize with the
// encoding on random entries, and checks that entries placed in a Message
// cost what EntriesSize says plus a tag and a length each.
func TestEntriesSizeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		ents := make([]Entry, rng.IntN(8))
		var payload uint64
		for i := range ents {
			ents[i] = Entry{
				Type:  EntryType(rng.IntN(3)),
				Term:  rng.Uint64() >> rng.UintN(64),
				Index: rng.Uint64() >> rng.UintN(64),
			}
			if n := rng.IntN(300) - 20; n >= 0 {
				ents[i].Data = bytes.Repeat([]byte{byte(n)}, n)
				payload += uint64(n)
			}
		}
		require.Equal(t, encodedLen(t, ents), EntriesSize(ents))
		require.Equal(t, payload, PayloadsSize(ents))

		bare := Message{Type: MsgApp}
		full := Message{Type: MsgApp, Entries: ents}
		var framing uint64
		for i := range ents {
			framing += 1 + uint64(len(binary.AppendUvarint(nil, uint64(ents[i].Size()))))
		}
		require.Equal(t, uint64(bare.Size())+EntriesSize(ents)+framing, uint64(full.Size()))
	}
}
