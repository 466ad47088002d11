package main

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/raftcore/raft/bench/compare/internal/mirror"
)

// TestMirrorUpToDate fails when workloads_etcd_gen.go is not exactly what
// cmd/mirror makes of workloads_raftcore.go, so the two libraries always run
// the same workload code.
func TestMirrorUpToDate(t *testing.T) {
	src, err := os.ReadFile("workloads_raftcore.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := mirror.Rewrite("workloads_raftcore.go", src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("workloads_etcd_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("workloads_etcd_gen.go differs from what cmd/mirror makes of workloads_raftcore.go: run go generate")
	}
}

// TestMirrorRejectsOtherNames checks that the source can name a library
// only through the rewritten import paths and the name suffix.
func TestMirrorRejectsOtherNames(t *testing.T) {
	for name, src := range map[string]string{
		"identifier":         "package main\n\nvar etcdOnly = 1\n",
		"suffix in the base": "package main\n\nfunc etcdRunRaftcore() {}\n",
		"string":             "package main\n\nvar s = \"go.etcd.io/raft/v3\"\n",
	} {
		if _, err := mirror.Rewrite("x.go", []byte(src)); err == nil {
			t.Errorf("%s: Rewrite accepted %q", name, src)
		}
	}
	got, err := mirror.Rewrite("x.go", []byte("package main\n\nimport _ \"github.com/raftcore/raft/raftpb\"\n\n// runRaftcore runs.\nfunc runRaftcore() {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"go.etcd.io/raft/v3/raftpb"`, "// runEtcd runs.", "func runEtcd()"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("Rewrite output lacks %s:\n%s", want, got)
		}
	}
}

// TestQuickRunsEveryWorkload runs every workload once in -quick mode on
// both libraries and checks the counts and figures are sane.
func TestQuickRunsEveryWorkload(t *testing.T) {
	results, err := runAll(options{rounds: 1, quick: true, dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(workloads) {
		t.Fatalf("%d results for %d workloads", len(results), len(workloads))
	}
	for i, r := range results {
		w := workloads[i]
		for l := range libs {
			if r.Expected[l] <= 0 || r.Observed[l] != r.Expected[l] {
				t.Errorf("%s on %s: expected %d, observed %d", r.ID, libs[l].name, r.Expected[l], r.Observed[l])
			}
		}
		if w.kind == "single" || w.kind == "three" || w.kind == "node" || w.kind == "file" {
			if r.Expected[0] != int64(w.quickN) {
				t.Errorf("%s: proposed %d entries, want %d", r.ID, r.Expected[0], w.quickN)
			}
		}
		if len(r.Metrics) != len(w.metrics) {
			t.Fatalf("%s: %d figures, want %d", r.ID, len(r.Metrics), len(w.metrics))
		}
		for _, m := range r.Metrics {
			for _, v := range []float64{m.Etcd, m.Raftcore} {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					t.Errorf("%s %s: value %v", r.ID, m.Name, v)
				}
			}
		}
		// The first figure of every workload is a time or a rate: both
		// positive, and their ratio finite.
		first := r.Metrics[0]
		if first.Etcd <= 0 || first.Raftcore <= 0 {
			t.Errorf("%s %s: etcd %v, raftcore %v", r.ID, first.Name, first.Etcd, first.Raftcore)
		}
		if first.Ratio == nil || math.IsInf(*first.Ratio, 0) || math.IsNaN(*first.Ratio) || *first.Ratio <= 0 {
			t.Errorf("%s %s: ratio %v", r.ID, first.Name, first.Ratio)
		}
	}
	var buf bytes.Buffer
	writeMarkdown(&buf, results, "etcd raft")
	if lines := strings.Count(buf.String(), "\n"); lines < 2+len(results) {
		t.Errorf("table has %d lines:\n%s", lines, buf.String())
	}
}

// TestSummarizePairsRounds checks the ratios are taken per round, then
// summarized.
func TestSummarizePairsRounds(t *testing.T) {
	values := [][2]map[string]float64{
		{{"x": 100}, {"x": 50}},  // 0.5
		{{"x": 200}, {"x": 300}}, // 1.5
		{{"x": 400}, {"x": 400}}, // 1.0
	}
	m := summarize("x", values)
	if m.Etcd != 200 || m.Raftcore != 300 {
		t.Errorf("medians %v %v, want 200 300", m.Etcd, m.Raftcore)
	}
	if m.Ratio == nil || *m.Ratio != 1 || *m.RatioMin != 0.5 || *m.RatioMax != 1.5 {
		t.Errorf("ratio %v [%v, %v], want 1 [0.5, 1.5]", m.Ratio, m.RatioMin, m.RatioMax)
	}
	zero := summarize("x", [][2]map[string]float64{{{"x": 0}, {"x": 0}}})
	if zero.Ratio != nil {
		t.Errorf("ratio of 0/0 is %v, want none", *zero.Ratio)
	}
}
