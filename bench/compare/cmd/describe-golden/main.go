// Command describe-golden writes what etcd raft v3.6's Describe functions
// print for each case of internal/describecases, one JSON object per line.
// raftcore's TestDescribeMatchesEtcd compares its own output with the file:
//
//	cd bench/compare && go run ./cmd/describe-golden -o ../../testdata/describe_etcd_v3.6.0.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/raftcore/raft/internal/describecases"
	rcpb "github.com/raftcore/raft/raftpb"
	etcd "go.etcd.io/raft/v3"
	etcdpb "go.etcd.io/raft/v3/raftpb"
)

// Golden is one line of the output file.
type Golden struct {
	Name string `json:"name"`
	Out  string `json:"out"`
}

func main() {
	out := flag.String("o", "", "output file (default stdout)")
	flag.Parse()
	w := os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, c := range describecases.Cases() {
		if err := enc.Encode(Golden{Name: c.Name, Out: describe(c)}); err != nil {
			log.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		log.Fatal(err)
	}
}

// convert re-decodes a raftcore wire type as the etcd one (the two are
// wire-compatible).
func convert[T any, PT interface {
	*T
	Unmarshal([]byte) error
}](m interface{ Marshal() ([]byte, error) }) T {
	b, err := m.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	var v T
	if err := PT(&v).Unmarshal(b); err != nil {
		log.Fatal(err)
	}
	return v
}

func entries(ents []rcpb.Entry) []etcdpb.Entry {
	if ents == nil {
		return nil
	}
	out := make([]etcdpb.Entry, len(ents))
	for i := range ents {
		out[i] = convert[etcdpb.Entry](&ents[i])
	}
	return out
}

func messages(msgs []rcpb.Message) []etcdpb.Message {
	if msgs == nil {
		return nil
	}
	out := make([]etcdpb.Message, len(msgs))
	for i := range msgs {
		out[i] = convert[etcdpb.Message](&msgs[i])
	}
	return out
}

func describe(c describecases.Case) string {
	var f etcd.EntryFormatter
	if c.Formatter {
		f = describecases.Format
	}
	switch c.Kind {
	case describecases.KindEntry:
		return etcd.DescribeEntry(convert[etcdpb.Entry](&c.Entry), f)
	case describecases.KindEntries:
		return etcd.DescribeEntries(entries(c.Entries), f)
	case describecases.KindMessage:
		return etcd.DescribeMessage(convert[etcdpb.Message](&c.Message), f)
	case describecases.KindHardState:
		return etcd.DescribeHardState(convert[etcdpb.HardState](&c.HardState))
	case describecases.KindSoftState:
		return etcd.DescribeSoftState(etcd.SoftState{Lead: c.SoftState.Lead, RaftState: etcd.StateType(c.SoftState.RaftState)})
	case describecases.KindConfState:
		return etcd.DescribeConfState(convert[etcdpb.ConfState](&c.ConfState))
	case describecases.KindSnapshot:
		return etcd.DescribeSnapshot(convert[etcdpb.Snapshot](&c.Snapshot))
	case describecases.KindReady:
		rd := c.Ready
		var erd etcd.Ready
		if rd.SoftState != nil {
			erd.SoftState = &etcd.SoftState{Lead: rd.SoftState.Lead, RaftState: etcd.StateType(rd.SoftState.RaftState)}
		}
		erd.HardState = convert[etcdpb.HardState](&rd.HardState)
		for _, rs := range rd.ReadStates {
			erd.ReadStates = append(erd.ReadStates, etcd.ReadState{Index: rs.Index, RequestCtx: rs.RequestCtx})
		}
		erd.Entries = entries(rd.Entries)
		erd.Snapshot = convert[etcdpb.Snapshot](&rd.Snapshot)
		erd.CommittedEntries = entries(rd.CommittedEntries)
		erd.Messages = messages(rd.Messages)
		erd.MustSync = rd.MustSync
		return etcd.DescribeReady(erd, f)
	}
	panic(fmt.Sprintf("unknown kind %q", c.Kind))
}
