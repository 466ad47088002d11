// Command compare runs the same workloads against etcd raft and raftcore in
// one binary and reports raftcore's figures as ratios of etcd's.
//
// The two implementations run interleaved (etcd raft, raftcore, etcd raft,
// ...) for -rounds rounds, each run sized once so that it lasts at least
// -time, with a GC before each measurement; workloads 1-5 run with
// GOMAXPROCS 1. For each figure the table gives both medians, the median of
// the paired ratios raftcore/etcd and their range.
//
// This is a module of its own so that the library never depends on etcd
// raft; etcd raft is only called through its public API.
//
//	cd bench/compare && go run . -rounds 5
package main

//go:generate go run ./cmd/mirror -in workloads_raftcore.go -out workloads_etcd_gen.go

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"
)

func main() {
	rounds := flag.Int("rounds", 5, "paired rounds per workload")
	minTime := flag.Duration("time", 200*time.Millisecond, "least duration of each measured run")
	run := flag.String("run", "", "regexp selecting workloads by id: "+workloadIDs())
	quick := flag.Bool("quick", false, "smoke mode: one round of small fixed sizes, no calibration")
	asJSON := flag.Bool("json", false, "print JSON instead of a Markdown table")
	dir := flag.String("dir", os.TempDir(), "directory on a real disk (not tmpfs) for the file workload")
	verbose := flag.Bool("v", false, "print every measurement to stderr")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (both libraries) to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile of the whole run, every allocation sampled, to this file")
	flag.Parse()
	log.SetFlags(0)
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			log.Fatalf("compare: -cpuprofile: %v", err)
		}
		defer stop()
	}
	if *memProfile != "" {
		// Every allocation, so that the per-site counts are exact.
		runtime.MemProfileRate = 1
		defer writeMemProfile(*memProfile)
	}

	o := options{rounds: *rounds, minTime: *minTime, quick: *quick, dir: *dir}
	if o.quick {
		o.rounds = 1
	}
	if o.rounds < 1 {
		log.Fatal("compare: -rounds must be at least 1")
	}
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			log.Fatalf("compare: -run: %v", err)
		}
		o.filter = re
	}
	if *verbose {
		o.progress = os.Stderr
	}
	results, err := runAll(o)
	if err != nil {
		log.Panicf("compare: %v", err) // Panicf, not Fatalf: the profile is still written
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			log.Fatal(err)
		}
		return
	}
	writeHeader(os.Stdout, o)
	writeMarkdown(os.Stdout, results, etcdName())
}

// startCPUProfile starts profiling into path; the function it returns
// stops and writes the profile.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Printf("compare: -cpuprofile: %v", err)
		}
	}, nil
}

// writeMemProfile writes the allocation profile to path.
func writeMemProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		log.Printf("compare: -memprofile: %v", err)
	}
}

func workloadIDs() string {
	var ids []string
	for _, w := range workloads {
		ids = append(ids, w.id)
	}
	return strings.Join(ids, ", ")
}

// etcdName names the etcd raft version this binary was built with.
func etcdName() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "go.etcd.io/raft/v3" {
				return "etcd raft " + d.Version
			}
		}
	}
	return "etcd raft"
}

func writeHeader(out io.Writer, o options) {
	sizing := fmt.Sprintf("each run sized to last at least %v", o.minTime)
	if o.quick {
		sizing = "quick mode (small fixed sizes)"
	}
	fmt.Fprintf(out, "%s, %s/%s, %d CPUs; %d round(s), %s; workloads 1-5 with GOMAXPROCS 1, 6-7 with GOMAXPROCS %d.\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), o.rounds, sizing, runtime.GOMAXPROCS(0))
}
