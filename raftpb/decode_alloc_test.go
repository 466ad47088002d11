package raftpb

import (
	"bytes"
	"runtime"
	"testing"
)

// allocatedBytes returns the bytes f allocates on the heap, exactly:
// runtime.ReadMemStats flushes every cache before counting.
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// maxDecodeRatio bounds what Message.Unmarshal allocates per byte of
// input, whatever the input: a repeated field of the smallest encoding (an
// empty entry, two bytes, is a 48-byte Entry) decodes into one array of
// the count it needs, never regrown.
const maxDecodeRatio = 32

// decodeShapes are inputs of about n bytes made of one small item
// repeated: the worst ratios of decoded size to input size.
func decodeShapes(n int) map[string][]byte {
	// A snapshot whose ConfState holds n voters, unpacked (two bytes each).
	voters := bytes.Repeat([]byte{0x08, 0x01}, n/2)
	cs := append(appendUvarintForTest([]byte{0x0a}, uint64(len(voters))), voters...) // Metadata.ConfState
	md := append(appendUvarintForTest([]byte{0x12}, uint64(len(cs))), cs...)         // Snapshot.Metadata
	snap := append(appendUvarintForTest([]byte{tagMsgSnapshot}, uint64(len(md))), md...)
	return map[string][]byte{
		"empty entries":                bytes.Repeat([]byte{tagMsgEntries, 0x00}, n/2),
		"empty responses":              bytes.Repeat([]byte{tagMsgResponses, 0x00}, n/2),
		"responses of one empty entry": bytes.Repeat([]byte{tagMsgResponses, 0x02, tagMsgEntries, 0x00}, n/4),
		"unpacked voters":              snap,
	}
}

// TestUnmarshalAllocationBoundedByInput: whatever a peer sends, decoding
// it allocates at most maxDecodeRatio times its size (plus a constant), so
// that a frame the transport accepts cannot exhaust memory.
func TestUnmarshalAllocationBoundedByInput(t *testing.T) {
	const n = 1 << 20
	for name, data := range decodeShapes(n) {
		t.Run(name, func(t *testing.T) {
			got := allocatedBytes(func() {
				var m Message
				_ = m.Unmarshal(data)
			})
			t.Logf("%d bytes allocated for %d bytes of input: x%.1f", got, len(data), float64(got)/float64(len(data)))
			if limit := maxDecodeAlloc(len(data)); got > limit {
				t.Fatalf("%d bytes allocated for %d bytes of input, more than %d", got, len(data), limit)
			}
		})
	}
}
