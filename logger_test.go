package raft

import (
	"bytes"
	"errors"
	"log"
	"log/slog"
	"os"
	"os/exec"
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

// ResetDefaultLogger undoes SetLogger: nodes created afterwards use the
// package's default logger again.
func TestResetDefaultLogger(t *testing.T) {
	var buf bytes.Buffer
	t.Cleanup(ResetDefaultLogger)
	SetLogger(NewSlogLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	ResetDefaultLogger()
	require.Same(t, packageLogger, getLogger())
	cfg := testConfig(1, NewMemoryStorage())
	cfg.Logger = nil
	_, err := NewRawNode(cfg)
	require.NoError(t, err)
	require.Same(t, packageLogger, cfg.Logger)
	require.Empty(t, buf.String(), "the replaced logger gets nothing")
}

// DefaultLogger writes one labelled line per call through its *log.Logger,
// drops debug output until EnableDebug, adds timestamps on request, and
// panics from Panic and Panicf after logging.
func TestDefaultLogger(t *testing.T) {
	var buf bytes.Buffer
	l := &DefaultLogger{Logger: log.New(&buf, "raft ", 0)}
	var _ Logger = l

	l.Debug("hidden")
	l.Debugf("hidden %d", 1)
	require.Empty(t, buf.String(), "debug is off by default")

	l.EnableDebug()
	l.Debugf("d %d", 1)
	l.Info("i", 2)
	l.Infof("i %d", 3)
	l.Warning("w")
	l.Warningf("w %s", "x")
	l.Error("e")
	l.Errorf("e %d", 4)
	require.PanicsWithValue(t, "p 5", func() { l.Panicf("p %d", 5) })
	require.PanicsWithValue(t, "p6", func() { l.Panic("p", 6) })
	require.Equal(t, strings.Join([]string{
		"raft DEBUG: d 1", "raft INFO: i2", "raft INFO: i 3", "raft WARN: w", "raft WARN: w x",
		"raft ERROR: e", "raft ERROR: e 4", "raft PANIC: p 5", "raft PANIC: p6",
	}, "\n")+"\n", buf.String())

	buf.Reset()
	l.EnableTimestamps()
	require.Equal(t, log.Ldate|log.Ltime, l.Flags())
	l.Info("stamped")
	require.Regexp(t, `^raft \d{4}/\d\d/\d\d \d\d:\d\d:\d\d INFO: stamped\n$`, buf.String())

	// The line is attributed to the caller of the logging method.
	buf.Reset()
	l.SetFlags(log.Lshortfile)
	l.Warning("here")
	require.True(t, strings.HasPrefix(buf.String(), "raft logger_test.go:"), buf.String())
}

// DefaultLogger's Fatal and Fatalf log, then exit with status 1. They run
// in a child process (this test binary, told so by an environment
// variable).
func TestDefaultLoggerFatalExits(t *testing.T) {
	if method := os.Getenv("RAFT_TEST_FATAL"); method != "" {
		l := &DefaultLogger{Logger: log.New(os.Stderr, "", 0)}
		if method == "Fatalf" {
			l.Fatalf("bye %d", 1)
		} else {
			l.Fatal("bye", 1)
		}
		return // not reached
	}
	for _, method := range []string{"Fatal", "Fatalf"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDefaultLoggerFatalExits$")
		cmd.Env = append(os.Environ(), "RAFT_TEST_FATAL="+method)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "%s: %v", method, err)
		require.Equal(t, 1, exit.ExitCode(), method)
		require.Contains(t, string(out), "FATAL: bye", method)
	}
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
