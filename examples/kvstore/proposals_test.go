package main

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// A write the leader appended, cut off from the others, whose entry the
// next leader replaced, is answered 503 proposal_lost as soon as the old
// leader applies the other entry at its index: not leader_changed (which
// says "may or may not be applied") and not a timeout. Nothing applies it.
func TestWriteReplacedAfterLeaderChangeIsLost(t *testing.T) {
	const requestTimeout = 20 * time.Second
	var isolated atomic.Uint64
	c := newTestClusterWith(t, 3, func(cfg *memberConfig) {
		cfg.RequestTimeout = requestTimeout
		self := cfg.ID
		cfg.dropIncoming = func(msg pb.Message) bool {
			iso := isolated.Load()
			return iso != 0 && (self == iso || msg.From == iso)
		}
	})
	old := c.waitLeader()
	oldTerm := c.members[old].status.Load().Term
	put(t, c.url(old, "/kv/before"), "1")

	isolated.Store(old)
	answered := putLater(c.url(old, "/kv/lost"), "x")

	// The two others elect a leader of a later term, whose first entry
	// takes the index the old leader appended the write at.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var newLead uint64
		for id, m := range c.members {
			if st := m.status.Load(); id != old && st.State == "StateLeader" && st.Term > oldTerm {
				newLead = id
			}
		}
		if newLead != 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no new leader within 10s")
		time.Sleep(10 * time.Millisecond)
	}
	isolated.Store(0)

	requireLostAtOnce(t, answered, requestTimeout)

	// The claim holds: no member ever applies the write.
	put(t, c.url(c.waitLeader(), "/kv/after"), "2")
	for id := range c.members {
		require.Eventually(t, func() bool {
			return do(t, "GET", c.url(id, "/kv/after?consistency=stale"), "").status == http.StatusOK
		}, 10*time.Second, 10*time.Millisecond)
		require.Equal(t, http.StatusNotFound, do(t, "GET", c.url(id, "/kv/lost?consistency=stale"), "").status, "member %d applied the lost write", id)
	}
}

// A write taken by a follower and forwarded: the leader appends it and the
// follower sees the entry (so it waits at that index and term), but the
// entry does not commit; the leader and the follower are cut off, the
// three others elect a new leader, whose entry replaces it. Back in touch,
// the follower applies the other entry and answers 503 proposal_lost at
// once. Nothing applies the write.
func TestForwardedWriteReplacedIsLost(t *testing.T) {
	const requestTimeout = 20 * time.Second
	type filter func(self uint64, msg pb.Message) bool
	var drop atomic.Pointer[filter]
	c := newTestClusterWith(t, 5, func(cfg *memberConfig) {
		cfg.RequestTimeout = requestTimeout
		self := cfg.ID
		cfg.dropIncoming = func(msg pb.Message) bool {
			f := drop.Load()
			return f != nil && (*f)(self, msg)
		}
	})
	lead := c.waitLeader()
	oldTerm := c.members[lead].status.Load().Term
	var fol uint64
	for id := range c.members {
		if id != lead {
			fol = id
			break
		}
	}
	put(t, c.url(lead, "/kv/before"), "1")

	// The leader's appends reach the follower only, and the follower's
	// acknowledgements are lost: the entry cannot commit.
	onlyFollower := filter(func(self uint64, msg pb.Message) bool {
		return (msg.From == lead && self != fol && msg.Type == pb.MsgApp) || (msg.From == fol && self == lead && msg.Type == pb.MsgAppResp)
	})
	drop.Store(&onlyFollower)
	answered := putLater(c.url(fol, "/kv/lost"), "x")
	fm := c.members[fol]
	require.Eventually(t, func() bool {
		waiting := make(chan int, 1)
		if !fm.do(t.Context(), func() { waiting <- len(fm.atIndex) }) {
			return false
		}
		return <-waiting == 1
	}, 10*time.Second, 5*time.Millisecond, "the follower never learned where its forwarded write was appended")

	cutOff := filter(func(self uint64, msg pb.Message) bool {
		return self == lead || self == fol || msg.From == lead || msg.From == fol
	})
	drop.Store(&cutOff)
	require.Eventually(t, func() bool {
		for id, m := range c.members {
			if st := m.status.Load(); id != lead && id != fol && st.State == "StateLeader" && st.Term > oldTerm {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the three others elected no leader")
	drop.Store(nil)

	requireLostAtOnce(t, answered, requestTimeout)

	put(t, c.url(c.waitLeader(), "/kv/after"), "2")
	for id := range c.members {
		require.Eventually(t, func() bool {
			return do(t, "GET", c.url(id, "/kv/after?consistency=stale"), "").status == http.StatusOK
		}, 10*time.Second, 10*time.Millisecond)
		require.Equal(t, http.StatusNotFound, do(t, "GET", c.url(id, "/kv/lost?consistency=stale"), "").status, "member %d applied the lost write", id)
	}
}

func mustRequest(method, url, body string) *http.Request {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	return req
}

// timedAnswer is the answer to a request and how long it took.
type timedAnswer struct {
	r    response
	took time.Duration
}

// putLater sends PUT url with value in the background; its answer comes
// on the channel (status -1 with the error if there was none).
func putLater(url, value string) <-chan timedAnswer {
	answered := make(chan timedAnswer, 1)
	go func() {
		start := time.Now()
		resp, err := http.DefaultClient.Do(mustRequest("PUT", url, value))
		if err != nil {
			answered <- timedAnswer{r: response{status: -1, body: err.Error()}}
			return
		}
		defer resp.Body.Close()
		var b [4096]byte
		n, _ := resp.Body.Read(b[:])
		answered <- timedAnswer{r: response{status: resp.StatusCode, body: string(b[:n])}, took: time.Since(start)}
	}()
	return answered
}

// requireLostAtOnce waits for a write's answer, within 10s of the
// partition healing: 503 proposal_lost, well before the request timeout
// (answered when its index was applied).
func requireLostAtOnce(t *testing.T, answered <-chan timedAnswer, requestTimeout time.Duration) {
	t.Helper()
	var a timedAnswer
	select {
	case a = <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the write was not answered within 10s of the partition healing")
	}
	require.Equal(t, http.StatusServiceUnavailable, a.r.status, a.r.body)
	require.Equal(t, "proposal_lost", errorCode(t, a.r), a.r.body)
	require.Less(t, a.took, requestTimeout/2, "answered when the index was applied, not at the timeout")
}
