package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"time"
)

// workload is one comparison: a kind of run (one function per library in
// the workloads files) with fixed parameters, and the figures it reports.
type workload struct {
	id    string // what -run matches
	title string
	kind  string
	// unit is what the per-op figures (ns/, allocs/, B/) are per.
	unit string
	// serial runs the workload with GOMAXPROCS 1.
	serial bool
	p      params
	// startN is where calibration starts; quickN is the size in -quick mode.
	startN, quickN int
	metrics        []string
}

func perUnit(unit string) []string {
	return []string{"ns/" + unit, "cpu-ns/" + unit, "allocs/" + unit, "B/" + unit}
}

var workloads = []workload{
	{id: "single-1", title: "1. single voter, 1 entry/Ready", kind: "single", unit: "entry", serial: true,
		p: params{batch: 1}, startN: 1000, quickN: 500, metrics: perUnit("entry")},
	{id: "single-64", title: "1. single voter, 64 entries/Ready", kind: "single", unit: "entry", serial: true,
		p: params{batch: 64}, startN: 4096, quickN: 1024, metrics: perUnit("entry")},
	{id: "three-1", title: "2. three voters in memory, 1 entry/Ready", kind: "three", unit: "entry", serial: true,
		p: params{batch: 1}, startN: 500, quickN: 200, metrics: perUnit("entry")},
	{id: "three-64", title: "2. three voters in memory, 64 entries/Ready", kind: "three", unit: "entry", serial: true,
		p: params{batch: 64}, startN: 2048, quickN: 512, metrics: perUnit("entry")},
	{id: "wire-1", title: "3. three voters, messages marshaled, 1 entry/Ready", kind: "three", unit: "entry", serial: true,
		p: params{batch: 1, wire: true}, startN: 500, quickN: 200, metrics: perUnit("entry")},
	{id: "wire-64", title: "3. three voters, messages marshaled, 64 entries/Ready", kind: "three", unit: "entry", serial: true,
		p: params{batch: 64, wire: true}, startN: 2048, quickN: 512, metrics: perUnit("entry")},
	{id: "three-1-optin", title: "2o. as 2, 1 entry/Ready, raftcore with ReuseReadyMessages (opt-in; etcd raft: default)", kind: "three", unit: "entry", serial: true,
		p: params{batch: 1, optIn: true}, startN: 500, quickN: 200, metrics: perUnit("entry")},
	{id: "wire-1-optin", title: "3o. as 3, 1 entry/Ready, raftcore with ReuseReadyMessages (opt-in; etcd raft: default)", kind: "three", unit: "entry", serial: true,
		p: params{batch: 1, wire: true, optIn: true}, startN: 500, quickN: 200, metrics: perUnit("entry")},
	{id: "three-64-prop", title: "2p. as 2, 64 entries/Ready handed to the leader as one MsgProp through Step", kind: "three", unit: "entry", serial: true,
		p: params{batch: 64, propMsg: true}, startN: 2048, quickN: 512, metrics: perUnit("entry")},
	{id: "codec", title: "4. codec: MsgApp of 64 × 128 B, Marshal+Unmarshal", kind: "codec", unit: "op", serial: true,
		startN: 100, quickN: 50, metrics: perUnit("op")},
	{id: "idle", title: "5. idle followers (10,000 groups): Tick+HasReady; live heap", kind: "idle", unit: "group-tick", serial: true,
		p: params{groups: 10000}, startN: 5, quickN: 2,
		metrics: []string{"ns/group-tick", "allocs/group-tick", "live heap B/group"}},
	{id: "idle-heartbeat", title: "5h. idle followers (10,000 groups), a heartbeat every tick: Tick+heartbeat+Ready; live heap", kind: "idle", unit: "group-tick", serial: true,
		p: params{groups: 10000, heartbeat: true}, startN: 2, quickN: 1,
		metrics: []string{"ns/group-tick", "allocs/group-tick", "live heap B/group"}},
	{id: "node", title: "6. Node, 1 ms fsync per Ready, 64 proposers, single voter", kind: "node", unit: "entry",
		p: params{proposers: 64}, startN: 1000, quickN: 256,
		metrics: []string{"entries/s", "p50 latency µs", "p99 latency µs", "allocs/entry"}},
	{id: "file", title: "7. three voters, Ready to file + fsync, 64 entries/Ready", kind: "file", unit: "entry",
		p: params{batch: 64}, startN: 640, quickN: 192,
		metrics: []string{"entries/s", "fsyncs/entry", "allocs/entry"}},
}

// quickGroups is the number of idle groups in -quick mode.
const quickGroups = 1000

// higherIsBetter marks the figures where a larger value is better.
var higherIsBetter = map[string]bool{"entries/s": true}

// lib is one implementation under comparison.
type lib struct {
	name string
	run  func(kind string, p params) (sample, error)
}

// libs run in this order in every round: etcd raft, then raftcore.
var libs = [2]lib{{"etcd", runEtcd}, {"raftcore", runRaftcore}}

// options is how the comparison runs.
type options struct {
	rounds  int
	minTime time.Duration
	filter  *regexp.Regexp
	quick   bool
	// dir holds the file workload's files; it must be on a real disk.
	dir string
	// progress receives a line per measurement; nil for none.
	progress io.Writer
}

// metricResult is one figure of one workload.
type metricResult struct {
	Name string `json:"name"`
	// Etcd and Raftcore are the medians over the rounds.
	Etcd     float64 `json:"etcd"`
	Raftcore float64 `json:"raftcore"`
	// Ratio is the median of the rounds' raftcore/etcd ratios, and
	// RatioMin and RatioMax their range; nil where etcd's value is 0.
	Ratio    *float64 `json:"ratio"`
	RatioMin *float64 `json:"ratio_min"`
	RatioMax *float64 `json:"ratio_max"`
	// HigherIsBetter is set for throughputs.
	HigherIsBetter bool `json:"higher_is_better,omitempty"`
}

// result is one workload's outcome.
type result struct {
	ID      string         `json:"id"`
	Title   string         `json:"title"`
	N       int            `json:"n"`
	Rounds  int            `json:"rounds"`
	Metrics []metricResult `json:"metrics"`
	// Expected and Observed are the last round's sanity counts, etcd's
	// first (see sample).
	Expected [2]int64 `json:"expected"`
	Observed [2]int64 `json:"observed"`
}

// runAll runs every selected workload and returns their results.
func runAll(o options) ([]result, error) {
	var out []result
	for _, w := range workloads {
		if o.filter != nil && !o.filter.MatchString(w.id) {
			continue
		}
		r, err := runWorkload(w, o)
		if err != nil {
			return out, fmt.Errorf("%s: %w", w.id, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func runWorkload(w workload, o options) (result, error) {
	if w.serial {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	p := w.p
	if o.quick {
		p.n = w.quickN
		p.groups = min(p.groups, quickGroups)
	} else {
		n, err := calibrate(w, p, o)
		if err != nil {
			return result{}, err
		}
		p.n = n
	}
	res := result{ID: w.id, Title: w.title, N: p.n, Rounds: o.rounds}
	values := make([][2]map[string]float64, o.rounds)
	for r := range o.rounds {
		for i, l := range libs {
			s, err := runOnce(l, w, p, o.dir)
			if err != nil {
				return result{}, fmt.Errorf("%s: %w", l.name, err)
			}
			values[r][i] = figures(w, s)
			res.Expected[i], res.Observed[i] = s.expected, s.observed
			if o.progress != nil {
				fmt.Fprintf(o.progress, "%s round %d %s: n=%d %s\n", w.id, r+1, l.name, p.n, describe(w, values[r][i]))
			}
		}
	}
	for _, name := range w.metrics {
		res.Metrics = append(res.Metrics, summarize(name, values))
	}
	return res, nil
}

// runOnce runs w once on l, in a directory of its own for the file
// workload, and checks the run's sanity count.
func runOnce(l lib, w workload, p params, dir string) (sample, error) {
	if w.kind == "file" {
		d, err := os.MkdirTemp(dir, "raft-compare-")
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(d)
		p.dir = d
	}
	s, err := l.run(w.kind, p)
	if err != nil {
		return sample{}, err
	}
	if s.expected <= 0 || s.expected != s.observed {
		return sample{}, fmt.Errorf("expected %d, observed %d", s.expected, s.observed)
	}
	if s.ops <= 0 || s.elapsed <= 0 {
		return sample{}, errors.New("measured nothing")
	}
	return s, nil
}

// calibrate finds the size at which a run of either library takes at least
// o.minTime, running both (which also warms them up).
func calibrate(w workload, p params, o options) (int, error) {
	n := w.startN
	for {
		p.n = n
		var slowest time.Duration
		for _, l := range libs {
			s, err := runOnce(l, w, p, o.dir)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", l.name, err)
			}
			slowest = max(slowest, s.elapsed)
		}
		if slowest >= o.minTime {
			return n, nil
		}
		f := float64(o.minTime) / float64(slowest) * 1.1
		if slowest >= o.minTime/4 {
			return int(math.Ceil(float64(n) * f)), nil
		}
		n = int(math.Ceil(float64(n) * min(f, 20)))
	}
}

// figures turns a sample into w's named figures.
func figures(w workload, s sample) map[string]float64 {
	ops := float64(s.ops)
	f := map[string]float64{
		"ns/" + w.unit:     float64(s.elapsed.Nanoseconds()) / ops,
		"cpu-ns/" + w.unit: float64(s.cpu.Nanoseconds()) / ops,
		"allocs/" + w.unit: float64(s.mallocs) / ops,
		"B/" + w.unit:      float64(s.bytes) / ops,
	}
	if w.kind == "file" {
		f["entries/s"] = ops / s.elapsed.Seconds()
	}
	for k, v := range s.extra {
		f[k] = v
	}
	return f
}

func describe(w workload, f map[string]float64) string {
	s := ""
	for _, m := range w.metrics {
		s += fmt.Sprintf(" %s=%s", m, formatValue(f[m]))
	}
	return s[1:]
}

// summarize takes the medians of one figure over the rounds, and the
// median and range of the paired ratios.
func summarize(name string, values [][2]map[string]float64) metricResult {
	var e, c, ratios []float64
	for _, v := range values {
		e = append(e, v[0][name])
		c = append(c, v[1][name])
		if v[0][name] != 0 {
			ratios = append(ratios, v[1][name]/v[0][name])
		}
	}
	m := metricResult{Name: name, Etcd: median(e), Raftcore: median(c), HigherIsBetter: higherIsBetter[name]}
	if len(ratios) == len(values) {
		med, lo, hi := median(ratios), slices.Min(ratios), slices.Max(ratios)
		m.Ratio, m.RatioMin, m.RatioMax = &med, &lo, &hi
	}
	return m
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1 || a == 0:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// writeMarkdown writes results as one Markdown table.
func writeMarkdown(out io.Writer, results []result, etcdName string) {
	fmt.Fprintf(out, "| workload | figure | %s | raftcore | raftcore/etcd, median | min–max |\n", etcdName)
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---:|")
	for _, r := range results {
		title := r.Title
		for _, m := range r.Metrics {
			name := m.Name
			if m.HigherIsBetter {
				name += " (higher is better)"
			}
			ratio, span := "—", "—"
			if m.Ratio != nil {
				ratio = fmt.Sprintf("%.2f", *m.Ratio)
				span = fmt.Sprintf("%.2f–%.2f", *m.RatioMin, *m.RatioMax)
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s |\n", title, name, formatValue(m.Etcd), formatValue(m.Raftcore), ratio, span)
			title = ""
		}
	}
}
