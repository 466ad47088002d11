package raftpb

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// decodeTargets lists every generated type FuzzUnmarshal decodes into. Each
// entry returns a fresh value: generated Unmarshal merges repeated and
// embedded fields into what is already there, so a reused value would mix
// two decodes.
var decodeTargets = []struct {
	name   string
	newMsg func() wireMessage
}{
	{"Entry", func() wireMessage { return &Entry{} }},
	{"SnapshotMetadata", func() wireMessage { return &SnapshotMetadata{} }},
	{"Snapshot", func() wireMessage { return &Snapshot{} }},
	{"Message", func() wireMessage { return &Message{} }},
	{"HardState", func() wireMessage { return &HardState{} }},
	{"ConfState", func() wireMessage { return &ConfState{} }},
	{"ConfChange", func() wireMessage { return &ConfChange{} }},
	{"ConfChangeSingle", func() wireMessage { return &ConfChangeSingle{} }},
	{"ConfChangeV2", func() wireMessage { return &ConfChangeV2{} }},
}

// malformedSeeds are inputs each decoder must reject (or, for some types,
// skip as unknown fields) without panicking. They steer the fuzzer towards
// the error paths of the generated code.
var malformedSeeds = []struct {
	name string
	data []byte
}{
	{"empty", []byte{}},
	{"tag with continuation bit only", []byte{0x80}},
	{"truncated varint value", []byte{0x08, 0x80}},
	{"varint longer than 64 bits", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	{"field number zero", []byte{0x00, 0x01}},
	{"end group without start", []byte{0x0c}},
	{"length prefix past the end", []byte{0x22, 0x05, 'a', 'b'}},
	{"length that wraps negative", []byte{0x22, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	{"huge length", []byte{0x22, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00}},
	{"length-delimited where a varint belongs", []byte{0x0a, 0x01, 0x00}},
	{"fixed32 where a varint belongs", []byte{0x0d, 0x01, 0x02, 0x03, 0x04}},
	{"varint where bytes belong", []byte{0x20, 0x01}},
	{"illegal wire type 7 in unknown field", []byte{0x7f, 0x00}},
	{"unknown fixed64 truncated", []byte{0x79, 0x01, 0x02, 0x03}},
	{"unknown group", []byte{0x7b, 0x78, 0x01, 0x7c}},
	{"unknown group never closed", []byte{0x7b, 0x78, 0x01}},
	{"nested entry truncated inside", []byte{0x3a, 0x02, 0x10, 0x80}},
	{"nested entry longer than message", []byte{0x3a, 0x09, 0x08, 0x00}},
	{"nested snapshot metadata truncated", []byte{0x4a, 0x03, 0x12, 0x05, 0x0a}},
	{"nested response truncated", []byte{0x72, 0x03, 0x08, 0x03, 0x3a}},
	{"packed voters truncated", []byte{0x0a, 0x02, 0x01, 0x82}},
	{"packed voters past the end", []byte{0x0a, 0x04, 0x01}},
	{"nested conf change single truncated", []byte{0x12, 0x02, 0x08, 0xff}},
}

// wireVectorSeeds returns the encoded bytes of every compatibility vector.
func wireVectorSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	raw, err := os.ReadFile("testdata/wire-vectors.json")
	require.NoError(tb, err)
	var vs []wireVector
	require.NoError(tb, json.Unmarshal(raw, &vs))
	require.NotEmpty(tb, vs)
	seeds := make([][]byte, 0, len(vs))
	for _, v := range vs {
		b, err := hex.DecodeString(v.Hex)
		require.NoError(tb, err, "vector %s", v.Name)
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzUnmarshal feeds arbitrary bytes to every generated decoder. Decoding
// must never panic, and whatever decodes must survive a round trip: Size
// matches the encoding and the encoding decodes to the same value. Re-encoding
// need not reproduce the input bytes (unknown fields are dropped, packed
// fields are written unpacked, field order is normalised).
func FuzzUnmarshal(f *testing.F) {
	for _, seed := range wireVectorSeeds(f) {
		f.Add(seed)
	}
	for _, seed := range malformedSeeds {
		f.Add(seed.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, target := range decodeTargets {
			checkDecodeStable(t, target.name, target.newMsg, data)
		}
	})
}

// checkDecodeStable decodes data into a fresh value from newMsg and, when
// that succeeds, checks the decode→encode→decode round trip.
func checkDecodeStable(t *testing.T, name string, newMsg func() wireMessage, data []byte) {
	t.Helper()
	first := newMsg()
	if err := first.Unmarshal(data); err != nil {
		return
	}
	encoded, err := first.Marshal()
	require.NoError(t, err, "%s: marshal of a decoded value", name)
	require.Equal(t, len(encoded), first.Size(), "%s: Size must match the encoding", name)

	second := newMsg()
	require.NoError(t, second.Unmarshal(encoded), "%s: decode of our own encoding", name)
	require.Equal(t, first, second, "%s: decode→encode→decode changed the value", name)
}

// TestMalformedSeedsDecode runs the hand-picked seeds through the fuzz
// property under plain `go test`, and checks that the ones built for a
// specific type are rejected by it.
func TestMalformedSeedsDecode(t *testing.T) {
	for _, seed := range malformedSeeds {
		t.Run(seed.name, func(t *testing.T) {
			for _, target := range decodeTargets {
				checkDecodeStable(t, target.name, target.newMsg, seed.data)
			}
		})
	}

	rejected := []struct {
		name string
		msg  wireMessage
		data []byte
	}{
		{"entry truncated varint", &Entry{}, []byte{0x08, 0x80}},
		{"entry varint overflow", &Entry{}, []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"entry data past the end", &Entry{}, []byte{0x22, 0x05, 'a', 'b'}},
		{"entry data negative length", &Entry{}, []byte{0x22, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"entry data huge length", &Entry{}, []byte{0x22, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00}},
		{"entry type with bytes wire type", &Entry{}, []byte{0x0a, 0x01, 0x00}},
		{"entry field number zero", &Entry{}, []byte{0x00, 0x01}},
		{"entry end group", &Entry{}, []byte{0x0c}},
		{"entry unknown group unclosed", &Entry{}, []byte{0x7b, 0x78, 0x01}},
		{"message entry truncated", &Message{}, []byte{0x3a, 0x02, 0x10, 0x80}},
		{"message snapshot truncated", &Message{}, []byte{0x4a, 0x03, 0x12, 0x05, 0x0a}},
		{"message response truncated", &Message{}, []byte{0x72, 0x03, 0x08, 0x03, 0x3a}},
		{"conf state packed truncated", &ConfState{}, []byte{0x0a, 0x02, 0x01, 0x82}},
		{"entry data with varint wire type", &Entry{}, []byte{0x20, 0x01}},
		{"conf change v2 change truncated", &ConfChangeV2{}, []byte{0x12, 0x02, 0x08, 0xff}},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			require.Error(t, tt.msg.Unmarshal(tt.data))
		})
	}
}

// FuzzConfChangesFromString parses arbitrary text. Parsing must never panic,
// and a successful parse must survive printing and parsing again.
func FuzzConfChangesFromString(f *testing.F) {
	for _, seed := range []string{
		"", "v1", "v1 v2 l3 r4 u5", "  v1\t l2\n", "v007", "v0",
		"v18446744073709551615", "v18446744073709551616", "v", "x1", "v-1",
		"v+1", "vé", "é1", "v1 q2",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ccs, err := ConfChangesFromString(s)
		if err != nil {
			return
		}
		printed := ConfChangesToString(ccs)
		again, err := ConfChangesFromString(printed)
		require.NoError(t, err, "reparsing %q (printed from %q)", printed, s)
		require.Equal(t, ccs, again, "reparsing %q (printed from %q)", printed, s)
		require.Equal(t, printed, ConfChangesToString(again), "printing is not canonical")
	})
}
