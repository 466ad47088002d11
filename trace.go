package raft

// StateTraceDeployed reports whether this build traces state-machine
// events to Config.TraceLogger. raftcore has no tracing build: it is always
// false, and TraceLogger is never called.
const StateTraceDeployed = false

// TraceLogger is the type of Config.TraceLogger. It exists so that
// configurations written for etcd raft, which can trace state-machine
// events to a TraceLogger in a tracing build, compile unchanged. Any value
// is accepted; raftcore never calls it.
type TraceLogger interface{}

// TracingEvent is a traced state-machine event. It is empty because no
// build of raftcore traces (see StateTraceDeployed).
type TracingEvent struct{}
