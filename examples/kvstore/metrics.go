package main

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a member's Prometheus metrics, served on /metrics.
type metrics struct {
	registry *prometheus.Registry

	proposals        prometheus.Counter
	proposalsFailed  prometheus.Counter
	proposalsLost    prometheus.Counter
	committed        prometheus.Counter
	applied          prometheus.Gauge
	term             prometheus.Gauge
	isLeader         prometheus.Gauge
	removed          prometheus.Gauge
	leaderChanges    prometheus.Counter
	readyLatency     prometheus.Histogram
	readIndex        prometheus.Counter
	snapshots        prometheus.Counter
	peerMessagesSent prometheus.Counter
	peerSendFailures prometheus.Counter
	peerBadFrames    prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		proposals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvstore_proposals_total", Help: "Writes and membership changes this member proposed.",
		}),
		proposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvstore_proposals_failed_total", Help: "Proposals refused at once (no leader, transfer in progress).",
		}),
		proposalsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvstore_proposals_lost_total", Help: "Proposals whose log entry was replaced by another after a leader change (answered proposal_lost).",
		}),
		committed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvstore_committed_entries_total", Help: "Committed entries handed to the state machine.",
		}),
		applied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvstore_applied_index", Help: "Index of the last entry applied to the state machine.",
		}),
		term: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvstore_raft_term", Help: "Current Raft term.",
		}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvstore_is_leader", Help: "1 when this member is the leader.",
		}),
		removed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvstore_member_removed", Help: "1 once this member has applied its own removal from the cluster.",
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvstore_leader_changes_total", Help: "Times this member saw the leader change.",
		}),
		readyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvstore_ready_seconds",
			Help:    "Time to handle one Ready: persist (with fsync), send, apply, advance.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		readIndex: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvstore_read_index_total", Help: "Linearizable reads started (ReadIndex).",
		}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvstore_snapshots_total", Help: "Snapshots of the state machine taken (log compactions).",
		}),
		peerMessagesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvstore_peer_messages_sent_total", Help: "Raft messages written to peer connections.",
		}),
		peerSendFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvstore_peer_send_failures_total", Help: "Batches of messages that could not be sent to a peer.",
		}),
		peerBadFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvstore_peer_bad_frames_total", Help: "Peer connections closed for malformed input.",
		}),
	}
	m.registry.MustRegister(m.proposals, m.proposalsFailed, m.proposalsLost, m.committed, m.applied, m.term, m.isLeader, m.removed,
		m.leaderChanges, m.readyLatency, m.readIndex, m.snapshots, m.peerMessagesSent, m.peerSendFailures, m.peerBadFrames)
	return m
}
