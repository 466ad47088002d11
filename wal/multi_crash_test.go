package wal

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMultiCrashSafety is TestCrashSafety for a MultiLog: a child process
// writes batches to 8 groups (the Saves of all groups in one
// MultiLog.Save, then the groups' snapshots and compactions) and reports
// each batch once it returned; the parent kills it with SIGKILL at random
// moments and checks after each kill that every group holds every
// reported batch, and at most a prefix of its part of the next.

const multiCrashGroups = 8

var multiCrashChild = crashChild{test: "TestMultiCrashChild", prefix: "WAL_MULTI_CRASH", maxReports: 20}

var multiCrashOptions = Options{SegmentSize: 256 << 10}

func newMultiCrashModels() []*crashModel {
	ms := make([]*crashModel, multiCrashGroups)
	for i := range ms {
		ms[i] = newCrashModel()
	}
	return ms
}

// genMultiCrashBatch returns batch k: each group's part, generated as
// for one group's log from a seed of its own.
func genMultiCrashBatch(seed, k uint64, ms []*crashModel, withData bool) []*crashBatch {
	bs := make([]*crashBatch, len(ms))
	for i, m := range ms {
		bs[i] = genCrashBatch(seed+uint64(i)*1_000_003, k, m, withData)
	}
	return bs
}

func applyMulti(ms []*crashModel, bs []*crashBatch) {
	for i, b := range bs {
		ms[i].apply(b)
	}
}

// runMultiCrashBatch performs bs: every group's Save in one Save, then
// the snapshot parts. It can be run again after a crash interrupted it.
func runMultiCrashBatch(ml *MultiLog, bs []*crashBatch) error {
	var ups []GroupUpdate
	for i, b := range bs {
		if !b.snapshot {
			ups = append(ups, GroupUpdate{GroupID: uint64(i + 1), HardState: b.hs, Entries: b.ents})
		}
	}
	if len(ups) > 0 {
		if err := ml.Save(ups); err != nil {
			return err
		}
	}
	for i, b := range bs {
		if b.snapshot {
			g, err := ml.Group(uint64(i + 1))
			if err != nil {
				return err
			}
			if err := b.run(g); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestMultiCrashChild is the process TestMultiCrashSafety kills.
func TestMultiCrashChild(t *testing.T) {
	dir, seed, start := multiCrashChild.args(t)
	ms := newMultiCrashModels()
	for k := uint64(1); k < start; k++ {
		applyMulti(ms, genMultiCrashBatch(seed, k, ms, false))
	}
	ml, err := OpenMulti(dir, multiCrashOptions)
	require.NoError(t, err)
	bs := genMultiCrashBatch(seed, start, ms, true)
	for k := start; ; k++ {
		require.NoError(t, runMultiCrashBatch(ml, bs), "batch %d", k)
		applyMulti(ms, bs)
		bs = genMultiCrashBatch(seed, k+1, ms, true)
		if _, err := fmt.Fprintf(os.Stdout, "durable %d\n", k); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMultiCrashSafety(t *testing.T) {
	seed, rounds := multiCrashChild.parentArgs(t, 5, 2)
	prng := rand.New(rand.NewPCG(seed, 17))
	dir := t.TempDir()
	ms := newMultiCrashModels()
	next := uint64(1)
	var outcomes [numCrashOutcomes]int
	for round := 1; round <= rounds; round++ {
		reported := multiCrashChild.run(t, dir, seed, round, next, prng)
		ctx := fmt.Sprintf("seed %d round %d (child started at batch %d, reported up to batch %d)", seed, round, next, reported)
		for k := next; k <= reported; k++ {
			applyMulti(ms, genMultiCrashBatch(seed, k, ms, true))
		}
		bs := genMultiCrashBatch(seed, reported+1, ms, true)
		ml, err := OpenMulti(dir, multiCrashOptions)
		require.NoError(t, err, "%s: reopen after the kill", ctx)
		for i := range ms {
			g, err := ml.Group(uint64(i + 1))
			require.NoError(t, err)
			outcomes[checkCrashed(t, g, ms[i], bs[i], fmt.Sprintf("%s, group %d, next %v", ctx, i+1, bs[i]))]++
		}
		require.NoError(t, runMultiCrashBatch(ml, bs), "%s: finish the next batch", ctx)
		applyMulti(ms, bs)
		require.NoError(t, ml.Close())
		ml, err = OpenMulti(dir, multiCrashOptions)
		require.NoError(t, err, "%s: reopen after finishing the next batch", ctx)
		for i := range ms {
			g, _ := ml.Group(uint64(i + 1))
			checkCrashed(t, g, ms[i], nil, fmt.Sprintf("%s, group %d, after finishing the next batch", ctx, i+1))
		}
		require.NoError(t, ml.Close())
		next = reported + 2
	}
	var sum []string
	for o, n := range outcomes {
		if n > 0 {
			sum = append(sum, fmt.Sprintf("%s: %d", crashOutcomeNames[o], n))
		}
	}
	t.Logf("after %d kills, per group: %s", rounds, strings.Join(sum, ", "))
}
