package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRunInMemory(t *testing.T) {
	var out bytes.Buffer
	kv, err := run("", &out)
	require.NoError(t, err)
	require.Equal(t, 30, kv.commands)
	require.Equal(t, "v28", kv.data["k0"])
	require.Contains(t, out.String(), "  k6 = v27\n")
}

// TestRunOnWAL runs the example twice on one WAL directory: the second run
// recovers the first run's log, re-applies its 30 commands, then adds 30.
func TestRunOnWAL(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	kv, err := run(dir, &out)
	require.NoError(t, err)
	require.Equal(t, 30, kv.commands)
	require.NotContains(t, out.String(), "recovered")
	first := kv.applied

	out.Reset()
	kv, err = run(dir, &out)
	require.NoError(t, err)
	require.Contains(t, out.String(), "recovered a log of 32 entries")
	require.Equal(t, 60, kv.commands, "30 re-applied, 30 new")
	require.Greater(t, kv.applied, first+30)
	require.Equal(t, "v28", kv.data["k0"])
}
