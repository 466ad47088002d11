package multiraftpb

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"

	"github.com/raftcore/raft/multiraft/multiraftpb/internal/multiraftpbref"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/stretchr/testify/require"
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

// maxDecodeRatio bounds what Batch.Unmarshal allocates per byte of input,
// whatever the input (the smallest GroupMessage it accepts, eight bytes,
// is 168 bytes decoded), as raftpb bounds Message.Unmarshal.
const maxDecodeRatio = 32

// maxDecodeAlloc is what decoding n bytes may allocate: maxDecodeRatio per
// byte, and slack for what a nested message may allocate whatever its size
// (raftpb.MaxResponses empty responses).
func maxDecodeAlloc(n int) uint64 { return uint64(maxDecodeRatio*n) + 1<<20 }

// batchShapes are inputs of about n bytes made of one small item
// repeated: the worst ratios of decoded size to input size.
func batchShapes(n int) map[string][]byte {
	return map[string][]byte{
		"empty group messages":            bytes.Repeat([]byte{0x1a, 0x00}, n/2),
		"group messages without message":  bytes.Repeat([]byte{0x1a, 0x02, 0x08, 0x01}, n/4),
		"smallest group messages":         bytes.Repeat([]byte{0x1a, 0x06, 0x08, 0x01, 0x12, 0x02, 0x08, 0x03}, n/8),
		"group messages of a bad message": bytes.Repeat([]byte{0x1a, 0x05, 0x08, 0x01, 0x12, 0x01, 0x08}, n/7),
		"empty heartbeats":                bytes.Repeat([]byte{0x22, 0x00}, n/2),
		"empty heartbeat responses":       bytes.Repeat([]byte{0x2a, 0x00}, n/2),
		"unpacked wakes":                  bytes.Repeat([]byte{0x38, 0x01}, n/2),
		"packed wakes":                    append([]byte{0x3a, 0xfc, 0xff, 0x3f}, bytes.Repeat([]byte{0x01}, n-4)...),
	}
}

// TestBatchUnmarshalAllocationBoundedByInput: whatever a peer sends,
// decoding it allocates at most maxDecodeRatio times its size (plus a
// constant), so that a frame the transport accepts cannot exhaust memory.
func TestBatchUnmarshalAllocationBoundedByInput(t *testing.T) {
	const n = 1 << 20
	for name, data := range batchShapes(n) {
		t.Run(name, func(t *testing.T) {
			var err error
			got := allocatedBytes(func() {
				var b Batch
				err = b.Unmarshal(data)
			})
			t.Logf("%d bytes allocated for %d bytes of input: x%.1f (%v)", got, len(data), float64(got)/float64(len(data)), err)
			if limit := maxDecodeAlloc(len(data)); got > limit {
				t.Fatalf("%d bytes allocated for %d bytes of input, more than %d", got, len(data), limit)
			}
		})
	}
}

// A GroupMessage without a group or a message is refused, before anything
// is allocated for the batch's items; with both it is decoded.
func TestBatchUnmarshalRefusesEmptyGroupMessage(t *testing.T) {
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"empty", []byte{0x1a, 0x00}},
		{"group zero", []byte{0x1a, 0x06, 0x08, 0x00, 0x12, 0x02, 0x08, 0x03}},
		{"no message", []byte{0x1a, 0x02, 0x08, 0x01}},
		{"empty message", []byte{0x1a, 0x04, 0x08, 0x01, 0x12, 0x00}},
		{"after a good one", []byte{0x1a, 0x06, 0x08, 0x01, 0x12, 0x02, 0x08, 0x03, 0x1a, 0x00}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b Batch
			require.ErrorIs(t, b.Unmarshal(tt.data), ErrEmptyGroupMessage)
			require.Nil(t, b.Messages, "nothing decoded")
			var ref multiraftpbref.Batch
			require.NoError(t, ref.Unmarshal(tt.data), "the generated decoder takes it")
		})
	}
	var b Batch
	require.NoError(t, b.Unmarshal([]byte{0x1a, 0x08, 0x12, 0x02, 0x08, 0x03, 0x08, 0x00, 0x08, 0x07}))
	require.Equal(t, []GroupMessage{{GroupID: 7, Message: pb.Message{Type: pb.MsgApp}}}, b.Messages, "the last group ID counts")
}

// randBatch returns a batch with a few items of every kind.
func randBatch(rng *rand.Rand) Batch {
	b := Batch{From: rng.Uint64N(5), To: rng.Uint64N(5), NodeHeartbeat: rng.IntN(2) == 0}
	for range rng.IntN(4) {
		m := pb.Message{Type: pb.MessageType(rng.IntN(20)), From: rng.Uint64N(5), To: rng.Uint64N(5), Term: rng.Uint64N(9), Index: rng.Uint64()}
		for range rng.IntN(3) {
			m.Entries = append(m.Entries, pb.Entry{Term: rng.Uint64N(9), Index: rng.Uint64N(99), Data: []byte("data")[:rng.IntN(5)]})
		}
		b.Messages = append(b.Messages, GroupMessage{GroupID: 1 + rng.Uint64N(9), Message: m})
	}
	for range rng.IntN(4) {
		b.Heartbeats = append(b.Heartbeats, Heartbeat{GroupID: rng.Uint64N(9), Term: rng.Uint64N(9), Commit: rng.Uint64(), Quiesce: rng.IntN(2) == 0})
	}
	for range rng.IntN(4) {
		b.HeartbeatResponses = append(b.HeartbeatResponses, HeartbeatResponse{GroupID: rng.Uint64N(9), Term: rng.Uint64N(9)})
	}
	for range rng.IntN(4) {
		b.WakeGroups = append(b.WakeGroups, rng.Uint64N(1<<20))
	}
	return b
}

// checkBatchDecode decodes data with Unmarshal and with the generated
// decoder (internal/multiraftpbref, generated from multiraft.proto without
// the line that turns it off), into fresh batches and again into the
// results (a merge): both accept or both refuse, and what they accept is
// the same. The accepted differences: Unmarshal refuses an empty
// GroupMessage; raftpb's bounds on a message's Responses; and a packed
// WakeGroups whose last varint runs past the field, which the generated
// decoder finishes reading from the bytes after it.
func checkBatchDecode(t *testing.T, data []byte) {
	t.Helper()
	var got Batch
	var ref multiraftpbref.Batch
	gotErr := got.Unmarshal(data)
	refErr := ref.Unmarshal(data)
	if refErr == nil && gotErr != nil {
		switch want := fromRef(&ref); {
		case errors.Is(gotErr, ErrEmptyGroupMessage):
			require.True(t, hasEmptyGroupMessage(&want), "refused as empty: %v", want.Messages)
			return
		case hasManyResponses(&want), packedRunsOver(data):
			return
		}
	}
	require.Equal(t, refErr != nil, gotErr != nil, "reference error %v, hand-written error %v", refErr, gotErr)
	if refErr != nil {
		return
	}
	require.Equal(t, fromRef(&ref), got)
	require.NoError(t, got.Unmarshal(data))
	require.NoError(t, ref.Unmarshal(data))
	require.Equal(t, fromRef(&ref), got, "merging a second decode")
}

// fromRef converts a batch decoded by the reference decoder.
func fromRef(r *multiraftpbref.Batch) Batch {
	b := Batch{From: r.From, To: r.To, NodeHeartbeat: r.NodeHeartbeat, WakeGroups: r.WakeGroups}
	for _, m := range r.Messages {
		b.Messages = append(b.Messages, GroupMessage{GroupID: m.GroupID, Message: m.Message})
	}
	for _, h := range r.Heartbeats {
		b.Heartbeats = append(b.Heartbeats, Heartbeat(h))
	}
	for _, h := range r.HeartbeatResponses {
		b.HeartbeatResponses = append(b.HeartbeatResponses, HeartbeatResponse(h))
	}
	return b
}

// packedRunsOver reports whether a packed WakeGroups field of the batch
// encoding data ends in the middle of a varint.
func packedRunsOver(data []byte) bool {
	for i := 0; i < len(data); {
		num, wireType, next, err := fieldKey(data, i)
		if err != nil {
			return false
		}
		if wireType != 2 {
			n, err := skipMultiraft(data[i:])
			if err != nil || n <= 0 {
				return false
			}
			i += n
			continue
		}
		start, end, err := lengthDelimited(data, next)
		if err != nil {
			return false
		}
		if num == 7 && end > start && data[end-1] >= 0x80 {
			return true
		}
		i = end
	}
	return false
}

func hasEmptyGroupMessage(b *Batch) bool {
	for i := range b.Messages {
		if b.Messages[i].GroupID == 0 || reflect.DeepEqual(b.Messages[i].Message, pb.Message{}) {
			return true
		}
	}
	return false
}

// hasManyResponses reports whether a message of b has Responses nested
// deeper than raftpb.MaxResponseDepth, or more than raftpb.MaxResponses.
func hasManyResponses(b *Batch) bool {
	var count func(m *pb.Message, depth int) (n, deepest int)
	count = func(m *pb.Message, depth int) (n, deepest int) {
		n, deepest = len(m.Responses), depth
		for i := range m.Responses {
			k, d := count(&m.Responses[i], depth+1)
			n, deepest = n+k, max(deepest, d)
		}
		return n, deepest
	}
	for i := range b.Messages {
		if n, d := count(&b.Messages[i].Message, 0); n > pb.MaxResponses || d > pb.MaxResponseDepth {
			return true
		}
	}
	return false
}

func TestBatchUnmarshalMatchesGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := randBatch(rng)
		data, err := b.Marshal()
		require.NoError(t, err)
		checkBatchDecode(t, data)
		var got Batch
		require.NoError(t, got.Unmarshal(data))
		// Marshal writes nil and empty slices alike.
		if len(b.WakeGroups) == 0 {
			b.WakeGroups = nil
		}
		require.Equal(t, b, got)
	}
	for _, data := range batchShapes(64) {
		checkBatchDecode(t, data)
	}
}

// FuzzBatchUnmarshal: Unmarshal never panics, agrees with the generated
// decoder (see checkBatchDecode), and allocates at most maxDecodeAlloc.
func FuzzBatchUnmarshal(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 8 {
		b := randBatch(rng)
		data, err := b.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, data := range batchShapes(16) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBatchDecode(t, data)
		got := allocatedBytes(func() {
			var b Batch
			_ = b.Unmarshal(data)
		})
		require.LessOrEqual(t, got, maxDecodeAlloc(len(data)), "decoding %d bytes", len(data))
	})
}
