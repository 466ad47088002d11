// Package etcdv36 checks that a program written against etcd raft v3.6
// (go.etcd.io/raft/v3 and its subpackages) works with raftcore once its
// import paths are changed, and nothing else. Its tests use only names and
// behaviour etcd raft v3.6 documents: they drive RawNodes and a Node the
// way an etcd raft application does and check the outcomes. With the
// import paths changed back, they pass against etcd raft v3.6.0 itself;
// where raftcore documents a difference (MIGRATING.md), they check
// neither library's side of it.
package etcdv36
