// Command waldump prints the contents of a raftcore write-ahead-log
// directory (see package wal) readably, one record per line, and a summary:
//
//	go run ./cmd/waldump [-data] DIR
//
// It only reads: it takes no lock and may run beside a server that has the
// directory open. It exits 1 on damage (after printing the records before
// it and the file and offset of the damaged record), 0 otherwise; a torn
// tail, which the next Open cuts off, is printed but is not damage.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
)

func main() {
	data := flag.Bool("data", false, "print entry payloads (quoted, first 64 bytes)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: waldump [-data] DIR\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if _, err := os.Stat(flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "waldump:", err)
		os.Exit(1)
	}
	if err := dump(os.Stdout, flag.Arg(0), *data); err != nil {
		fmt.Fprintln(os.Stderr, "waldump:", err)
		os.Exit(1)
	}
}

// summary is what the records add up to.
type summary struct {
	segments, entries, bytes int
	first, last              uint64
	hs                       pb.HardState
	snap                     *pb.Snapshot
	torn                     bool
}

func dump(w io.Writer, dir string, withData bool) error {
	var sum summary
	lastFile := ""
	err := wal.Walk(dir, func(r wal.Record) error {
		if r.File != lastFile && r.Kind != "snapshot-file" {
			sum.segments++
			lastFile = r.File
		}
		fmt.Fprintf(w, "%s@%-8d %s\n", r.File, r.Offset, describe(r, withData))
		switch {
		case r.Entry != nil:
			sum.entries++
			sum.bytes += len(r.Entry.Data)
			if sum.first == 0 || r.Entry.Index < sum.first {
				sum.first = r.Entry.Index
			}
			sum.last = r.Entry.Index // a later entry replaces the ones after it
		case r.HardState != nil:
			sum.hs = *r.HardState
		case r.Kind == "snapshot-file":
			sum.snap = r.Snapshot
		case r.Kind == "torn-tail":
			sum.torn = true
		}
		return nil
	})
	fmt.Fprintf(w, "\n%d segments, %d entry records (%d payload bytes), indexes %d...%d\n", sum.segments, sum.entries, sum.bytes, sum.first, sum.last)
	fmt.Fprintf(w, "hard state: term=%d vote=%d commit=%d\n", sum.hs.Term, sum.hs.Vote, sum.hs.Commit)
	if sum.snap != nil {
		m := sum.snap.Metadata
		fmt.Fprintf(w, "snapshot: index=%d term=%d voters=%v learners=%v, %d bytes\n", m.Index, m.Term, m.ConfState.Voters, m.ConfState.Learners, len(sum.snap.Data))
	}
	if sum.torn {
		fmt.Fprintln(w, "the last segment ends in a torn write; opening the directory cuts it off")
	}
	return err
}

func describe(r wal.Record, withData bool) string {
	switch {
	case r.Entry != nil:
		e := r.Entry
		s := fmt.Sprintf("entry index=%d term=%d %s %d bytes", e.Index, e.Term, e.Type, len(e.Data))
		if withData {
			d := e.Data
			if len(d) > 64 {
				d = d[:64]
			}
			s += " " + strconv.Quote(string(d))
		}
		return s
	case r.HardState != nil:
		return fmt.Sprintf("%s term=%d vote=%d commit=%d", r.Kind, r.HardState.Term, r.HardState.Vote, r.HardState.Commit)
	case r.Snapshot != nil:
		m := r.Snapshot.Metadata
		return fmt.Sprintf("%s index=%d term=%d", r.Kind, m.Index, m.Term)
	}
	return r.Kind
}
