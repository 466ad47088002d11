package raft

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// lastIndexCounter is a MemoryStorage that counts LastIndex calls.
type lastIndexCounter struct {
	*MemoryStorage
	calls int
}

func (s *lastIndexCounter) LastIndex() (uint64, error) {
	s.calls++
	return s.MemoryStorage.LastIndex()
}

// Looking up the term of a stable entry does not ask Storage for its last
// index (a lock round trip on every append response the leader handles);
// lookups past the end still fail as before.
func TestRaftLogTermOfStableEntrySkipsLastIndex(t *testing.T) {
	ms := NewMemoryStorage()
	require.NoError(t, ms.Append(entsFrom(1, 1, 1, 2, 2, 2)))
	s := &lastIndexCounter{MemoryStorage: ms}
	l := newLog(s, DiscardLogger)
	s.calls = 0
	term, err := l.term(4)
	require.NoError(t, err)
	require.Equal(t, uint64(2), term)
	require.Zero(t, s.calls, "Storage.LastIndex calls for a stable entry's term")
	_, err = l.term(7)
	require.ErrorIs(t, err, ErrUnavailable)
}
