package apisurface

import (
	"flag"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// etcdAPIFile lists the exported API of etcd raft v3.6.0's packages that
// raftcore stands in for, as Dump prints it.
const etcdAPIFile = "testdata/etcd-raft-v3.6.0.api"

var etcdDir = flag.String("etcd.dir", "", "rewrite "+etcdAPIFile+" from the etcd raft module required by the module in this directory")

var (
	ourPackages = []string{
		"github.com/raftcore/raft",
		"github.com/raftcore/raft/raftpb",
		"github.com/raftcore/raft/tracker",
		"github.com/raftcore/raft/quorum",
		"github.com/raftcore/raft/confchange",
	}
	etcdPackages = []string{
		"go.etcd.io/raft/v3",
		"go.etcd.io/raft/v3/raftpb",
		"go.etcd.io/raft/v3/tracker",
		"go.etcd.io/raft/v3/quorum",
		"go.etcd.io/raft/v3/confchange",
	}
)

var fieldLine = regexp.MustCompile(`^(\w+: field (\w+)\.\w+ .*)  #\d+$`)

// TestSupersetOfEtcdRaftV36 checks that every exported name of etcd raft
// v3.6 exists in raftcore with the same signature, and that each struct
// declares etcd's exported fields first, in etcd's order (unkeyed
// literals and JSON output depend on it); raftcore may add more after.
func TestSupersetOfEtcdRaftV36(t *testing.T) {
	if *etcdDir != "" {
		lines, err := Dump(*etcdDir, etcdPackages...)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(etcdAPIFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	}
	data, err := os.ReadFile(etcdAPIFile)
	require.NoError(t, err)
	etcd := strings.Split(strings.TrimSpace(string(data)), "\n")
	ours, err := Dump(".", ourPackages...)
	require.NoError(t, err)

	have := map[string]bool{}
	oursFields := map[string][]string{} // struct -> fields in order
	for _, l := range ours {
		if m := fieldLine.FindStringSubmatch(l); m != nil {
			have[m[1]] = true
			key := strings.SplitN(l, ":", 2)[0] + "." + m[2]
			oursFields[key] = append(oursFields[key], m[1])
			continue
		}
		have[l] = true
	}
	etcdFields := map[string][]string{}
	var missing []string
	for _, l := range etcd {
		if m := fieldLine.FindStringSubmatch(l); m != nil {
			key := strings.SplitN(l, ":", 2)[0] + "." + m[2]
			etcdFields[key] = append(etcdFields[key], m[1])
			l = m[1]
		}
		if !have[l] {
			missing = append(missing, l)
		}
	}
	require.Empty(t, missing, "etcd raft v3.6 declarations raftcore lacks or declares differently")
	for key, want := range etcdFields {
		sortByPosition(want, etcd)
		got := oursFields[key]
		sortByPosition(got, ours)
		require.GreaterOrEqual(t, len(got), len(want), key)
		require.Equal(t, want, got[:len(want)], "%s: etcd raft's fields must come first, in its order", key)
	}
}

// sortByPosition orders field lines by their position as listed in all.
func sortByPosition(fields, all []string) {
	pos := map[string]int{}
	for _, l := range all {
		if m := fieldLine.FindStringSubmatch(l); m != nil {
			n, err := strconv.Atoi(l[strings.LastIndex(l, "#")+1:])
			if err != nil {
				panic(err)
			}
			pos[m[1]] = n
		}
	}
	slices.SortFunc(fields, func(a, b string) int { return pos[a] - pos[b] })
}
