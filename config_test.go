package raft

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// validConfig is a config that passes Validate with every limit left at its
// zero value, so that the defaults can be observed.
func validConfig() *Config {
	return &Config{
		ID:              1,
		ElectionTick:    10,
		HeartbeatTick:   2,
		Storage:         NewMemoryStorage(),
		MaxInflightMsgs: 4,
		Logger:          DiscardLogger,
	}
}

// configErrorCase is one impossible setting and the error it must produce.
type configErrorCase struct {
	name   string
	errVar string // the name of the ErrConfig variable, to check coverage
	want   error
	change func(*Config) // nil: the config is a nil *Config
	// detail is text the error message must carry (the offending value),
	// or "" when the sentinel is returned bare.
	detail string
}

// apply returns c changed as the case says (nil for the nil config).
func (tt configErrorCase) apply(c *Config) *Config {
	if tt.change == nil {
		return nil
	}
	tt.change(c)
	return c
}

func configErrorCases() []configErrorCase {
	return []configErrorCase{
		{"nil config", "ErrConfigNil", ErrConfigNil, nil, ""},
		{"zero ID", "ErrConfigZeroID", ErrConfigZeroID,
			func(c *Config) { c.ID = None }, ""},
		{"ID of the local append thread", "ErrConfigLocalThreadID", ErrConfigLocalThreadID,
			func(c *Config) { c.ID = LocalAppendThread }, "(got 0xffffffffffffffff)"},
		{"ID of the local apply thread", "ErrConfigLocalThreadID", ErrConfigLocalThreadID,
			func(c *Config) { c.ID = LocalApplyThread }, "(got 0xfffffffffffffffe)"},
		{"zero heartbeat", "ErrConfigHeartbeatTick", ErrConfigHeartbeatTick,
			func(c *Config) { c.HeartbeatTick = 0 }, "(got 0)"},
		{"negative heartbeat", "ErrConfigHeartbeatTick", ErrConfigHeartbeatTick,
			func(c *Config) { c.HeartbeatTick = -3 }, "(got -3)"},
		{"election tick equal to heartbeat", "ErrConfigElectionTick", ErrConfigElectionTick,
			func(c *Config) { c.ElectionTick = 2 }, "ElectionTick 2, HeartbeatTick 2"},
		{"zero election tick", "ErrConfigElectionTick", ErrConfigElectionTick,
			func(c *Config) { c.ElectionTick = 0 }, "ElectionTick 0, HeartbeatTick 2"},
		{"election tick below heartbeat", "ErrConfigElectionTick", ErrConfigElectionTick,
			func(c *Config) { c.HeartbeatTick = 5; c.ElectionTick = 3 }, "ElectionTick 3, HeartbeatTick 5"},
		{"nil storage", "ErrConfigNilStorage", ErrConfigNilStorage,
			func(c *Config) { c.Storage = nil }, ""},
		{"negative snapshot timeout", "ErrConfigSnapshotTimeout", ErrConfigSnapshotTimeout,
			func(c *Config) { c.SnapshotTimeout = -1 }, "(got -1)"},
		{"zero inflight messages", "ErrConfigMaxInflightMsgs", ErrConfigMaxInflightMsgs,
			func(c *Config) { c.MaxInflightMsgs = 0 }, "(got 0)"},
		{"negative inflight messages", "ErrConfigMaxInflightMsgs", ErrConfigMaxInflightMsgs,
			func(c *Config) { c.MaxInflightMsgs = -1 }, "(got -1)"},
		{"inflight bytes below message size", "ErrConfigMaxInflightBytes", ErrConfigMaxInflightBytes,
			func(c *Config) { c.MaxSizePerMsg = 4096; c.MaxInflightBytes = 4095 },
			"MaxInflightBytes 4095, MaxSizePerMsg 4096"},
		{"inflight bytes with unlimited message size", "ErrConfigMaxInflightBytes", ErrConfigMaxInflightBytes,
			func(c *Config) { c.MaxSizePerMsg = math.MaxUint64; c.MaxInflightBytes = 1 << 30 }, ""},
		{"read-only option out of range", "ErrConfigReadOnlyOption", ErrConfigReadOnlyOption,
			func(c *Config) { c.ReadOnlyOption = ReadOnlyLeaseBased + 1 }, "(2)"},
		{"negative read-only option", "ErrConfigReadOnlyOption", ErrConfigReadOnlyOption,
			func(c *Config) { c.ReadOnlyOption = -1; c.CheckQuorum = true }, "(-1)"},
		{"lease-based reads without check quorum", "ErrConfigLeaseNeedsQuorum", ErrConfigLeaseNeedsQuorum,
			func(c *Config) { c.ReadOnlyOption = ReadOnlyLeaseBased }, ""},
		{"reused Ready messages with async storage writes", "ErrConfigReuseWithAsync", ErrConfigReuseWithAsync,
			func(c *Config) { c.ReuseReadyMessages, c.AsyncStorageWrites = true, true }, ""},
	}
}

// configErrorVars lists the ErrConfig variables declared in config.go, so
// that a new one without a case here fails the table test.
func configErrorVars(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, 0)
	require.NoError(t, err)
	var names []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, s := range gd.Specs {
			for _, n := range s.(*ast.ValueSpec).Names {
				if strings.HasPrefix(n.Name, "ErrConfig") {
					names = append(names, n.Name)
				}
			}
		}
	}
	sort.Strings(names)
	return names
}

// Every impossible setting is refused with its own ErrConfig error (checked
// with errors.Is), wrapped with the offending value where there is one, and
// a refused config is left as it was: no defaults are filled in.
func TestConfigValidateRefusesEachImpossibleSetting(t *testing.T) {
	cases := configErrorCases()
	covered := map[string]bool{}
	for _, tt := range cases {
		covered[tt.errVar] = true
	}
	var coveredNames []string
	for n := range covered {
		coveredNames = append(coveredNames, n)
	}
	sort.Strings(coveredNames)
	require.Equal(t, configErrorVars(t), coveredNames, "every ErrConfig error needs a case")

	all := []error{
		ErrConfigNil, ErrConfigZeroID, ErrConfigLocalThreadID, ErrConfigHeartbeatTick, ErrConfigElectionTick,
		ErrConfigNilStorage, ErrConfigSnapshotTimeout, ErrConfigMaxInflightMsgs, ErrConfigMaxInflightBytes,
		ErrConfigReadOnlyOption, ErrConfigLeaseNeedsQuorum, ErrConfigReuseWithAsync,
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.Logger = nil
			c = tt.apply(c)
			var before Config
			if c != nil {
				before = *c
			}
			var err error
			require.NotPanics(t, func() { err = c.Validate() })
			require.ErrorIs(t, err, tt.want)
			for _, other := range all {
				if other != tt.want {
					require.NotErrorIs(t, err, other, "only one error is reported")
				}
			}
			require.Contains(t, err.Error(), tt.want.Error())
			if tt.detail != "" {
				require.Contains(t, err.Error(), tt.detail)
			}
			if c != nil {
				require.Equal(t, before, *c, "a refused config is not modified")
			}
		})
	}
}

// Settings at the edge of what is allowed pass.
func TestConfigValidateAcceptsBoundaries(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*Config)
	}{
		{"defaults", func(*Config) {}},
		{"election tick one above heartbeat", func(c *Config) { c.HeartbeatTick = 1; c.ElectionTick = 2 }},
		{"election tick at the limit", func(c *Config) { c.ElectionTick = math.MaxInt32 / 2 }},
		{"inflight bytes equal to message size", func(c *Config) { c.MaxSizePerMsg = 4096; c.MaxInflightBytes = 4096 }},
		{"unlimited inflight bytes with unlimited messages", func(c *Config) { c.MaxSizePerMsg = math.MaxUint64 }},
		{"inflight bytes with one entry per message", func(c *Config) { c.MaxSizePerMsg = 0; c.MaxInflightBytes = 1 }},
		{"lease-based reads with check quorum", func(c *Config) { c.ReadOnlyOption = ReadOnlyLeaseBased; c.CheckQuorum = true }},
		{"one inflight message", func(c *Config) { c.MaxInflightMsgs = 1 }},
		{"explicit snapshot timeout", func(c *Config) { c.SnapshotTimeout = 1 }},
		{"async storage writes", func(c *Config) { c.AsyncStorageWrites = true }},
		{"every option", func(c *Config) {
			c.PreVote, c.CheckQuorum, c.StepDownOnRemoval = true, true, true
			c.DisableProposalForwarding, c.DisableConfChangeValidation = true, true
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(c)
			require.NoError(t, c.Validate())
			// A validated config validates again, unchanged.
			after := *c
			require.NoError(t, c.Validate())
			require.Equal(t, after, *c)
		})
	}
}

// Validate fills in every default its documentation names for a zero value,
// and leaves the limits whose zero value has a meaning of its own alone.
func TestConfigValidateFillsDocumentedDefaults(t *testing.T) {
	c := validConfig()
	c.Logger = nil
	require.NoError(t, c.Validate())

	require.Equal(t, uint64(math.MaxUint64), c.MaxUncommittedEntriesSize, "0 means no limit")
	require.Equal(t, c.MaxSizePerMsg, c.MaxCommittedSizePerReady, "0 means MaxSizePerMsg")
	require.Equal(t, 50*c.ElectionTick, c.SnapshotTimeout, "50 election timeouts")
	require.NotNil(t, c.Logger)
	require.Same(t, getLogger(), c.Logger, "the package logger")

	// Zero values with a documented meaning of their own stay zero.
	require.Zero(t, c.MaxSizePerMsg, "0 means one entry per message")
	require.Zero(t, c.MaxInflightBytes, "0 means no limit")
	require.Zero(t, c.Applied)
	require.Equal(t, ReadOnlySafe, c.ReadOnlyOption)
	require.Nil(t, c.RandomSource)

	// The node is built with the filled-in values.
	c = validConfig()
	rn, err := NewRawNode(c)
	require.NoError(t, err)
	require.Equal(t, uint64(noLimit), rn.raft.maxUncommittedSize)
	require.Equal(t, 500, rn.raft.snapshotTimeout)
	require.Equal(t, uint64(0), rn.raft.raftLog.maxApplyingEntsSize)

	c = validConfig()
	c.MaxSizePerMsg = 4096
	require.NoError(t, c.Validate())
	require.Equal(t, uint64(4096), c.MaxCommittedSizePerReady)
}

// With MaxCommittedSizePerReady left 0, the committed entries handed out
// at once are limited by MaxSizePerMsg, as in etcd raft (not unlimited).
func TestMaxCommittedSizePerReadyDefaultsToMaxSizePerMsg(t *testing.T) {
	const payload = 100
	n := newTestNode(t, 1, []uint64{1}, func(c *Config) { c.MaxSizePerMsg = 3 * payload })
	require.NoError(t, n.rn.Campaign())
	n.ready()
	require.Equal(t, StateLeader, n.r().state)
	for i := 0; i < 10; i++ {
		require.NoError(t, n.rn.Propose(make([]byte, payload)))
	}
	// Persist the proposals; Advance acknowledges them, which commits them.
	rd := n.rn.Ready()
	require.Len(t, rd.Entries, 10)
	require.NoError(t, n.storage.Append(rd.Entries))
	n.rn.Advance(rd)
	require.Equal(t, rd.Entries[9].Index, n.r().raftLog.committed)

	var batches []int
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		if len(rd.CommittedEntries) > 0 {
			batches = append(batches, len(rd.CommittedEntries))
			require.LessOrEqual(t, pb.EntriesSize(rd.CommittedEntries), uint64(3*payload),
				"committed entries within MaxSizePerMsg")
		}
		n.rn.Advance(rd)
	}
	require.Greater(t, len(batches), 3, "ten entries take several Readys: %v", batches)
}

// Limits that were set are kept as they are.
func TestConfigValidateKeepsSetValues(t *testing.T) {
	c := validConfig()
	c.MaxUncommittedEntriesSize = 7
	c.MaxCommittedSizePerReady = 11
	c.SnapshotTimeout = 13
	c.MaxSizePerMsg = 17
	c.MaxInflightBytes = 19
	c.Logger = DiscardLogger
	require.NoError(t, c.Validate())
	require.Equal(t, uint64(7), c.MaxUncommittedEntriesSize)
	require.Equal(t, uint64(11), c.MaxCommittedSizePerReady)
	require.Equal(t, 13, c.SnapshotTimeout)
	require.Equal(t, uint64(17), c.MaxSizePerMsg)
	require.Equal(t, uint64(19), c.MaxInflightBytes)
	require.Same(t, DiscardLogger, c.Logger)
}

// A very large ElectionTick is accepted (idle groups are kept quiet that
// way), and the timeouts derived from it saturate instead of overflowing
// int: the default snapshot timeout stays positive and the randomized
// election timeout stays at least ElectionTick.
func TestConfigVeryLargeElectionTick(t *testing.T) {
	for _, et := range []int{1 << 30, math.MaxInt32, math.MaxInt / 2, math.MaxInt} {
		c := validConfig()
		c.ElectionTick = et
		require.NoError(t, c.Validate(), "ElectionTick %d", et)
		require.GreaterOrEqual(t, c.SnapshotTimeout, c.ElectionTick, "ElectionTick %d", et)

		rn, err := NewRawNode(c)
		require.NoError(t, err)
		r := rn.raft
		for i := 0; i < 100; i++ {
			r.resetRandomizedElectionTimeout()
			require.GreaterOrEqual(t, r.randomizedElectionTimeout, et, "ElectionTick %d", et)
		}
		if et <= math.MaxInt/2 {
			require.Less(t, r.randomizedElectionTimeout, 2*et)
		}
	}
}

// NewRawNode refuses a bad config with the error of Validate and a nil node,
// without panicking, even when the config has no storage to read.
func TestNewRawNodeReturnsConfigValidateError(t *testing.T) {
	for _, tt := range configErrorCases() {
		t.Run(tt.name, func(t *testing.T) {
			wantMsg := tt.apply(validConfig()).Validate().Error()
			c := tt.apply(validConfig())
			var rn *RawNode
			var err error
			require.NotPanics(t, func() { rn, err = NewRawNode(c) })
			require.ErrorIs(t, err, tt.want)
			require.EqualError(t, err, wantMsg)
			require.Nil(t, rn)
		})
	}
}

// Config starts with etcd raft v3.6's fields, in its order and with its
// types, so that code written for etcd raft (even an unkeyed literal of
// them) means the same here; raftcore's own fields come after.
func TestConfigFieldsFollowEtcd(t *testing.T) {
	etcd := []string{
		"ID uint64", "ElectionTick int", "HeartbeatTick int", "Storage raft.Storage", "Applied uint64",
		"AsyncStorageWrites bool", "MaxSizePerMsg uint64", "MaxCommittedSizePerReady uint64",
		"MaxUncommittedEntriesSize uint64", "MaxInflightMsgs int", "MaxInflightBytes uint64",
		"CheckQuorum bool", "PreVote bool", "ReadOnlyOption raft.ReadOnlyOption", "Logger raft.Logger",
		"DisableProposalForwarding bool", "DisableConfChangeValidation bool", "StepDownOnRemoval bool",
		"TraceLogger raft.TraceLogger",
	}
	typ := reflect.TypeOf(Config{})
	var fields []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		fields = append(fields, fmt.Sprintf("%s %s", f.Name, f.Type))
	}
	require.GreaterOrEqual(t, len(fields), len(etcd))
	require.Equal(t, etcd, fields[:len(etcd)])
	require.Equal(t, []string{"SnapshotTimeout int", "RandomSource rand.Source", "ReuseReadyMessages bool"}, fields[len(etcd):])
}

// A node whose ElectionTick is very large (as applications give idle
// groups) works: ticks do not make it campaign, an explicit campaign
// elects it, and it replicates.
func TestVeryLargeElectionTickCluster(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.ElectionTick = 1 << 30 })
	c.tickAll(100)
	require.Empty(t, c.leaders())
	c.campaign(2)
	require.Equal(t, []uint64{2}, c.leaders())
	c.tickAll(5) // heartbeats
	require.NoError(t, c.nodes[2].rn.Propose([]byte("x")))
	c.stabilize()
	for _, id := range c.ids {
		n := c.nodes[id]
		require.Equal(t, []byte("x"), n.applied[len(n.applied)-1].Data, "node %d", id)
		require.GreaterOrEqual(t, n.r().randomizedElectionTimeout, 1<<30)
	}
}

// A nil config is an error, not a nil dereference, for NewRawNode as for
// Validate.
func TestNewRawNodeNilConfig(t *testing.T) {
	rn, err := NewRawNode(nil)
	require.ErrorIs(t, err, ErrConfigNil)
	require.Nil(t, rn)
}
