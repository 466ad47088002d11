// Command waldump prints the contents of a raftcore write-ahead-log
// directory (see package wal) readably, one record per line, and a summary:
//
//	go run ./cmd/waldump [-data] DIR
//
// DIR may hold the log of one group (wal.Open) or of many (wal.OpenMulti):
// each record of a multi-group log is prefixed with its group, and the
// summary is given per group.
//
// It only reads: it takes no lock and may run beside a server that has the
// directory open. Files the server removes after waldump listed them (when
// it compacts its log) are reported and skipped; if the files changed while
// waldump read them, the checks across files are skipped and it says so.
// It exits 1 on damage (after printing the records before it and the file
// and offset of the damaged record), on any log that wal.Open or
// wal.OpenMulti would refuse; 0 otherwise. A torn tail, which the next
// Open cuts off, is printed but is not damage; nor is a damaged snapshot
// file older than its log's newest, which the next Open removes unread.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
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

// walk reads the log; a test replaces it to change the directory while
// it is read.
var walk = wal.Walk

// summary is what the records add up to.
type summary struct {
	segments, entries, bytes int
	multi                    bool
	groups                   map[uint64]*group // by ID; 0 for a single log
	torn, changed            bool
	vanished, stale          []string
}

// group is what the records of one group add up to.
type group struct {
	entries, bytes int
	first, last    uint64
	hs             pb.HardState
	snap           *pb.Snapshot
	removed        bool
}

func (s *summary) group(id uint64) *group {
	g := s.groups[id]
	if g == nil {
		g = &group{}
		s.groups[id] = g
	}
	return g
}

func (s *summary) add(r wal.Record) {
	switch r.Kind {
	case "segment-header":
		s.segments++
	case "multi-segment-header":
		s.segments++
		s.multi = true
	case "torn-tail":
		s.torn = true
	case "vanished":
		s.vanished = append(s.vanished, r.File)
	case "stale-snapshot-file":
		s.stale = append(s.stale, r.File)
	case "directory-changed":
		s.changed = true
	case "group-removed":
		s.group(r.GroupID).removed = true
	}
	g := s.group(r.GroupID)
	switch {
	case r.Entry != nil:
		s.entries++
		s.bytes += len(r.Entry.Data)
		g.entries++
		g.bytes += len(r.Entry.Data)
		if g.first == 0 || r.Entry.Index < g.first {
			g.first = r.Entry.Index
		}
		g.last = r.Entry.Index // a later entry replaces the ones after it
	case r.HardState != nil:
		g.hs = *r.HardState
	case r.Kind == "snapshot-file":
		g.snap = r.Snapshot
		s.multi = s.multi || r.GroupID != 0
	}
}

func dump(w io.Writer, dir string, withData bool) error {
	sum := summary{groups: make(map[uint64]*group)}
	err := walk(dir, func(r wal.Record) error {
		sum.add(r)
		fmt.Fprintln(w, line(r, withData))
		return nil
	})
	sum.print(w)
	return err
}

func (s *summary) print(w io.Writer) {
	if !s.multi {
		g := s.group(0)
		fmt.Fprintf(w, "\n%d segments, %d entry records (%d payload bytes), indexes %d...%d\n", s.segments, s.entries, s.bytes, g.first, g.last)
		g.print(w, "")
	} else {
		fmt.Fprintf(w, "\n%d segments, %d entry records (%d payload bytes)\n", s.segments, s.entries, s.bytes)
		ids := make([]uint64, 0, len(s.groups))
		for id := range s.groups {
			if id != 0 {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			g := s.groups[id]
			prefix := fmt.Sprintf("group %d: ", id)
			if g.removed {
				fmt.Fprintf(w, "%sremoved\n", prefix)
				continue
			}
			fmt.Fprintf(w, "%s%d entry records (%d payload bytes), indexes %d...%d\n", prefix, g.entries, g.bytes, g.first, g.last)
			g.print(w, prefix)
		}
	}
	if s.torn {
		fmt.Fprintln(w, "the last segment ends in a torn write; opening the directory cuts it off")
	}
	if len(s.vanished) > 0 {
		fmt.Fprintf(w, "%d files removed while they were read (the log was compacted), skipped: %v\n", len(s.vanished), s.vanished)
	}
	if len(s.stale) > 0 {
		fmt.Fprintf(w, "%d damaged snapshot files older than their log's newest; opening the directory removes them unread: %v\n", len(s.stale), s.stale)
	}
	if s.changed {
		fmt.Fprintln(w, "the directory changed while it was read: the checks across files were not made")
	}
}

func (g *group) print(w io.Writer, prefix string) {
	fmt.Fprintf(w, "%shard state: term=%d vote=%d commit=%d\n", prefix, g.hs.Term, g.hs.Vote, g.hs.Commit)
	if g.snap != nil {
		m := g.snap.Metadata
		fmt.Fprintf(w, "%ssnapshot: index=%d term=%d voters=%v learners=%v, %d bytes\n", prefix, m.Index, m.Term, m.ConfState.Voters, m.ConfState.Learners, len(g.snap.Data))
	}
}

// line is how record r is printed: where it is, its group (in a
// multi-group log) and what it holds.
func line(r wal.Record, withData bool) string {
	where := fmt.Sprintf("%s@%-8d ", r.File, r.Offset)
	switch r.Kind {
	case "vanished":
		return fmt.Sprintf("%s removed after it was listed (the log was compacted): skipped", r.File)
	case "directory-changed":
		return "the directory changed while it was read"
	case "stale-snapshot-file":
		return fmt.Sprintf("%s damaged, older than the newest snapshot file: opening the directory removes it unread", r.File)
	}
	if r.GroupID != 0 {
		where += fmt.Sprintf("group=%d ", r.GroupID)
	}
	return where + describe(r, withData)
}

func describe(r wal.Record, withData bool) string {
	switch {
	case r.Entry != nil:
		e := r.Entry
		s := fmt.Sprintf("%s index=%d term=%d %s %d bytes", r.Kind, e.Index, e.Term, e.Type, len(e.Data))
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
