// Package raftpb holds raftcore's wire types: log entries, messages, hard
// state, snapshots and configuration changes, generated from raft.proto with
// gogo/protobuf (no reflection at run time). The encoding is compatible with
// etcd raft's raftpb, so nodes of both can share a cluster.
//
// Besides the generated code it offers small helpers: ConfChangeI over both
// conf change forms, MarshalConfChange, ConfState.Equivalent, and entry size
// helpers used by flow control.
package raftpb
