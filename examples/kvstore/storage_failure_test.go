package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft/wal/crashfs"
)

// syncBuffer is a log destination the test reads while the member writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A disk that fails under the WAL stops the member cleanly: one error
// line that says why, the request in flight answered, nothing served
// afterwards, no panic — and no write acknowledged that was not saved.
func TestStorageFailureStopsTheMember(t *testing.T) {
	for _, tt := range []struct {
		name string
		op   crashfs.Op
		err  error
	}{
		{"write fails with EIO", crashfs.OpWrite, syscall.EIO},
		{"sync fails with EIO", crashfs.OpSync, syscall.EIO},
		{"write fails with ENOSPC", crashfs.OpWrite, syscall.ENOSPC},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &testCluster{t: t, dir: t.TempDir(), peers: map[uint64]string{}, members: map[uint64]*member{}}
			c.reservePeer(1)
			cfg := c.config(1, false)
			var logs syncBuffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			fs := crashfs.New()
			cfg.walFS = fs
			m, err := startMember(cfg)
			require.NoError(t, err)
			c.members[1] = m
			t.Cleanup(func() { m.stop() })
			c.waitLeader()
			put(t, c.url(1, "/kv/before"), "saved")

			fs.InjectFault(tt.op, 1, tt.err)
			r := do(t, "PUT", c.url(1, "/kv/after"), "lost")
			require.Equal(t, 503, r.status, r.body)
			require.Equal(t, "member_failed", errorCode(t, r))
			select {
			case <-m.Failed():
			case <-time.After(5 * time.Second):
				t.Fatal("the member did not stop")
			}
			require.ErrorIs(t, m.Failure(), tt.err)
			require.Equal(t, 1, strings.Count(logs.String(), "member stopped:"), logs.String())
			require.NotContains(t, logs.String(), "panic")

			// Nothing more is served, at once.
			start := time.Now()
			r = do(t, "PUT", c.url(1, "/kv/later"), "x")
			require.Equal(t, "member_failed", errorCode(t, r))
			require.Less(t, time.Since(start), time.Second)
		})
	}
}
