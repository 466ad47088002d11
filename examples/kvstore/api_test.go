package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestKeysAreBytes: keys and values round-trip byte for byte, bytes that
// are not UTF-8 included, and two keys that differ only there are two
// keys.
func TestKeysAreBytes(t *testing.T) {
	c := newTestCluster(t, 3)
	value := "\xff\x00v\xe9"
	r := do(t, "PUT", c.url(1, "/kv/caf%E9"), value)
	require.Equal(t, 200, r.status, r.body)
	for id := uint64(1); id <= 3; id++ {
		r = do(t, "GET", c.url(id, "/kv/caf%E9"), "")
		require.Equal(t, 200, r.status, r.body)
		require.Equal(t, value, r.body)
	}
	r = do(t, "PUT", c.url(2, "/kv/k%E8"), "first")
	require.Equal(t, 200, r.status, r.body)
	require.Contains(t, r.body, `"created":true`)
	r = do(t, "PUT", c.url(2, "/kv/k%E9"), "second")
	require.Equal(t, 200, r.status, r.body)
	require.Contains(t, r.body, `"created":true`, "k\\xe9 is not k\\xe8")
	require.Equal(t, "first", do(t, "GET", c.url(3, "/kv/k%E8"), "").body)
	require.Equal(t, "second", do(t, "GET", c.url(3, "/kv/k%E9"), "").body)
	_, ok, _ := c.members[3].sm.get("k\uFFFD")
	require.False(t, ok, "no key was replaced by U+FFFD")

	// An error that names a key quotes it without losing bytes.
	r = do(t, "GET", c.url(1, "/kv/k%EA"), "")
	require.Equal(t, 404, r.status)
	var e apiError
	require.NoError(t, json.Unmarshal([]byte(r.body), &e))
	require.Equal(t, "key_not_found", e.Code)
	require.Contains(t, e.Error, `"k\xea"`)
}
