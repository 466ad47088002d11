package raft

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Config.Validate refuses every impossible setting with its own error.
func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   error
	}{
		{"valid", func(*Config) {}, nil},
		{"zero ID", func(c *Config) { c.ID = 0 }, ErrConfigZeroID},
		{"zero heartbeat", func(c *Config) { c.HeartbeatTick = 0 }, ErrConfigHeartbeatTick},
		{"negative heartbeat", func(c *Config) { c.HeartbeatTick = -1 }, ErrConfigHeartbeatTick},
		{"election equals heartbeat", func(c *Config) { c.ElectionTick = 1 }, ErrConfigElectionTick},
		{"election below heartbeat", func(c *Config) { c.HeartbeatTick = 5; c.ElectionTick = 3 }, ErrConfigElectionTick},
		{"ID of a local storage thread", func(c *Config) { c.ID = LocalApplyThread }, ErrConfigLocalThreadID},
		{"very large election tick", func(c *Config) { c.ElectionTick = 1 << 30 }, nil},
		{"nil storage", func(c *Config) { c.Storage = nil }, ErrConfigNilStorage},
		{"zero inflight msgs", func(c *Config) { c.MaxInflightMsgs = 0 }, ErrConfigMaxInflightMsgs},
		{"inflight bytes below msg size", func(c *Config) { c.MaxSizePerMsg = 1000; c.MaxInflightBytes = 999 }, ErrConfigMaxInflightBytes},
		{"inflight bytes at msg size", func(c *Config) { c.MaxSizePerMsg = 1000; c.MaxInflightBytes = 1000 }, nil},
		{"unknown read-only option", func(c *Config) { c.ReadOnlyOption = 7 }, ErrConfigReadOnlyOption},
		{"lease reads without check quorum", func(c *Config) { c.ReadOnlyOption = ReadOnlyLeaseBased }, ErrConfigLeaseNeedsQuorum},
		{"lease reads with check quorum", func(c *Config) { c.ReadOnlyOption = ReadOnlyLeaseBased; c.CheckQuorum = true }, nil},
		{"negative snapshot timeout", func(c *Config) { c.SnapshotTimeout = -1 }, ErrConfigSnapshotTimeout},
		{"async storage writes", func(c *Config) { c.AsyncStorageWrites = true }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(1, NewMemoryStorage())
			c.MaxSizePerMsg = 1 << 20
			tt.change(c)
			err := c.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			// NewRawNode refuses the same config with the same error.
			_, err = NewRawNode(c)
			require.ErrorIs(t, err, tt.want)
		})
	}
}

// Validate fills in the documented defaults for limits left at zero and
// keeps the ones that were set.
func TestConfigValidateDefaults(t *testing.T) {
	c := &Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: NewMemoryStorage(), MaxInflightMsgs: 1}
	require.NoError(t, c.Validate())
	require.Equal(t, uint64(noLimit), c.MaxUncommittedEntriesSize)
	require.Equal(t, c.MaxSizePerMsg, c.MaxCommittedSizePerReady, "MaxSizePerMsg")
	require.Equal(t, 500, c.SnapshotTimeout, "50 election timeouts")
	require.NotNil(t, c.Logger)

	c = &Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: NewMemoryStorage(), MaxInflightMsgs: 1,
		MaxUncommittedEntriesSize: 10, MaxCommittedSizePerReady: 20, Logger: DiscardLogger}
	require.NoError(t, c.Validate())
	require.Equal(t, uint64(10), c.MaxUncommittedEntriesSize)
	require.Equal(t, uint64(20), c.MaxCommittedSizePerReady)
	require.Equal(t, DiscardLogger, c.Logger)
}

// A nil config is an error, not a nil dereference.
func TestNewRawNodeNilConfig(t *testing.T) {
	rn, err := NewRawNode(nil)
	require.Error(t, err)
	require.Nil(t, rn)
}
