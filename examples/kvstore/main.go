// Command kvstore is a replicated key-value server on raftcore: durable
// (package wal), networked (TCP between members, HTTP for clients), with
// membership changes through its API and linearizable reads.
//
// Try it: three members on loopback, data under a temporary directory.
//
//	go run ./examples/kvstore --local-cluster 3
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
	"path/filepath"
	"sort"
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
	if err := fs.Parse(args); err != nil {
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

// runLocalCluster starts n members in this process on loopback ports.
func runLocalCluster(ctx context.Context, n int, base memberConfig) error {
	if base.DataDir == "" {
		dir, err := os.MkdirTemp("", "kvstore-")
		if err != nil {
			return err
		}
		base.DataDir = dir
	}
	// Reserve the peer ports first: every member must know them all.
	cluster := map[uint64]string{}
	var listeners []net.Listener
	for i := 1; i <= n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		listeners = append(listeners, l)
		cluster[uint64(i)] = l.Addr().String()
	}
	for _, l := range listeners {
		l.Close()
	}
	var members []*member
	defer func() {
		for _, m := range members {
			m.stop()
		}
	}()
	for i := 1; i <= n; i++ {
		cfg := base
		cfg.ID, cfg.InitialCluster = uint64(i), cluster
		cfg.ListenPeer = cluster[uint64(i)]
		cfg.ListenClient = "127.0.0.1:0"
		cfg.DataDir = filepath.Join(base.DataDir, fmt.Sprint("member-", i))
		m, err := startMember(cfg)
		if err != nil {
			return fmt.Errorf("member %d: %w", i, err)
		}
		members = append(members, m)
	}
	ids := make([]int, 0, n)
	for i := range members {
		ids = append(ids, i)
	}
	sort.Ints(ids)
	fmt.Printf("%d members, data under %s\n", n, base.DataDir)
	for _, i := range ids {
		fmt.Printf("  member %d: client http://%s  peer %s\n", i+1, members[i].clientL.Addr(), cluster[uint64(i+1)])
	}
	first := members[0].clientL.Addr()
	fmt.Printf("\ntry:\n  curl -X PUT -d world http://%s/kv/hello && curl http://%s/kv/hello\n  curl http://%s/cluster\n\nCtrl-C stops the cluster.\n", first, members[n-1].clientL.Addr(), first)
	<-ctx.Done()
	fmt.Println("\nshutting down")
	return nil
}
