package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

func TestCommandRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    command
	}{
		{"put", command{ID: "1-x-1", Op: opPut, Key: "k", Value: []byte("v")}},
		{"key not UTF-8", command{ID: "1-x-2", Op: opPut, Key: "caf\xe9", Value: []byte("\xff\x00")}},
		{"empty value", command{ID: "1-x-3", Op: opPut, Key: "k", Value: []byte{}}},
		{"delete", command{ID: "1-x-4", Op: opDelete, Key: "a/b\x00c"}},
		{"long key", command{ID: "1-x-5", Op: opPut, Key: string(bytes.Repeat([]byte{0x80}, 300)), Value: bytes.Repeat([]byte{7}, 70000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := encodeCommand(tt.c)
			require.Equal(t, byte(commandFormatV1), data[0])
			got, err := decodeCommand(data)
			require.NoError(t, err)
			require.Equal(t, tt.c.ID, got.ID)
			require.Equal(t, tt.c.Op, got.Op)
			require.Equal(t, tt.c.Key, got.Key)
			require.Equal(t, string(tt.c.Value), string(got.Value))
		})
	}
}

func TestCommandDecodeRejectsMalformed(t *testing.T) {
	good := encodeCommand(command{ID: "i", Op: opPut, Key: "k", Value: []byte("v")})
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"format only", []byte{commandFormatV1}},
		{"unknown format", append([]byte{9}, good[1:]...)},
		{"unknown op", append([]byte{commandFormatV1, 3}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
		{"length past the end", []byte{commandFormatV1, byte(opPut), 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bad varint", []byte{commandFormatV1, byte(opPut), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"legacy not JSON", []byte("{op:put")},
		{"legacy unknown op", []byte(`{"id":"i","op":"swap","key":"k"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeCommand(tt.data)
			require.Error(t, err)
		})
	}
}

// Entries and snapshots written by earlier versions (JSON) still load.
func TestLegacyJSONFormats(t *testing.T) {
	sm := newStateMachine()
	require.NoError(t, sm.restore(pb.Snapshot{
		Data:     []byte(`{"data":{"a":"MQ==","b":"Mg=="},"peers":{"1":"127.0.0.1:7001","2":"127.0.0.1:7002"}}`),
		Metadata: pb.SnapshotMetadata{Index: 10, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1, 2}}},
	}))
	v, ok, applied := sm.get("a")
	require.True(t, ok)
	require.Equal(t, "1", string(v))
	require.Equal(t, uint64(10), applied)
	_, peers := sm.members()
	require.Equal(t, map[uint64]string{1: "127.0.0.1:7001", 2: "127.0.0.1:7002"}, peers)

	id, res, err := sm.apply(pb.Entry{Index: 11, Term: 2, Data: []byte(`{"id":"1-abc-7","op":"put","key":"a","value":"dXBkYXRlZA=="}`)})
	require.NoError(t, err)
	require.Equal(t, "1-abc-7", id)
	require.Equal(t, applyResult{index: 11, existed: true}, res)
	_, res, err = sm.apply(pb.Entry{Index: 12, Term: 2, Data: []byte(`{"id":"1-abc-8","op":"delete","key":"b"}`)})
	require.NoError(t, err)
	require.True(t, res.existed)
	_, res, err = sm.apply(pb.Entry{Index: 13, Term: 2, Data: encodeCommand(command{ID: "1-abc-9", Op: opPut, Key: "c\xff", Value: []byte("new")})})
	require.NoError(t, err)
	require.False(t, res.existed)

	// The next snapshot is in the new format and holds all of it.
	data, cs, index := sm.snapshot()
	require.Equal(t, byte(snapshotFormatV1), data[0])
	restored := newStateMachine()
	require.NoError(t, restored.restore(pb.Snapshot{Data: data, Metadata: pb.SnapshotMetadata{Index: index, ConfState: cs}}))
	for k, want := range map[string]string{"a": "updated", "c\xff": "new"} {
		v, ok, _ := restored.get(k)
		require.True(t, ok, k)
		require.Equal(t, want, string(v))
	}
	_, ok, _ = restored.get("b")
	require.False(t, ok)
	_, peers = restored.members()
	require.Len(t, peers, 2)
}

func TestSnapshotRoundTrip(t *testing.T) {
	data := map[string][]byte{"k\xe8": []byte("first"), "k\xe9": []byte("second"), "": {}, "z": {0, 0xff}}
	peers := map[uint64]string{3: "h3:1", 1: "h1:1"}
	b := encodeSnapshot(data, peers)
	require.Equal(t, b, encodeSnapshot(data, peers), "one state, one encoding")
	gotData, gotPeers, err := decodeSnapshot(b)
	require.NoError(t, err)
	require.Equal(t, data, gotData)
	require.Equal(t, peers, gotPeers)
	for n := range len(b) {
		_, _, err := decodeSnapshot(b[:n])
		require.Error(t, err, "truncated to %d bytes", n)
	}
	_, _, err = decodeSnapshot(append(b, 0))
	require.ErrorIs(t, err, errTrailingBytes)
	_, _, err = decodeSnapshot([]byte{2})
	require.Error(t, err)
}

// FuzzDecodeCommand: any entry data decodes or is refused, and a binary
// command that decodes encodes back to the same bytes.
func FuzzDecodeCommand(f *testing.F) {
	f.Add(encodeCommand(command{ID: "1-a-1", Op: opPut, Key: "caf\xe9", Value: []byte("v")}))
	f.Add(encodeCommand(command{ID: "1-a-2", Op: opDelete, Key: "k"}))
	f.Add([]byte(`{"id":"1","op":"put","key":"k","value":"dg=="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCommand(data)
		if err != nil || data[0] != commandFormatV1 {
			return
		}
		if got := encodeCommand(c); !bytes.Equal(got, data) {
			t.Fatalf("decoded %+v re-encodes as %x, not %x", c, got, data)
		}
	})
}

// FuzzDecodeSnapshot: any snapshot data decodes or is refused, and the
// state decoded encodes into a snapshot that decodes to as many keys.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(map[string][]byte{"a": []byte("1"), "b\xff": nil}, map[uint64]string{1: "h:1"}))
	f.Add([]byte(`{"data":{"a":"MQ=="},"peers":{"1":"h:1"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		data, peers, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		again, _, err := decodeSnapshot(encodeSnapshot(data, peers))
		if err != nil || len(again) != len(data) {
			t.Fatalf("re-encoding %x: %v, %d keys, want %d", b, err, len(again), len(data))
		}
	})
}
