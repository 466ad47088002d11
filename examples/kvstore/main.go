// Command kvstore is a replicated key-value server on raftcore: durable
// (package wal), networked (TCP between members, HTTP for clients), with
// membership changes through its API and linearizable reads.
//
// Try it: three members on loopback, data under a temporary directory
// removed at exit (with --data-dir DIR it is kept, and the same command
// restarts the cluster: the ports are recorded in DIR/local-cluster.json).
// --local-cluster-tls adds TLS with a throwaway CA.
//
//	go run ./examples/kvstore --local-cluster 3
//
// Build it, from the repository root:
//
//	go build -o kvstore ./examples/kvstore
//
// Deploy it: one process per member, with TLS (mutual TLS between members:
// a peer certificate names its member with a URI SAN kvstore://member/<id>;
// HTTPS for clients). Without TLS a member listens on loopback only, unless
// --insecure.
//
//	kvstore --id 1 --data-dir /var/lib/kv1 --listen-client :2379 --listen-peer :2380 \
//	    --initial-cluster 1=host1:2380,2=host2:2380,3=host3:2380 \
//	    --peer-cert-file member1.crt --peer-key-file member1.key --peer-trusted-ca-file peer-ca.crt \
//	    --cert-file server1.crt --key-file server1.key --trusted-ca-file client-ca.crt
//
// A member added later (POST /cluster/members on any member first) starts
// with --join and the addresses of the existing members.
//
// With --shards N (the same N on every member) keys are hashed to N Raft
// groups, all hosted by every member in one multiraft.Host (sharded.go);
// a membership change applies to every shard (sharded_membership.go).
package main

import (
	"context"
	"crypto/x509"
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
		shards         = fs.Int("shards", 1, "hash keys to this many Raft groups, every member hosting all of them (the same on every member)")
		logLevel       = fs.String("log-level", "info", "debug, info, warn or error")
		localTLS       = fs.Bool("local-cluster-tls", false, "with --local-cluster: TLS on both ports, with a throwaway CA and certificates made in the data directory")
		insecure       = fs.Bool("insecure", false, "allow a port without TLS on an address other machines can reach")
		files          tlsFiles
	)
	fs.StringVar(&files.PeerCert, "peer-cert-file", "", "this member's certificate for mutual TLS between members (PEM); it must name the member with a URI SAN "+memberURIPrefix+"<id> and allow serverAuth and clientAuth")
	fs.StringVar(&files.PeerKey, "peer-key-file", "", "the key of --peer-cert-file (PEM)")
	fs.StringVar(&files.PeerCA, "peer-trusted-ca-file", "", "the CA the other members' certificates must chain to (PEM)")
	fs.StringVar(&files.Cert, "cert-file", "", "certificate of the client (HTTP) port: HTTPS (PEM)")
	fs.StringVar(&files.Key, "key-file", "", "the key of --cert-file (PEM)")
	fs.StringVar(&files.CA, "trusted-ca-file", "", "require client certificates that chain to this CA (PEM) on the client port")
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
		RequestTimeout: *timeout, TickInterval: *tick, Shards: *shards, Logger: logger,
	}
	if *shards < 1 {
		return fmt.Errorf("--shards must be at least 1, not %d", *shards)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *local > 0 {
		if files != (tlsFiles{}) {
			return errors.New("--local-cluster makes its own certificates (--local-cluster-tls): the TLS file flags are for one member")
		}
		return runLocalCluster(ctx, *local, base, *localTLS)
	}
	if *localTLS {
		return errors.New("--local-cluster-tls goes with --local-cluster")
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
	if cfg.TLS, err = files.load(); err != nil {
		return err
	}
	if err := checkTLS(cfg, *insecure); err != nil {
		return err
	}
	m, err := startServer(cfg)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
		m.stop()
		return nil
	case <-m.Failed():
		m.stop()
		return fmt.Errorf("member %d stopped: %w", cfg.ID, m.Failure())
	}
}

// server is a running member: one group (member) or, with --shards above
// 1, many (shardedMember).
type server interface {
	Failed() <-chan struct{}
	Failure() error
	stop()
}

// startServer starts the member cfg asks for.
func startServer(cfg memberConfig) (server, error) {
	if !cfg.InMemory {
		if err := checkShardLayout(cfg.DataDir, cfg.Shards); err != nil {
			return nil, err
		}
	}
	if cfg.Shards > 1 {
		return startShardedMember(cfg)
	}
	return startMember(cfg)
}

// checkTLS refuses a port without TLS that other machines can reach
// (unless insecure) and a peer certificate that names another member, and
// logs how each port is protected.
func checkTLS(cfg memberConfig, insecure bool) error {
	if p := cfg.TLS.Peer; p != nil {
		leaf, err := x509.ParseCertificate(p.cert.Certificate[0])
		if err != nil {
			return fmt.Errorf("--peer-cert-file: %w", err)
		}
		named, err := memberIDOf(leaf)
		if err != nil {
			return fmt.Errorf("--peer-cert-file: %w", err)
		}
		if named != cfg.ID {
			return fmt.Errorf("--peer-cert-file names member %d, but this is member %d (--id)", named, cfg.ID)
		}
	}
	ports := []struct {
		flag, addr, risk, tlsFlags string
		tls                        bool
	}{
		{"--listen-peer", cfg.ListenPeer, "speak for a member", "--peer-cert-file, --peer-key-file and --peer-trusted-ca-file", cfg.TLS.Peer != nil},
		{"--listen-client", cfg.ListenClient, "read and write every key", "--cert-file and --key-file (and --trusted-ca-file)", cfg.TLS.Client != nil},
	}
	for _, p := range ports {
		switch {
		case p.tls:
			cfg.Logger.Info("TLS on", "port", p.flag, "addr", p.addr)
		case isLoopback(p.addr):
			cfg.Logger.Info("no TLS: this machine only", "port", p.flag, "addr", p.addr)
		default:
			if err := checkPlainListen(p.flag, p.addr, p.risk, p.tlsFlags, insecure); err != nil {
				return err
			}
			cfg.Logger.Warn("no TLS on an address other machines can reach (--insecure): anyone who reaches it can "+p.risk, "port", p.flag, "addr", p.addr)
		}
	}
	return nil
}

const usage = `Usage:
  kvstore --local-cluster N [--data-dir DIR] [--local-cluster-tls]
	N members in this process on loopback ports, to try it out
  kvstore --id ID --data-dir DIR --listen-client HOST:PORT --listen-peer HOST:PORT --initial-cluster ID=HOST:PORT,... [TLS flags]
	one member of a cluster (add --join for a member added later); without
	TLS it listens on loopback only, unless --insecure

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
