package raftpb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime/metrics"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft/raftpb/internal/raftpbref"
)

// The hand-written Entry and Message codec (codec.go) is held to the
// generated one it replaces: raftpbref is generated from raft.proto with
// gogo's marshaler, unmarshaler and sizer on for every message. The two
// must produce the same bytes, accept and reject the same inputs, and
// decode to the same values.

// convert copies src into dst field by field (by name), between a raftpb
// type and its raftpbref twin. Nil stays nil and empty stays empty, so
// require.Equal on the result sees every difference a decoder could make.
func convert(t testing.TB, dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Struct:
		if src.NumField() != dst.NumField() {
			t.Fatalf("%s and %s differ in fields", src.Type(), dst.Type())
		}
		for i := 0; i < src.NumField(); i++ {
			name := src.Type().Field(i).Name
			f := dst.FieldByName(name)
			if !f.IsValid() {
				t.Fatalf("%s has no field %s", dst.Type(), name)
			}
			convert(t, f, src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			dst.Set(reflect.Zero(dst.Type()))
			return
		}
		s := reflect.MakeSlice(dst.Type(), src.Len(), src.Len())
		if src.Type().Elem().Kind() == reflect.Uint8 {
			reflect.Copy(s, src)
			dst.Set(s)
			return
		}
		for i := 0; i < src.Len(); i++ {
			convert(t, s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Pointer:
		if src.IsNil() {
			dst.Set(reflect.Zero(dst.Type()))
			return
		}
		p := reflect.New(dst.Type().Elem())
		convert(t, p.Elem(), src.Elem())
		dst.Set(p)
	default:
		dst.Set(src.Convert(dst.Type()))
	}
}

func toRef(t testing.TB, m *Message) *raftpbref.Message {
	var r raftpbref.Message
	convert(t, reflect.ValueOf(&r).Elem(), reflect.ValueOf(m).Elem())
	return &r
}

func fromRef(t testing.TB, r *raftpbref.Message) *Message {
	var m Message
	convert(t, reflect.ValueOf(&m).Elem(), reflect.ValueOf(r).Elem())
	return &m
}

// randBytes returns nil, an empty slice or n random bytes (n < max).
func randBytes(rng *rand.Rand, max int) []byte {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, rng.IntN(max))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// randUint64 spreads values over every varint length.
func randUint64(rng *rand.Rand) uint64 {
	return rng.Uint64() >> rng.IntN(65)
}

// randEnum returns a small enum value, now and then an unknown or negative
// one (negative int32 values encode as ten-byte varints).
func randEnum(rng *rand.Rand, n int) int32 {
	switch rng.IntN(10) {
	case 0:
		return int32(rng.Uint32())
	case 1:
		return -1
	}
	return int32(rng.IntN(n))
}

func randEntry(rng *rand.Rand) Entry {
	return Entry{
		Term:  randUint64(rng),
		Index: randUint64(rng),
		Type:  EntryType(randEnum(rng, 3)),
		Data:  randBytes(rng, 300),
	}
}

// randMessage returns a message with every field exercised; depth bounds
// the nesting of Responses.
func randMessage(rng *rand.Rand, depth int) Message {
	m := Message{
		Type:       MessageType(randEnum(rng, 24)),
		To:         randUint64(rng),
		From:       randUint64(rng),
		Term:       randUint64(rng),
		LogTerm:    randUint64(rng),
		Index:      randUint64(rng),
		Commit:     randUint64(rng),
		Vote:       randUint64(rng),
		Reject:     rng.IntN(2) == 0,
		RejectHint: randUint64(rng),
		Context:    randBytes(rng, 40),
	}
	if n := rng.IntN(5); n > 0 {
		count := rng.IntN(70)
		if rng.IntN(10) == 0 {
			// Around the number of entries Unmarshal tracks on its stack.
			count = stackEntries - 2 + rng.IntN(5)
		}
		m.Entries = make([]Entry, count)
		for i := range m.Entries {
			m.Entries[i] = randEntry(rng)
		}
	}
	if rng.IntN(4) == 0 {
		m.Snapshot = &Snapshot{
			Data: randBytes(rng, 50),
			Metadata: SnapshotMetadata{
				Index:     randUint64(rng),
				Term:      randUint64(rng),
				ConfState: ConfState{Voters: []uint64{1, randUint64(rng)}, AutoLeave: rng.IntN(2) == 0},
			},
		}
	}
	if depth > 0 && rng.IntN(4) == 0 {
		m.Responses = make([]Message, 1+rng.IntN(3))
		for i := range m.Responses {
			m.Responses[i] = randMessage(rng, depth-1)
		}
	}
	return m
}

// appendUnknown appends an unknown field (number 15 to 2000, any wire type
// including a group) to b, as a peer running a newer schema might send.
func appendUnknown(rng *rand.Rand, b []byte) []byte {
	field := uint64(15 + rng.IntN(1986))
	putKey := func(b []byte, wt uint64) []byte { return appendUvarintForTest(b, field<<3|wt) }
	switch rng.IntN(5) {
	case 0:
		return appendUvarintForTest(putKey(b, 0), randUint64(rng))
	case 1:
		return append(putKey(b, 1), 1, 2, 3, 4, 5, 6, 7, 8)
	case 2:
		p := randBytes(rng, 20)
		return append(appendUvarintForTest(putKey(b, 2), uint64(len(p))), p...)
	case 3:
		b = putKey(b, 3)
		b = appendUvarintForTest(b, 0x08) // field 1, a varint, inside the group
		b = appendUvarintForTest(b, randUint64(rng))
		return putKey(b, 4)
	default:
		return append(putKey(b, 5), 1, 2, 3, 4)
	}
}

func appendUvarintForTest(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// encodeWithUnknowns encodes m by hand with unknown fields between the
// known ones, at the top level and inside entries.
func encodeWithUnknowns(t testing.TB, rng *rand.Rand, m *Message) []byte {
	head := *m
	head.Entries = nil
	b, err := head.Marshal()
	require.NoError(t, err)
	b = appendUnknown(rng, b)
	for i := range m.Entries {
		e, err := m.Entries[i].Marshal()
		require.NoError(t, err)
		if rng.IntN(2) == 0 {
			e = appendUnknown(rng, e)
		}
		b = appendUvarintForTest(append(b, tagMsgEntries), uint64(len(e)))
		b = append(b, e...)
	}
	return appendUnknown(rng, b)
}

// checkDecodeAgainstRef decodes data with both codecs into fresh messages,
// then decodes it again into the results (a merge), and requires the same
// outcome each time; it also decodes data as an Entry with both.
// refResponseDepth is how deeply messages nest in m's Responses: 0 without
// Responses.
func refResponseDepth(m *raftpbref.Message) int {
	d := 0
	for i := range m.Responses {
		d = max(d, 1+refResponseDepth(&m.Responses[i]))
	}
	return d
}

// refResponseCount is how many messages m's Responses hold, at every
// depth.
func refResponseCount(m *raftpbref.Message) int {
	n := len(m.Responses)
	for i := range m.Responses {
		n += refResponseCount(&m.Responses[i])
	}
	return n
}

func checkDecodeAgainstRef(t *testing.T, data []byte) {
	t.Helper()
	var ref raftpbref.Message
	refErr := ref.Unmarshal(data)
	input := bytes.Clone(data)
	var got Message
	gotErr := got.Unmarshal(input)
	checkNoAlias(t, &got, input)
	if refErr == nil && errors.Is(gotErr, errResponseDepth) {
		// The generated decoder has no bound on nesting.
		require.Greater(t, refResponseDepth(&ref), MaxResponseDepth, "refused as nested too deeply")
		return
	}
	if refErr == nil && errors.Is(gotErr, errResponseCount) {
		// Nor on their number.
		require.Greater(t, refResponseCount(&ref), responseLimit(len(data)), "refused for too many responses")
		return
	}
	require.Equal(t, refErr != nil, gotErr != nil, "reference error %v, hand-written error %v", refErr, gotErr)
	if refErr != nil {
		return
	}
	require.Equal(t, fromRef(t, &ref), &got)

	// Decoding again into the decoded message merges, in both codecs.
	require.NoError(t, ref.Unmarshal(data))
	require.NoError(t, got.Unmarshal(input))
	require.Equal(t, fromRef(t, &ref), &got, "merging a second decode")
	checkNoAlias(t, &got, input)

	// Spare capacity holding old entries is reused without leaking them.
	stale := make([]Entry, 3*stackEntries+10)
	for i := range stale {
		stale[i] = Entry{Term: 99, Index: 99, Type: 99, Data: []byte("stale")}
	}
	reused := Message{Entries: stale[:0]}
	require.NoError(t, reused.Unmarshal(input))
	var fresh raftpbref.Message
	require.NoError(t, fresh.Unmarshal(data))
	if want := fromRef(t, &fresh).Entries; len(want) > 0 {
		require.Equal(t, want, reused.Entries, "decoding into spare capacity")
	} else {
		require.Empty(t, reused.Entries)
	}

	var refEntry raftpbref.Entry
	refErr = refEntry.Unmarshal(data)
	var gotEntry Entry
	gotErr = gotEntry.Unmarshal(input)
	require.Equal(t, refErr != nil, gotErr != nil, "Entry: reference error %v, hand-written error %v", refErr, gotErr)
	if refErr == nil {
		var want Entry
		convert(t, reflect.ValueOf(&want).Elem(), reflect.ValueOf(&refEntry).Elem())
		require.Equal(t, want, gotEntry)

		// Merging into an entry that has fields already.
		refEntry = raftpbref.Entry{Term: 7, Index: 8, Type: 1, Data: []byte("old")}
		gotEntry = Entry{Term: 7, Index: 8, Type: 1, Data: []byte("old")}
		require.NoError(t, refEntry.Unmarshal(data))
		require.NoError(t, gotEntry.Unmarshal(input))
		convert(t, reflect.ValueOf(&want).Elem(), reflect.ValueOf(&refEntry).Elem())
		require.Equal(t, want, gotEntry, "merging into an entry")
	}
}

// checkNoAlias requires that nothing in m shares memory with the input it
// was decoded from, and that each entry's Data ends at its capacity: the
// caller may overwrite the input, and appending to one entry's Data must
// not overwrite another's.
func checkNoAlias(t *testing.T, m *Message, input []byte) {
	t.Helper()
	before := fromRefRoundTrip(t, m)
	for i := range input {
		input[i] ^= 0xff
	}
	require.Equal(t, before, fromRefRoundTrip(t, m), "the decoded message changed when its input was overwritten")
	for i := range input {
		input[i] ^= 0xff
	}
	for i := range m.Entries {
		require.Equal(t, len(m.Entries[i].Data), cap(m.Entries[i].Data), "entry %d: Data's capacity runs past its payload", i)
	}
}

// fromRefRoundTrip returns a deep copy of m.
func fromRefRoundTrip(t *testing.T, m *Message) *Message {
	return fromRef(t, toRef(t, m))
}

func TestCodecMatchesGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := 0; i < 150; i++ {
		m := randMessage(rng, 2)
		ref := toRef(t, &m)

		want, err := ref.Marshal()
		require.NoError(t, err)
		got, err := m.Marshal()
		require.NoError(t, err)
		require.Equal(t, want, got, "Marshal of message %d", i)
		require.Equal(t, ref.Size(), m.Size())

		buf := make([]byte, len(want)+7)
		n, err := m.MarshalTo(buf)
		require.NoError(t, err)
		require.Equal(t, want, buf[:n], "MarshalTo")
		n, err = m.MarshalToSizedBuffer(buf)
		require.NoError(t, err)
		require.Equal(t, want, buf[len(buf)-n:], "MarshalToSizedBuffer")
		for k := range m.Entries {
			wantEntry, err := ref.Entries[k].Marshal()
			require.NoError(t, err)
			gotEntry, err := m.Entries[k].Marshal()
			require.NoError(t, err)
			require.Equal(t, wantEntry, gotEntry, "Entry.Marshal")
		}

		checkDecodeAgainstRef(t, want)
		checkDecodeAgainstRef(t, encodeWithUnknowns(t, rng, &m))
		// Every prefix of an encoding: truncated input must be rejected the
		// same way (a cut at a field boundary is a valid shorter message).
		if i%15 == 0 {
			for cut := 0; cut < len(want); cut += 1 + len(want)/50 {
				checkDecodeAgainstRef(t, want[:cut])
			}
		}
	}
}

// Unmarshal records a message's first fewEntries entries in a small array
// and moves to a larger one at the entry after them. Entries around that
// point, reached through a one-byte key, a key written in two bytes (field
// 7 as 0xba 0x00, which takes the general path), or after a scalar field
// between entries, decode as the generated decoder decodes them.
func TestUnmarshalAcrossTheEntryArrays(t *testing.T) {
	entry := func(i int) []byte {
		e := benchEntry(i%3*40, uint64(i+1))
		b, err := e.Marshal()
		require.NoError(t, err)
		return b
	}
	for _, n := range []int{fewEntries - 1, fewEntries, fewEntries + 1, fewEntries + 2, 3 * fewEntries, stackEntries, stackEntries + 1} {
		for _, form := range []string{"one-byte keys", "two-byte key at the boundary", "scalar between entries"} {
			b := []byte{tagMsgType, byte(MsgApp), tagMsgTo, 2}
			for i := 0; i < n; i++ {
				switch {
				case form == "two-byte key at the boundary" && (i == fewEntries-1 || i == fewEntries):
					b = append(b, 0xba, 0x00)
				case form == "scalar between entries" && (i == fewEntries || i == fewEntries+1):
					b = append(b, tagMsgCommit, byte(i), tagMsgEntries)
				default:
					b = append(b, tagMsgEntries)
				}
				e := entry(i)
				b = appendUvarintForTest(b, uint64(len(e)))
				b = append(b, e...)
			}
			t.Run(fmt.Sprintf("%d entries, %s", n, form), func(t *testing.T) {
				checkDecodeAgainstRef(t, b)
				var m Message
				require.NoError(t, m.Unmarshal(b))
				require.Len(t, m.Entries, n)
			})
		}
	}
}

// nonCanonicalInputs are valid encodings no encoder writes, where a decoder
// could easily part ways with the generated one.
var nonCanonicalInputs = []struct {
	name string
	data []byte
}{
	{"reject encoded as 2", []byte{0x50, 0x02}},
	{"reject encoded as 2^32", []byte{0x50, 0x80, 0x80, 0x80, 0x80, 0x10}},
	{"type beyond int32", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0x7f}},
	{"ten-byte varint with bits past 64", []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
	{"field number past int32 aliasing field 2", []byte{0x90, 0x80, 0x80, 0x80, 0x80, 0x01, 0x05}},
	{"scalar given twice", []byte{0x10, 0x01, 0x10, 0x02}},
	{"entry data given twice", []byte{0x3a, 0x08, 0x22, 0x02, 'a', 'b', 0x22, 0x02, 'c', 'd'}},
	{"entry fields out of order", []byte{0x3a, 0x09, 0x22, 0x01, 'x', 0x18, 0x05, 0x10, 0x02, 0x08, 0x01}},
	{"entry with empty data", []byte{0x3a, 0x08, 0x08, 0x00, 0x10, 0x01, 0x18, 0x01, 0x22, 0x00}},
	{"entry data then unknown field", []byte{0x3a, 0x0b, 0x08, 0x00, 0x10, 0x01, 0x18, 0x01, 0x22, 0x01, 'x', 0x78, 0x01}},
	{"entry term given again after data", []byte{0x3a, 0x0b, 0x08, 0x00, 0x10, 0x01, 0x18, 0x01, 0x22, 0x01, 'x', 0x10, 0x09}},
	{"empty entry", []byte{0x3a, 0x00}},
	{"context given twice", []byte{0x62, 0x02, 'a', 'b', 0x62, 0x00}},
	{"snapshot given twice (merged)", []byte{0x4a, 0x02, 0x0a, 0x00, 0x4a, 0x04, 0x12, 0x02, 0x10, 0x07}},
	{"response with entries", []byte{0x72, 0x05, 0x3a, 0x03, 0x22, 0x01, 'r'}},
	{"entries split by other fields", []byte{0x3a, 0x02, 0x18, 0x01, 0x40, 0x03, 0x3a, 0x02, 0x18, 0x02}},
}

func TestDecodeNonCanonicalLikeGenerated(t *testing.T) {
	for _, tt := range nonCanonicalInputs {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			require.NoError(t, m.Unmarshal(tt.data))
			checkDecodeAgainstRef(t, tt.data)
		})
	}
}

// entryOfSize returns an entry whose encoding takes exactly size bytes
// (at least 8), its payload filling what its fields leave.
func entryOfSize(t *testing.T, size int) Entry {
	t.Helper()
	for n := size - 8; n >= 0; n-- {
		e := Entry{Term: 1, Index: 1, Data: bytes.Repeat([]byte{0xab}, n)}
		if e.Size() == size {
			return e
		}
	}
	t.Fatalf("no entry of size %d", size)
	return Entry{}
}

// manyEntries returns n entries of small, distinct payloads, now and then
// an entry without a payload or with an empty one.
func manyEntries(n int) []Entry {
	ents := make([]Entry, n)
	for i := range ents {
		ents[i] = Entry{Term: 3, Index: uint64(1000 + i), Data: []byte{byte(i), byte(i >> 8)}}
		switch i % 7 {
		case 3:
			ents[i].Data = nil
		case 5:
			ents[i].Data = []byte{}
		}
	}
	return ents
}

// The codec's fast paths end at the edges of varint lengths (one, two and
// more bytes), at an entry without or with an empty payload, and at the
// number of entries Unmarshal tracks on its stack; on every side of each
// edge both codecs must agree.
func TestCodecFastPathBoundaries(t *testing.T) {
	const max = ^uint64(0)
	var cases []struct {
		name string
		m    Message
	}
	add := func(name string, m Message) {
		cases = append(cases, struct {
			name string
			m    Message
		}{name, m})
	}
	for _, v := range []uint64{0, 1, 127, 128, 255, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<35 - 1, 1 << 35, 1<<63 - 1, 1 << 63, max} {
		add(fmt.Sprintf("scalars %d", v), Message{Type: MsgApp, To: v, From: v, Term: v, LogTerm: v, Index: v,
			Commit: v, RejectHint: v, Vote: v, Reject: v&1 == 1})
		add(fmt.Sprintf("entry term and index %d", v), Message{Type: MsgApp,
			Entries: []Entry{{Term: v, Index: v, Data: []byte("x")}, {Term: v, Index: v}}})
	}
	// 2048 and 2053 encode as 0x80 0x10 and 0x85 0x10: a second byte that
	// looks like the Term key.
	for _, typ := range []int32{0, 2, 127, 128, 2048, 2053, -1} {
		add(fmt.Sprintf("types %d", typ), Message{Type: MessageType(typ),
			Entries: []Entry{{Type: EntryType(typ), Term: 1, Index: 2, Data: []byte("y")}}})
	}
	for _, size := range []int{9, 127, 128, 129, 16383, 16384, 16385} {
		add(fmt.Sprintf("entry of %d bytes", size), Message{Type: MsgApp, Entries: []Entry{entryOfSize(t, size)}})
	}
	for _, n := range []int{127, 128, 129, 16383, 16384} {
		add(fmt.Sprintf("payload of %d bytes", n), Message{Type: MsgApp,
			Entries: []Entry{{Term: 1, Index: 1, Data: bytes.Repeat([]byte{7}, n)}}})
	}
	// Encoded as 08 80 10 10 18 18 22 22 21 ...: read with a one-byte Type,
	// the same bytes would make a well-formed entry of other values.
	add("two-byte type shifting every field", Message{Type: MsgApp, Entries: []Entry{
		{Type: 2048, Term: 24, Index: 34, Data: bytes.Repeat([]byte{1}, 33)}}})
	add("two-byte entry lengths followed by more entries", Message{Type: MsgApp, Entries: append(
		[]Entry{entryOfSize(t, 128), entryOfSize(t, 200), entryOfSize(t, 16383)}, manyEntries(200)...)})
	add("entries without and with empty payloads", Message{Type: MsgApp, Entries: []Entry{
		{Term: 1, Index: 1}, {Term: 1, Index: 2, Data: []byte{}}, {Term: 1, Index: 3, Data: []byte("z")},
		{Term: 1, Index: 4, Data: []byte{}}, {Term: 1, Index: 5}}})
	add("only empty payloads", Message{Type: MsgApp, Entries: []Entry{{Data: []byte{}}, {Data: []byte{}}}})
	add("zero entry", Message{Type: MsgApp, Entries: []Entry{{}}})
	for _, n := range []int{stackEntries - 1, stackEntries, stackEntries + 1, 3 * stackEntries} {
		add(fmt.Sprintf("%d entries", n), Message{Type: MsgApp, Entries: manyEntries(n)})
	}
	add("entries and responses", Message{Type: MsgStorageAppend, Entries: manyEntries(3),
		Responses: []Message{{Type: MsgAppResp, Entries: manyEntries(stackEntries + 1)}, {Type: MsgApp, Entries: manyEntries(2)}}})

	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			want, err := toRef(t, &tt.m).Marshal()
			require.NoError(t, err)
			got, err := tt.m.Marshal()
			require.NoError(t, err)
			require.Equal(t, want, got, "Marshal")
			require.Equal(t, len(want), tt.m.Size())
			buf := make([]byte, len(want))
			n, err := tt.m.MarshalTo(buf)
			require.NoError(t, err)
			require.Equal(t, want, buf[:n], "MarshalTo")

			var back Message
			require.NoError(t, back.Unmarshal(want))
			require.Equal(t, fromRefRoundTrip(t, &tt.m), &back, "Unmarshal")
			checkDecodeAgainstRef(t, want)
		})
	}
}

// fastPathEdgeInputs are where the decoder's fast paths must hand over to
// the general one: keys and lengths written in more bytes than needed,
// which no encoder writes, and lengths running past the input.
var fastPathEdgeInputs = []struct {
	name string
	data []byte
}{
	{"first entry under a two-byte key", []byte{0x08, 0x03, 0xba, 0x00, 0x02, 0x18, 0x05, 0x3a, 0x02, 0x18, 0x06}},
	{"entry under a two-byte key after entries", []byte{0x3a, 0x02, 0x18, 0x05, 0xba, 0x00, 0x02, 0x18, 0x06}},
	{"entry last, its length the last byte but one", []byte{0x08, 0x03, 0x3a, 0x02, 0x18, 0x05}},
	{"entry length in two bytes", []byte{0x3a, 0x82, 0x00, 0x18, 0x05}},
	{"entry term in two bytes", []byte{0x3a, 0x07, 0x08, 0x00, 0x10, 0x81, 0x00, 0x18, 0x05}},
	{"entry data length in three bytes", []byte{0x3a, 0x0a, 0x08, 0x00, 0x10, 0x01, 0x18, 0x05, 0x22, 0x81, 0x80, 0x00, 'q'}},
	{"scalar in two bytes", []byte{0x10, 0x85, 0x00, 0x3a, 0x02, 0x18, 0x05}},
	{"one-byte key of a varint field with the bytes wire type", []byte{0x12, 0x01, 0x00}},
	{"entry length past the end", []byte{0x3a, 0x05, 0x18, 0x01}},
	{"entry two-byte length past the end", []byte{0x3a, 0x80, 0x01, 0x18, 0x01}},
	{"entry data length past the entry", []byte{0x3a, 0x08, 0x08, 0x00, 0x10, 0x01, 0x18, 0x05, 0x22, 0x05, 0x3a, 0x00}},
}

func TestDecodeFastPathEdgesLikeGenerated(t *testing.T) {
	for _, tt := range fastPathEdgeInputs {
		t.Run(tt.name, func(t *testing.T) {
			checkDecodeAgainstRef(t, tt.data)
		})
	}
}

// A payload a caller appends to must not spill into the next entry's.
func TestUnmarshalEntryDataAppendsDoNotClobber(t *testing.T) {
	src := Message{Type: MsgApp, Entries: []Entry{
		{Index: 1, Data: []byte("first")},
		{Index: 2, Data: []byte("second")},
	}}
	data, err := src.Marshal()
	require.NoError(t, err)
	var m Message
	require.NoError(t, m.Unmarshal(data))
	_ = append(m.Entries[0].Data, "XXXXXXXX"...)
	require.Equal(t, "second", string(m.Entries[1].Data))
	clear(data)
	require.Equal(t, "first", string(m.Entries[0].Data), "the input was reused by the caller")
}

// Decoding a MsgApp makes a fixed number of allocations however many
// entries it carries: the Entries slice and one buffer for all payloads.
func TestUnmarshalMessageAllocations(t *testing.T) {
	for _, n := range []int{1, 16, 64, stackEntries + 1, 300} {
		src := Message{Type: MsgApp, Entries: make([]Entry, n)}
		for i := range src.Entries {
			src.Entries[i] = benchEntry(128, uint64(i+1))
		}
		data, err := src.Marshal()
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(20, func() {
			var m Message
			if err := m.Unmarshal(data); err != nil {
				t.Fatal(err)
			}
		})
		require.Equal(t, 2.0, allocs, "%d entries", n)
	}
}

// maxDecodeAlloc bounds what decoding may allocate for an input of n bytes:
// proportional to the input (see maxDecodeRatio), never to a length
// prefix's claim. The slack covers MaxResponses empty responses and
// heapAllocatedBytes counting small objects a span at a time.
func maxDecodeAlloc(n int) uint64 { return uint64(maxDecodeRatio*n) + 1<<20 }

// heapAllocatedBytes returns the bytes allocated on the heap so far. Unlike
// runtime.ReadMemStats it does not stop the world, so a fuzz target can
// call it on every input; it counts large objects at once and small ones
// when their span is refilled, close enough to catch an allocation sized
// by a length prefix.
func heapAllocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// FuzzCodecMatchesGenerated decodes arbitrary bytes with the hand-written
// and the generated codec: both accept or both reject, what they accept
// decodes to the same value and re-encodes to the same bytes, nothing
// decoded aliases the input, and the hand-written decoder allocates no
// more than maxDecodeAlloc, whatever the length prefixes claim.
func FuzzCodecMatchesGenerated(f *testing.F) {
	for _, seed := range wireVectorSeeds(f) {
		f.Add(seed)
	}
	for _, seed := range malformedSeeds {
		f.Add(seed.data)
	}
	for _, seed := range nonCanonicalInputs {
		f.Add(seed.data)
	}
	for _, seed := range fastPathEdgeInputs {
		f.Add(seed.data)
	}
	for _, seed := range hugeLengthInputs {
		f.Add(seed)
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < 8; i++ {
		m := randMessage(rng, 1)
		f.Add(encodeWithUnknowns(f, rng, &m))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeAgainstRef(t, data)

		var m Message
		if m.Unmarshal(data) == nil {
			want, err := toRef(t, &m).Marshal()
			require.NoError(t, err)
			got, err := m.Marshal()
			require.NoError(t, err)
			require.Equal(t, want, got, "re-encoding")
		}

		before := heapAllocatedBytes()
		var fresh Message
		_ = fresh.Unmarshal(data)
		require.LessOrEqual(t, heapAllocatedBytes()-before, maxDecodeAlloc(len(data)),
			"decoding %d bytes", len(data))
	})
}

// hugeLengthInputs carry length prefixes that claim far more than the
// input holds.
var hugeLengthInputs = [][]byte{
	{0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f},                               // entry of 4 GiB
	{0x3a, 0x06, 0x22, 0xff, 0xff, 0xff, 0xff, 0x0f},                   // data of 4 GiB inside an entry
	{0x62, 0x80, 0x80, 0x80, 0x80, 0x01},                               // context of 256 MiB
	{0x72, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},       // response of 2^63 bytes
	{0x62, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // negative context length
}

// nestedResponses is a message nested depth levels deep in Responses, the
// innermost of type MsgHeartbeat: each level is a key and a length.
func nestedResponses(depth int) []byte {
	inner := []byte{0x08, byte(MsgHeartbeat)}
	// Level k's key and length, from the innermost out.
	keys := make([][]byte, depth)
	n := len(inner)
	for k := range keys {
		keys[k] = binary.AppendUvarint([]byte{0x72}, uint64(n))
		n += len(keys[k])
	}
	b := make([]byte, 0, n)
	for k := depth - 1; k >= 0; k-- {
		b = append(b, keys[k]...)
	}
	return append(b, inner...)
}

// Messages nest in Responses up to MaxResponseDepth levels; deeper is an
// error, found before recursing further, so that a crafted input cannot
// exhaust the stack (a few megabytes of such nesting kill the process
// with an unbounded decoder).
func TestUnmarshalResponseDepth(t *testing.T) {
	var m Message
	require.NoError(t, m.Unmarshal(nestedResponses(MaxResponseDepth)))
	inner := &m
	for range MaxResponseDepth {
		require.Len(t, inner.Responses, 1)
		inner = &inner.Responses[0]
	}
	require.Equal(t, MsgHeartbeat, inner.Type)

	for _, depth := range []int{MaxResponseDepth + 1, 100_000} {
		data := nestedResponses(depth)
		before := heapAllocatedBytes()
		var deep Message
		require.ErrorIs(t, deep.Unmarshal(data), errResponseDepth, "depth %d", depth)
		require.LessOrEqual(t, heapAllocatedBytes()-before, uint64(64<<10), "depth %d: stopped early", depth)
	}
	// The generated decoder takes it, to any depth.
	var ref raftpbref.Message
	require.NoError(t, ref.Unmarshal(nestedResponses(MaxResponseDepth+1)))
	checkDecodeAgainstRef(t, nestedResponses(MaxResponseDepth+1))
}

// Unmarshal decodes at most MaxResponses messages into Responses (or one
// per responseBytes of input, if more), at every depth together; it
// refuses an input with more before decoding the one past the bound, so
// that a crafted input of empty responses (two bytes each, a couple of
// hundred bytes of Message decoded) costs little.
func TestUnmarshalResponseCount(t *testing.T) {
	flat := func(n int) []byte { return bytes.Repeat([]byte{tagMsgResponses, 0x00}, n) }
	// n responses, each but the innermost holding the next and one empty
	// response more.
	nested := func(levels int) []byte {
		b := []byte{}
		for range levels {
			b = append(appendUvarintForTest([]byte{tagMsgResponses}, uint64(len(b))), b...)
			b = append(b, tagMsgResponses, 0x00)
		}
		return b
	}
	var m Message
	require.NoError(t, m.Unmarshal(flat(MaxResponses)))
	require.Len(t, m.Responses, MaxResponses)
	for _, data := range [][]byte{flat(MaxResponses + 1), flat(1 << 19)} {
		before := heapAllocatedBytes()
		var m Message
		require.ErrorIs(t, m.Unmarshal(data), errResponseCount, "%d bytes", len(data))
		require.LessOrEqual(t, heapAllocatedBytes()-before, uint64(24*len(data)+1<<20), "%d bytes: stopped early", len(data))
	}
	checkDecodeAgainstRef(t, flat(MaxResponses+1))
	// Counted at every depth: MaxResponseDepth levels of two responses
	// each are within the bound, but not with the count reaching it.
	require.NoError(t, new(Message).Unmarshal(nested(MaxResponseDepth)))
	deep := append(nested(MaxResponseDepth), flat(MaxResponses-2*MaxResponseDepth+1)...)
	require.ErrorIs(t, new(Message).Unmarshal(deep), errResponseCount)
	checkDecodeAgainstRef(t, deep)
	require.NoError(t, new(Message).Unmarshal(deep[:len(deep)-2]))
}

// Length prefixes that claim more than the input holds are rejected before
// anything is allocated for them.
func TestUnmarshalHugeLengthPrefix(t *testing.T) {
	for _, data := range hugeLengthInputs {
		before := heapAllocatedBytes()
		var m Message
		require.Error(t, m.Unmarshal(data))
		require.LessOrEqual(t, heapAllocatedBytes()-before, maxDecodeAlloc(len(data)), "%x", data)
	}
}
