package wal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// The crash test runs a child process (this test binary, running
// TestCrashChild) that writes a deterministic sequence of batches to a
// Storage and reports each one on stdout once it is durable; the parent
// (TestCrashSafety) kills it with SIGKILL at a random moment, reopens the
// directory and checks that everything reported is there, intact, and
// nothing but a prefix of the next batch after it.

var (
	crashRounds = flag.Int("wal.crash.rounds", 0, "rounds of TestCrashSafety (0: 8, or 3 with -short)")
	crashSeed   = flag.Uint64("wal.crash.seed", 0, "seed of TestCrashSafety (0: random)")
)

// crashChild is a child process a crash test runs and kills: the test it
// runs, and the environment it gets (a directory, a seed, and the batch to
// start with, in PREFIX_DIR, PREFIX_SEED and PREFIX_START).
type crashChild struct {
	test   string
	prefix string
	// maxReports: the child is killed after 1 to maxReports reports.
	maxReports int
}

var singleCrashChild = crashChild{test: "TestCrashChild", prefix: "WAL_CRASH", maxReports: 40}

// inChild reports whether this process is the child.
func (c crashChild) inChild() bool { return os.Getenv(c.prefix+"_DIR") != "" }

// args returns the child's directory, seed and first batch; it skips the
// test when this process is not the child.
func (c crashChild) args(t *testing.T) (dir string, seed, start uint64) {
	t.Helper()
	if !c.inChild() {
		t.Skip("run by the crash test")
	}
	seed, err := strconv.ParseUint(os.Getenv(c.prefix+"_SEED"), 10, 64)
	require.NoError(t, err)
	start, err = strconv.ParseUint(os.Getenv(c.prefix+"_START"), 10, 64)
	require.NoError(t, err)
	return os.Getenv(c.prefix + "_DIR"), seed, start
}

// parentArgs returns a crash test's seed and number of rounds, from the
// flags or the defaults; it skips the test in the child.
func (c crashChild) parentArgs(t *testing.T, rounds, shortRounds int) (uint64, int) {
	t.Helper()
	if c.inChild() {
		t.Skip("in the child")
	}
	if testing.Short() {
		rounds = shortRounds
	}
	if *crashRounds > 0 {
		rounds = *crashRounds
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-wal.crash.seed), %d rounds", seed, rounds)
	return seed, rounds
}

var crashOptions = Options{SegmentSize: 64 << 10}

// crashModel is the state the batch generator works from: the live log
// from the newest snapshot's index on, the hard state, the snapshot and
// the compaction point. Child and parent advance it identically.
type crashModel struct {
	off     uint64     // index of log[0]
	log     []pb.Entry // the entries off ... off+len(log)-1
	hs      pb.HardState
	snap    pb.Snapshot
	compact uint64
}

func newCrashModel() *crashModel {
	return &crashModel{log: make([]pb.Entry, 1)} // a placeholder at index 0, term 0
}

func (m *crashModel) last() uint64 { return m.off + uint64(len(m.log)) - 1 }

func (m *crashModel) at(i uint64) pb.Entry { return m.log[i-m.off] }

// crashBatch is one step of the sequence: a Save of entries and a hard
// state, or a snapshot of the state machine at the commit index followed
// by a compaction.
type crashBatch struct {
	num uint64

	hs   pb.HardState
	ents []pb.Entry

	snapshot     bool
	snapIndex    uint64
	compactIndex uint64
	cs           pb.ConfState
	snapData     []byte
}

func (b *crashBatch) String() string {
	if b.snapshot {
		return fmt.Sprintf("batch %d (CreateSnapshot(%d), Compact(%d))", b.num, b.snapIndex, b.compactIndex)
	}
	return fmt.Sprintf("batch %d (Save entries %d...%d term %d, hard state %+v)",
		b.num, b.ents[0].Index, b.ents[len(b.ents)-1].Index, b.ents[0].Term, b.hs)
}

// genCrashBatch builds batch k from the model, deterministically. Every
// random decision is taken before the entries' data is generated, so that
// without data (to replay the model quickly) the batch is the same but for
// the data.
func genCrashBatch(seed, k uint64, m *crashModel, withData bool) *crashBatch {
	rng := rand.New(rand.NewPCG(seed, k))
	b := &crashBatch{num: k}
	commit := m.hs.Commit
	if rng.IntN(10) == 0 && commit > m.snap.Metadata.Index {
		b.snapshot = true
		b.snapIndex = commit
		b.compactIndex = m.compact + 1 + rng.Uint64N(commit-m.compact)
		b.cs = pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4 + rng.Uint64N(3)}}
		b.snapData = fmt.Appendf(nil, "state machine at %d (batch %d)", commit, k)
		return b
	}
	term, vote := max(m.hs.Term, 1), max(m.hs.Vote, 1)
	from := m.last() + 1
	if m.last() > commit && rng.IntN(6) == 0 {
		// A new leader replaces a suffix after the commit index.
		from = commit + 1 + rng.Uint64N(m.last()-commit)
		term++
		vote = 1 + rng.Uint64N(3)
	}
	n := 1 + rng.IntN(64)
	sizes := make([]int, n)
	b.ents = make([]pb.Entry, n)
	for i := range b.ents {
		b.ents[i] = pb.Entry{Index: from + uint64(i), Term: term, Type: pb.EntryType(rng.IntN(3))}
		if rng.IntN(40) == 0 {
			sizes[i] = 5<<10 + rng.IntN(15<<10+1) // crosses pages and segments
		} else {
			sizes[i] = 1 + rng.IntN(600)
		}
	}
	newLast := from + uint64(n) - 1
	b.hs = pb.HardState{Term: term, Vote: vote, Commit: commit + rng.Uint64N(newLast-commit+1)}
	if withData {
		for i := range b.ents {
			d := make([]byte, sizes[i]+7)
			for j := 0; j < sizes[i]; j += 8 {
				binary.LittleEndian.PutUint64(d[j:], rng.Uint64())
			}
			b.ents[i].Data = d[:sizes[i]:sizes[i]]
		}
	}
	return b
}

// apply advances the model past b.
func (m *crashModel) apply(b *crashBatch) {
	if b.snapshot {
		m.snap = b.expectedSnapshot(m)
		m.compact = b.compactIndex
		m.log = slices.Clone(m.log[b.snapIndex-m.off:])
		m.off = b.snapIndex
		return
	}
	from := b.ents[0].Index
	keep := m.log[:from-m.off]
	if from <= m.last() {
		keep = slices.Clip(keep) // do not overwrite entries someone may hold
	}
	m.log = append(keep, b.ents...)
	m.hs = b.hs
}

// expectedSnapshot is the snapshot b creates on a log in state m.
func (b *crashBatch) expectedSnapshot(m *crashModel) pb.Snapshot {
	return pb.Snapshot{Data: b.snapData, Metadata: pb.SnapshotMetadata{
		Index: b.snapIndex, Term: m.at(b.snapIndex).Term, ConfState: b.cs,
	}}
}

// crashWriter is what a crashBatch writes to: a Storage or a GroupStorage.
type crashWriter interface {
	Save(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) error
	Snapshot() (pb.Snapshot, error)
	CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error)
	Compact(compactIndex uint64) error
}

// run performs b on s. It can be run again after a crash interrupted it:
// a snapshot that is already there is not created again, a compaction
// already done (a reopened log starts at the snapshot) is skipped.
func (b *crashBatch) run(s crashWriter) error {
	if !b.snapshot {
		return s.Save(b.hs, b.ents, pb.Snapshot{})
	}
	snap, err := s.Snapshot()
	if err != nil {
		return err
	}
	if snap.Metadata.Index < b.snapIndex {
		cs := b.cs
		if _, err := s.CreateSnapshot(b.snapIndex, &cs, b.snapData); err != nil {
			return err
		}
	}
	if err := s.Compact(b.compactIndex); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return err
	}
	return nil
}

// TestCrashChild is the process TestCrashSafety kills: it writes batches
// to the Storage in $WAL_CRASH_DIR from batch $WAL_CRASH_START on, forever,
// and prints "durable N" once batch N is.
func TestCrashChild(t *testing.T) {
	dir, seed, start := singleCrashChild.args(t)
	m := newCrashModel()
	for k := uint64(1); k < start; k++ {
		m.apply(genCrashBatch(seed, k, m, false))
	}
	s, err := Open(dir, crashOptions)
	require.NoError(t, err)
	last, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, m.last(), last, "child starting at batch %d", start)
	require.Equal(t, m.hs, s.HardState(), "child starting at batch %d", start)
	b := genCrashBatch(seed, start, m, true)
	for {
		require.NoError(t, b.run(s), "%v", b)
		m.apply(b)
		// Build the next batch before reporting this one, so that a kill
		// soon after a report is likely to land inside the next write.
		k := b.num
		b = genCrashBatch(seed, k+1, m, true)
		// One write of a few bytes to a pipe: the line arrives whole.
		if _, err := fmt.Fprintf(os.Stdout, "durable %d\n", k); err != nil {
			t.Fatal(err) // the parent is gone
		}
	}
}

// crashOutcome classifies what a crash left of the batch after the last
// one reported.
type crashOutcome int

const (
	nextAbsent         crashOutcome = iota // nothing of it
	nextTorn                               // some of its entries
	nextEntriesOnly                        // all its entries, not its hard state
	nextWhole                              // all of it
	nextSnapshotAbsent                     // a snapshot batch, no new snapshot
	nextSnapshotThere                      // a snapshot batch, the snapshot is there
	numCrashOutcomes
)

var crashOutcomeNames = [numCrashOutcomes]string{
	"next Save absent", "next Save torn", "next Save entries without hard state", "next Save whole",
	"next snapshot absent", "next snapshot created",
}

// TestCrashSafety kills a writing process at random moments, for real,
// and checks after each crash that Open recovers every batch the process
// reported durable, and at most a prefix of the one it was writing.
func TestCrashSafety(t *testing.T) {
	seed, rounds := singleCrashChild.parentArgs(t, 8, 3)
	prng := rand.New(rand.NewPCG(seed, math.MaxUint64))
	dir := t.TempDir()
	m := newCrashModel()
	next := uint64(1) // the batch the next child starts with
	var outcomes [numCrashOutcomes]int
	for round := 1; round <= rounds; round++ {
		reported := singleCrashChild.run(t, dir, seed, round, next, prng)
		ctx := fmt.Sprintf("seed %d round %d (child started at batch %d, reported up to batch %d)", seed, round, next, reported)
		for k := next; k <= reported; k++ {
			m.apply(genCrashBatch(seed, k, m, true))
		}
		b := genCrashBatch(seed, reported+1, m, true)
		ctx += fmt.Sprintf(", next %v", b)

		s, err := Open(dir, crashOptions)
		require.NoError(t, err, "%s: reopen after the kill", ctx)
		o := checkCrashed(t, s, m, b, ctx)
		outcomes[o]++
		t.Logf("round %d: batches %d...%d reported, %s", round, next, reported, crashOutcomeNames[o])

		// Finish the batch the child was writing, and check the log is
		// then exactly the model's.
		require.NoError(t, b.run(s), "%s: finish the next batch", ctx)
		m.apply(b)
		require.NoError(t, s.Close(), ctx)
		s, err = Open(dir, crashOptions)
		require.NoError(t, err, "%s: reopen after finishing the next batch", ctx)
		checkCrashed(t, s, m, nil, ctx+", after finishing the next batch")
		require.NoError(t, s.Close(), ctx)
		next = reported + 2
	}
	var sum []string
	for o, n := range outcomes {
		if n > 0 {
			sum = append(sum, fmt.Sprintf("%s: %d", crashOutcomeNames[o], n))
		}
	}
	t.Logf("after %d kills: %s", rounds, strings.Join(sum, ", "))
}

// run runs the child from batch start on, kills it after a random number
// of reports, and returns the last batch it reported durable.
func (c crashChild) run(t *testing.T, dir string, seed uint64, round int, start uint64, prng *rand.Rand) uint64 {
	t.Helper()
	killAfter := 1 + prng.IntN(c.maxReports)
	// Right after a report (the next write has just begun), a little
	// after (inside it), or anywhere in the next few.
	var pause time.Duration
	switch prng.IntN(3) {
	case 1:
		pause = time.Duration(prng.IntN(301)) * time.Microsecond
	case 2:
		pause = time.Duration(prng.IntN(3001)) * time.Microsecond
	}
	ctx := fmt.Sprintf("seed %d round %d (child started at batch %d, killed after %d reports and %v)", seed, round, start, killAfter, pause)

	cmd := exec.Command(os.Args[0], "-test.run=^"+c.test+"$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(),
		c.prefix+"_DIR="+dir,
		c.prefix+"_SEED="+strconv.FormatUint(seed, 10),
		c.prefix+"_START="+strconv.FormatUint(start, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), ctx)
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	reported := start - 1
	var other []string
	sc := bufio.NewScanner(stdout)
	read := func(stopAfter int) int {
		n := 0
		for (stopAfter == 0 || n < stopAfter) && sc.Scan() {
			line := sc.Text()
			num, ok := strings.CutPrefix(line, "durable ")
			if !ok {
				other = append(other, line)
				continue
			}
			k, err := strconv.ParseUint(num, 10, 64)
			if err != nil || k != reported+1 {
				other = append(other, line+fmt.Sprintf("   <- expected durable %d", reported+1))
				continue
			}
			reported = k
			n++
		}
		return n
	}
	childFailed := func(what string) {
		t.Helper()
		waitErr := cmd.Wait()
		waited = true
		t.Fatalf("%s: %s (%v, last reported batch %d)\nstdout:\n%s\nstderr:\n%s",
			ctx, what, waitErr, reported, strings.Join(other, "\n"), stderr.String())
	}

	if read(killAfter) < killAfter {
		read(0)
		childFailed("the child stopped by itself")
	}
	if pause > 0 {
		time.Sleep(pause)
	}
	require.NoError(t, cmd.Process.Kill(), ctx)
	read(0) // what it reported before it died
	require.NoError(t, sc.Err(), ctx)
	waitErr := cmd.Wait()
	waited = true
	if len(other) > 0 || (runtime.GOOS != "windows" && cmd.ProcessState.Exited()) {
		t.Fatalf("%s: the child did not just die from the kill (%v, last reported batch %d)\nstdout:\n%s\nstderr:\n%s",
			ctx, waitErr, reported, strings.Join(other, "\n"), stderr.String())
	}
	return reported
}

// crashReader is what checkCrashed reads: a Storage or a GroupStorage.
type crashReader interface {
	raft.Storage
	HardState() pb.HardState
}

// checkCrashed checks a reopened Storage against the model after the last
// batch reported durable: the snapshot, the log from the snapshot on and
// the hard state are the model's, except that the next batch b (nil if
// none was under way) may have landed in part: a prefix of a Save's
// entries (replacing what they replace), its hard state only with all of
// them; or a snapshot batch's snapshot.
func checkCrashed(t *testing.T, s crashReader, m *crashModel, b *crashBatch, ctx string) crashOutcome {
	t.Helper()
	outcome := nextAbsent
	snap, err := s.Snapshot()
	require.NoError(t, err, ctx)
	wantSnap := m.snap
	if b != nil && b.snapshot {
		outcome = nextSnapshotAbsent
		if snap.Metadata.Index == b.snapIndex {
			wantSnap, outcome = b.expectedSnapshot(m), nextSnapshotThere
		}
	}
	require.Equal(t, wantSnap, snap, "%s: snapshot", ctx)
	first, err := s.FirstIndex()
	require.NoError(t, err, ctx)
	require.Equal(t, snap.Metadata.Index+1, first, "%s: FirstIndex after reopening", ctx)
	term, err := s.Term(first - 1)
	require.NoError(t, err, ctx)
	require.Equal(t, snap.Metadata.Term, term, "%s: Term(%d) of the snapshot", ctx, first-1)
	last, err := s.LastIndex()
	require.NoError(t, err, ctx)
	hs := s.HardState()

	// want is the log expected from first on.
	var want []pb.Entry
	for i := first; i <= m.last(); i++ {
		want = append(want, m.at(i))
	}
	if b != nil && !b.snapshot {
		from := b.ents[0].Index
		landed := last != m.last()
		if !landed && from <= last {
			term, err := s.Term(from)
			landed = err == nil && term != m.at(from).Term // the new entries have a higher term
		}
		if landed {
			p := int64(last) - int64(from) + 1
			require.True(t, p >= 1 && p <= int64(len(b.ents)),
				"%s: the log ends at %d: neither the reported log (ending at %d) nor a prefix of the next batch's entries %d...%d",
				ctx, last, m.last(), from, b.ents[len(b.ents)-1].Index)
			want = append(want[:from-first], b.ents[:p]...)
			switch {
			case int(p) < len(b.ents):
				outcome = nextTorn
			case hs == b.hs:
				outcome = nextWhole
			default:
				outcome = nextEntriesOnly
			}
		}
	}
	require.Equal(t, first+uint64(len(want))-1, last, "%s: LastIndex", ctx)
	if outcome != nextWhole {
		require.Equal(t, m.hs, hs, "%s: hard state", ctx)
	}
	if len(want) == 0 {
		return outcome
	}
	got, err := s.Entries(first, last+1, math.MaxUint64)
	require.NoError(t, err, "%s: Entries(%d, %d)", ctx, first, last+1)
	require.Len(t, got, len(want), "%s: Entries(%d, %d)", ctx, first, last+1)
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, entrySummary(w), entrySummary(g), "%s: entry %d", ctx, w.Index)
		require.True(t, bytes.Equal(w.Data, g.Data), "%s: entry %d: data differs", ctx, w.Index)
		term, err := s.Term(w.Index)
		require.NoError(t, err, ctx)
		require.Equal(t, w.Term, term, "%s: Term(%d)", ctx, w.Index)
	}
	return outcome
}

// entrySummary makes a mismatch readable without printing kilobytes.
func entrySummary(e pb.Entry) string {
	return fmt.Sprintf("index %d term %d type %v, %d bytes of data (crc %08x)",
		e.Index, e.Term, e.Type, len(e.Data), crc32.ChecksumIEEE(e.Data))
}
