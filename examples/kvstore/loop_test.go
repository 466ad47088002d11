package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTickClock: a run of n ticks fires n intervals after the last
// delivered ticks fell due (not n intervals after it was planned, which
// would stretch an idle member's heartbeat interval by the time its loop
// spent on other input), and not before; planning the same run again
// (a wake for input) does not push it back; a shorter run planned once
// its time has passed (a shard woke) fires at once.
func TestTickClock(t *testing.T) {
	const interval = 40 * time.Millisecond
	c := newTickClock(interval)
	defer c.stop()
	<-c.timer.C
	c.fired()
	start := c.last

	time.Sleep(3 * interval) // the loop was busy with input
	c.plan(10)
	time.Sleep(3 * interval)
	c.plan(10) // more input, mid-run
	<-c.timer.C
	took := time.Since(start)
	require.GreaterOrEqual(t, took, 10*interval, "fired before the run was due")
	require.Less(t, took, 12*interval, "the run was timed from when it was planned")
	c.fired()
	require.Equal(t, start.Add(10*interval), c.last)

	c.plan(10)
	time.Sleep(3 * interval)
	c.plan(1) // a shard woke
	select {
	case <-c.timer.C:
	case <-time.After(interval / 2):
		t.Fatal("a run cut short did not fire at once")
	}
}
