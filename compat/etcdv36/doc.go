// Package etcdv36 checks that a program written against etcd raft v3.6's
// root package (go.etcd.io/raft/v3) works with raftcore once its import
// paths are changed, and nothing else. Its tests use only names and
// behaviour etcd raft v3.6 documents: they drive RawNodes and a Node the
// way an etcd raft application does and check the outcomes.
package etcdv36
