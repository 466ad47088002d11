package raft

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The slog logger maps each method to its level and formats like fmt.
func TestSlogLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := NewSlogLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Debugf("d %d", 1)
	l.Info("i", 2)
	l.Warningf("w %s", "x")
	l.Error("e")
	require.PanicsWithValue(t, "p 3", func() { l.Panicf("p %d", 3) })
	out := buf.String()
	for _, want := range []string{"level=DEBUG msg=\"d 1\"", "level=INFO msg=i2", "level=WARN msg=\"w x\"", "level=ERROR msg=e", "level=ERROR msg=\"p 3\""} {
		require.Contains(t, out, want)
	}
	require.Equal(t, 5, strings.Count(out, "\n"))
}

// DiscardLogger writes nothing but still panics.
func TestDiscardLogger(t *testing.T) {
	DiscardLogger.Infof("nothing %d", 1)
	require.Panics(t, func() { DiscardLogger.Panic("still panics") })
}

// SetLogger changes the logger of nodes configured without one.
func TestSetLogger(t *testing.T) {
	var buf bytes.Buffer
	prev := getLogger()
	t.Cleanup(func() { SetLogger(prev) })
	SetLogger(NewSlogLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	cfg := testConfig(1, NewMemoryStorage())
	cfg.Logger = nil
	_, err := NewRawNode(cfg)
	require.NoError(t, err)
	require.Contains(t, buf.String(), "node 1 starting")
}

// The per-node random source makes election timeouts reproducible.
func TestElectionTimeoutSeeded(t *testing.T) {
	timeouts := func() []int {
		n := newTestNode(t, 1, []uint64{1, 2, 3})
		var out []int
		for i := 0; i < 20; i++ {
			n.r().becomeFollower(n.r().Term+1, None)
			out = append(out, n.r().randomizedElectionTimeout)
		}
		return out
	}
	require.Equal(t, timeouts(), timeouts())
	other := newTestNode(t, 2, []uint64{1, 2, 3}) // seeded with its ID too
	var out []int
	for i := 0; i < 20; i++ {
		other.r().becomeFollower(other.r().Term+1, None)
		out = append(out, other.r().randomizedElectionTimeout)
	}
	require.NotEqual(t, timeouts(), out, "nodes draw different timeouts")
}
