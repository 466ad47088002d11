package raft_test

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	raft "github.com/raftcore/raft"
	"github.com/raftcore/raft/internal/describecases"
)

// TestDescribeMatchesEtcd checks that every Describe function prints, for
// each case of internal/describecases, exactly what etcd raft v3.6.0's
// prints (recorded in testdata/describe_etcd_v3.6.0.jsonl by
// bench/compare/cmd/describe-golden), so that an application's golden
// files and log parsers keep working after it moves over.
func TestDescribeMatchesEtcd(t *testing.T) {
	f, err := os.Open("testdata/describe_etcd_v3.6.0.jsonl")
	require.NoError(t, err)
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var g struct{ Name, Out string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &g))
		want[g.Name] = g.Out
	}
	require.NoError(t, sc.Err())

	cases := describecases.Cases()
	require.Len(t, want, len(cases), "the golden file is out of date: regenerate it (see bench/compare/cmd/describe-golden)")
	for _, c := range cases {
		exp, ok := want[c.Name]
		if !assert.True(t, ok, "no golden output for %q", c.Name) {
			continue
		}
		assert.Equal(t, exp, describe(c), c.Name)
	}
}

func describe(c describecases.Case) string {
	var f raft.EntryFormatter
	if c.Formatter {
		f = describecases.Format
	}
	switch c.Kind {
	case describecases.KindEntry:
		return raft.DescribeEntry(c.Entry, f)
	case describecases.KindEntries:
		return raft.DescribeEntries(c.Entries, f)
	case describecases.KindMessage:
		return raft.DescribeMessage(c.Message, f)
	case describecases.KindHardState:
		return raft.DescribeHardState(c.HardState)
	case describecases.KindSoftState:
		return raft.DescribeSoftState(c.SoftState)
	case describecases.KindConfState:
		return raft.DescribeConfState(c.ConfState)
	case describecases.KindSnapshot:
		return raft.DescribeSnapshot(c.Snapshot)
	case describecases.KindReady:
		return raft.DescribeReady(c.Ready, f)
	}
	panic("unknown kind " + string(c.Kind))
}
