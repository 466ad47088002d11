package main

import raft "github.com/raftcore/raft"

// optInRaftcore sets what raftcore offers beyond its defaults for the
// three-voter workloads' Ready loop, which copies every message out before
// Advance: Config.ReuseReadyMessages.
func optInRaftcore(cfg *raft.Config) { cfg.ReuseReadyMessages = true }
