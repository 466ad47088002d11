package rafttest

// NowForTest returns the tick the simulation is at, for tests that check
// when a server's functions run.
func (e *ServerEnv) NowForTest() int64 { return e.run.now }
