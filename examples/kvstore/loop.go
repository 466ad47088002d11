package main

import (
	"context"
	"log/slog"
	"time"
)

// loop is what a member's Ready loop shares with the goroutines that hand
// it work (HTTP handlers, the transport): its inbox of functions to run,
// and how it stops, on request or on a failure it cannot go on from. Both
// kinds of member (one group, or shards) embed it.
type loop struct {
	inbox chan func() // work for the loop, from HTTP handlers
	stopC chan struct{}
	doneC chan struct{}
	// failedC is closed when the loop stopped on a failure it cannot go on
	// from (failure says which): the member then serves nothing.
	failedC chan struct{}
	failure error
}

// newLoop returns a loop whose inbox holds up to queue functions.
func newLoop(queue int) loop {
	return loop{
		inbox:   make(chan func(), queue),
		stopC:   make(chan struct{}),
		doneC:   make(chan struct{}),
		failedC: make(chan struct{}),
	}
}

// do runs f on the loop goroutine; false if the member is stopping or
// stopped on a failure.
func (l *loop) do(ctx context.Context, f func()) bool {
	select {
	case <-l.failedC:
		return false
	default:
	}
	select {
	case l.inbox <- f:
		return true
	case <-ctx.Done():
		return false
	case <-l.stopC:
		return false
	case <-l.failedC:
		return false
	}
}

// call runs f on the loop goroutine and waits for it to return; false if
// the member is stopping or stopped on a failure, or ctx ended first (f
// may then still run).
func (l *loop) call(ctx context.Context, f func()) bool {
	done := make(chan struct{})
	if !l.do(ctx, func() { f(); close(done) }) {
		return false
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
	case <-l.stopC:
	case <-l.failedC:
	}
	return false
}

// recoverFailure, deferred in the loop goroutine, turns a fatal failure
// into a clean stop: one error line, every waiting request answered with
// failAll, the member serving nothing more (Failed is closed; main exits).
// Any other panic is a bug and goes on.
func (l *loop) recoverFailure(log *slog.Logger, failAll func(error)) {
	p := recover()
	if p == nil {
		return
	}
	f, ok := p.(memberFailure)
	if !ok {
		panic(p)
	}
	l.failure = f.err
	log.Error("member stopped: "+f.err.Error(), "err", f.err)
	failAll(errFailed)
	close(l.failedC)
}

// stoppedErr says why the loop no longer takes work.
func (l *loop) stoppedErr() error {
	if l.Failure() != nil {
		return errFailed
	}
	return errStopped
}

// Failed is closed when the member stopped on a failure; Failure then
// says which.
func (l *loop) Failed() <-chan struct{} { return l.failedC }

// Failure is the failure the member stopped on, once Failed is closed.
func (l *loop) Failure() error {
	select {
	case <-l.failedC:
		return l.failure
	default:
		return nil
	}
}

// next waits for the Ready loop's next input and handles it: tick on the
// ticker, a function from the inbox, step for what a peer sent, report for
// what the transport says. It returns false when the member is asked to
// stop.
func next[T any](l *loop, ticks <-chan time.Time, tick func(), recv <-chan T, step func(T), reports <-chan report, report func(report)) bool {
	select {
	case <-ticks:
		tick()
	case f := <-l.inbox:
		f()
	case in := <-recv:
		step(in)
	case r := <-reports:
		report(r)
	case <-l.stopC:
		return false
	}
	return true
}

// drain handles the inputs already waiting (up to 1024), so that one Ready,
// and one write to storage, carries many proposals.
func drain[T any](l *loop, recv <-chan T, step func(T), reports <-chan report, report func(report)) {
	for range 1024 {
		select {
		case f := <-l.inbox:
			f()
		case in := <-recv:
			step(in)
		case r := <-reports:
			report(r)
		default:
			return
		}
	}
}

// tickClock times a Ready loop's ticks: it fires every interval while the
// loop wants every tick, and once per run of n ticks (plan) when the ticks
// before the last of the run would do nothing (multiraft.Host.IdleTicks),
// so that an idle member sleeps through them and delivers the run at once.
type tickClock struct {
	interval time.Duration
	timer    *time.Timer
	// last is when the ticks delivered so far fell due.
	last time.Time
	// due is how many ticks the timer's next firing delivers; armed, that
	// it is set for them.
	due   int
	armed bool
}

func newTickClock(interval time.Duration) *tickClock {
	return &tickClock{interval: interval, timer: time.NewTimer(interval), last: time.Now(), due: 1, armed: true}
}

// fired records that the timer fired and its due ticks were delivered. A
// loop too busy to take them in time loses the ticks it missed, as with a
// time.Ticker: late ticks only delay timers.
func (c *tickClock) fired() {
	c.armed = false
	c.last = c.last.Add(time.Duration(c.due) * c.interval)
	if now := time.Now(); now.Sub(c.last) > c.interval {
		c.last = now
	}
}

// plan sets the timer to deliver the next n ticks (n >= 1) when the last
// of them falls due. A run cut short (input woke a shard) loses the ticks
// already slept through, but for the one delivered at once.
func (c *tickClock) plan(n int) {
	if c.armed && n == c.due {
		return
	}
	c.due, c.armed = n, true
	c.timer.Reset(time.Until(c.last.Add(time.Duration(n) * c.interval)))
}

func (c *tickClock) stop() { c.timer.Stop() }
