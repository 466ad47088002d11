package main

import raft "go.etcd.io/raft/v3"

// optInEtcd is optInRaftcore's counterpart: etcd raft has no such option,
// so the opt-in rows compare against its default.
func optInEtcd(*raft.Config) {}
