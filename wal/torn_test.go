package wal_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// frameOf returns an intact record of type typ with payload p, as the log
// lays it out.
func frameOf(typ byte, p []byte) []byte {
	b := make([]byte, (8+1+len(p)+7)&^7)
	binary.LittleEndian.PutUint32(b, uint32(1+len(p)))
	b[8] = typ
	copy(b[9:], p)
	tab := crc32.MakeTable(crc32.Castagnoli)
	binary.LittleEndian.PutUint32(b[4:], crc32.Update(crc32.Checksum(b[:4], tab), tab, b[8:9+len(p)]))
	return b
}

// embeddingFrames is entry data holding an intact hard-state record at
// every shift modulo 8, so that one of them lies on a record boundary
// wherever the entry is written, followed by a few sectors.
func embeddingFrames() []byte {
	var data []byte
	for i := range 8 {
		data = append(append(data, bytes.Repeat([]byte{'p'}, i+1)...), frameOf(3, []byte{8, 1})...)
	}
	return append(data, bytes.Repeat([]byte{'q'}, 1500)...)
}

// TestTornEntryEmbeddingAFrame: the data of an entry is the application's
// and may hold what looks like an intact record. A crash that tears the
// write of such an entry is an ordinary torn tail, not corruption: Open
// cuts it off and serves the entries before it, for one log and for a
// MultiLog.
func TestTornEntryEmbeddingAFrame(t *testing.T) {
	data := embeddingFrames()
	for seed := range uint64(50) {
		fs := crashfs.New()
		s, err := powerOpen(fs)
		require.NoError(t, err)
		require.NoError(t, s.Save(pb.HardState{Term: 1, Vote: 1}, []pb.Entry{{Term: 1, Index: 1}}, pb.Snapshot{}))
		fs.CutPowerAfter(1) // the write happens, its sync does not
		require.Error(t, s.Save(pb.HardState{}, []pb.Entry{{Term: 1, Index: 2, Data: data}}, pb.Snapshot{}))
		fs.Crash(crashfs.TearWrites, seed)
		s, err = powerOpen(fs)
		require.NoError(t, err, "seed %d", seed)
		last, _ := s.LastIndex()
		require.Contains(t, []uint64{1, 2}, last, "seed %d", seed)
		require.NoError(t, s.Close())

		fs = crashfs.New()
		ml, err := multiPowerOpen(fs)
		require.NoError(t, err)
		save := func(e pb.Entry) error {
			return ml.Save([]wal.GroupUpdate{{GroupID: 3, HardState: pb.HardState{Term: 1, Vote: 1}, Entries: []pb.Entry{e}}})
		}
		require.NoError(t, save(pb.Entry{Term: 1, Index: 1}))
		fs.CutPowerAfter(1)
		require.Error(t, save(pb.Entry{Term: 1, Index: 2, Data: data}))
		fs.Crash(crashfs.TearWrites, seed)
		ml, err = multiPowerOpen(fs)
		require.NoError(t, err, "multi-group log, seed %d", seed)
		require.NoError(t, ml.Close())
	}
}
