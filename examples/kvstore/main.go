// Command kvstore is a replicated key-value server on raftcore: durable
// (package wal), networked (TCP between members, HTTP for clients), with
// membership changes through its API and linearizable reads.
//
// Try it: three members on loopback, data under a temporary directory
// removed at exit (with --data-dir DIR it is kept, and the same command
// restarts the cluster: the ports are recorded in DIR/local-cluster.json).
//
//	go run ./examples/kvstore --local-cluster 3
//
// Build it, from the repository root:
//
//	go build -o kvstore ./examples/kvstore
//
// Deploy it: one process per member.
//
//	kvstore --id 1 --data-dir /var/lib/kv1 --listen-client :2379 --listen-peer :2380 \
//	    --initial-cluster 1=host1:2380,2=host2:2380,3=host3:2380
//
// A member added later (POST /cluster/members on any member first) starts
// with --join and the addresses of the existing members.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kvstore:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("kvstore", flag.ContinueOnError)
	var (
		local          = fs.Int("local-cluster", 0, "start this many members in this process on loopback ports (try 3)")
		id             = fs.Uint64("id", 0, "this member's id")
		dataDir        = fs.String("data-dir", "", "directory for the member's log and snapshots (with --local-cluster: the parent of each member's; default a temporary one)")
		listenClient   = fs.String("listen-client", "127.0.0.1:0", "host:port for the HTTP API")
		listenPeer     = fs.String("listen-peer", "127.0.0.1:0", "host:port for other members")
		initialCluster = fs.String("initial-cluster", "", "id=host:port,... the members' peer addresses")
		join           = fs.Bool("join", false, "join an existing cluster (this member was added with POST /cluster/members)")
		inMemory       = fs.Bool("in-memory", false, "keep the log in memory (MemoryStorage) instead of the WAL: nothing survives a restart")
		snapEvery      = fs.Uint64("snapshot-every", 10000, "snapshot the state machine and compact the log every this many applied entries")
		maxKey         = fs.Int("max-key-size", 1024, "largest key in bytes")
		maxValue       = fs.Int("max-value-size", 1<<20, "largest value in bytes")
		timeout        = fs.Duration("request-timeout", 5*time.Second, "how long a request waits for the cluster before 503")
		tick           = fs.Duration("tick", 10*time.Millisecond, "Raft tick interval (election timeout is 10-20 ticks)")
		logLevel       = fs.String("log-level", "info", "debug, info, warn or error")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h: the usage is printed, and asking is no error
		}
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	base := memberConfig{
		DataDir: *dataDir, InMemory: *inMemory, ListenClient: *listenClient, ListenPeer: *listenPeer, Join: *join,
		SnapshotEvery: *snapEvery, MaxKeySize: *maxKey, MaxValueSize: *maxValue,
		RequestTimeout: *timeout, TickInterval: *tick, Logger: logger,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *local > 0 {
		return runLocalCluster(ctx, *local, base)
	}
	if *id == 0 {
		return errors.New("--id is required (or --local-cluster N)")
	}
	if *dataDir == "" && !*inMemory {
		return errors.New("--data-dir is required (or --in-memory)")
	}
	cluster, err := parseCluster(*initialCluster)
	if err != nil {
		return err
	}
	if _, ok := cluster[*id]; !ok && !*join {
		return fmt.Errorf("--initial-cluster must list this member (%d)", *id)
	}
	cfg := base
	cfg.ID, cfg.InitialCluster = *id, cluster
	m, err := startMember(cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	logger.Info("shutting down")
	m.stop()
	return nil
}

const usage = `Usage:
  kvstore --local-cluster N [--data-dir DIR]
	N members in this process on loopback ports, to try it out
  kvstore --id ID --data-dir DIR --listen-client HOST:PORT --listen-peer HOST:PORT --initial-cluster ID=HOST:PORT,...
	one member of a cluster (add --join for a member added later)

Flags:
`

// parseCluster parses "1=host:port,2=host:port".
func parseCluster(s string) (map[uint64]string, error) {
	out := map[uint64]string{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		idStr, addr, ok := strings.Cut(part, "=")
		id, err := strconv.ParseUint(idStr, 10, 64)
		if !ok || err != nil || id == 0 {
			return nil, fmt.Errorf("--initial-cluster: %q is not id=host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("--initial-cluster: %q: %w", part, err)
		}
		out[id] = addr
	}
	return out, nil
}
