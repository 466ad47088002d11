package wal

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMultiCrashSafety is TestCrashSafety for a MultiLog: a child process
// writes batches to 8 groups (the Saves of all groups in one
// MultiLog.Save, then the groups' snapshots and compactions) and reports
// each batch once it returned; the parent kills it with SIGKILL at random
// moments and checks after each kill that every group holds every
// reported batch, and at most a prefix of its part of the next.

const (
	envMultiCrashDir   = "WAL_MULTI_CRASH_DIR"
	envMultiCrashSeed  = "WAL_MULTI_CRASH_SEED"
	envMultiCrashStart = "WAL_MULTI_CRASH_START"
	multiCrashGroups   = 8
)

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
	dir := os.Getenv(envMultiCrashDir)
	if dir == "" {
		t.Skip("run by TestMultiCrashSafety")
	}
	seed, err := strconv.ParseUint(os.Getenv(envMultiCrashSeed), 10, 64)
	require.NoError(t, err)
	start, err := strconv.ParseUint(os.Getenv(envMultiCrashStart), 10, 64)
	require.NoError(t, err)
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
	if os.Getenv(envMultiCrashDir) != "" {
		t.Skip("in the child")
	}
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	if *crashRounds > 0 {
		rounds = *crashRounds
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-wal.crash.seed), %d rounds", seed, rounds)
	prng := rand.New(rand.NewPCG(seed, 17))
	dir := t.TempDir()
	ms := newMultiCrashModels()
	next := uint64(1)
	var outcomes [numCrashOutcomes]int
	for round := 1; round <= rounds; round++ {
		reported := runMultiCrashChild(t, dir, seed, round, next, prng)
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

// runMultiCrashChild runs a child from batch start on, kills it after a
// random number of reports, and returns the last batch it reported.
func runMultiCrashChild(t *testing.T, dir string, seed uint64, round int, start uint64, prng *rand.Rand) uint64 {
	t.Helper()
	killAfter := 1 + prng.IntN(20)
	pause := time.Duration(prng.IntN(3001)) * time.Microsecond
	ctx := fmt.Sprintf("seed %d round %d (child from batch %d, killed after %d reports and %v)", seed, round, start, killAfter, pause)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMultiCrashChild$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(),
		envMultiCrashDir+"="+dir,
		envMultiCrashSeed+"="+strconv.FormatUint(seed, 10),
		envMultiCrashStart+"="+strconv.FormatUint(start, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), ctx)
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	reported := start - 1
	sc := bufio.NewScanner(stdout)
	for n := 0; n < killAfter; n++ {
		if !sc.Scan() {
			_ = cmd.Wait()
			t.Fatalf("%s: the child stopped after batch %d\nstderr:\n%s", ctx, reported, stderr.String())
		}
		k, ok := strings.CutPrefix(sc.Text(), "durable ")
		v, err := strconv.ParseUint(k, 10, 64)
		require.True(t, ok && err == nil && v == reported+1, "%s: unexpected line %q", ctx, sc.Text())
		reported = v
	}
	time.Sleep(pause)
	require.NoError(t, cmd.Process.Kill(), ctx)
	for sc.Scan() {
		k, ok := strings.CutPrefix(sc.Text(), "durable ")
		v, err := strconv.ParseUint(k, 10, 64)
		require.True(t, ok && err == nil && v == reported+1, "%s: unexpected line %q", ctx, sc.Text())
		reported = v
	}
	return reported
}
