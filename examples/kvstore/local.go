package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
)

// localClusterFile, in a --local-cluster data directory, keeps the
// members' addresses: they are in the members' data too (each member dials
// the peer addresses its log recorded), so a restart must use them again.
const localClusterFile = "local-cluster.json"

// localCluster is the content of localClusterFile.
type localCluster struct {
	Members []localMember `json:"members"`
}

type localMember struct {
	ID     uint64 `json:"id"`
	Peer   string `json:"peer"`
	Client string `json:"client"`
}

// runLocalCluster starts n members in this process on loopback ports, and
// stops them when ctx is done. Without a data directory it uses a
// temporary one, removed when it returns.
func runLocalCluster(ctx context.Context, n int, base memberConfig) error {
	where := "kept: starting again with the same --data-dir restarts this cluster"
	if base.DataDir == "" {
		dir, err := os.MkdirTemp("", "kvstore-")
		if err != nil {
			return err
		}
		defer func() {
			if err := os.RemoveAll(dir); err != nil {
				fmt.Fprintf(os.Stderr, "kvstore: removing %s: %v\n", dir, err)
			}
		}()
		base.DataDir = dir
		where = "temporary: removed when the cluster stops; --data-dir keeps it"
	}
	lc, err := loadLocalCluster(base.DataDir, n)
	if err != nil {
		return err
	}
	cluster := map[uint64]string{}
	for _, lm := range lc.Members {
		cluster[lm.ID] = lm.Peer
	}
	var members []*member
	defer func() {
		for _, m := range members {
			m.stop()
		}
	}()
	for _, lm := range lc.Members {
		cfg := base
		cfg.ID, cfg.InitialCluster = lm.ID, cluster
		cfg.ListenPeer, cfg.ListenClient = lm.Peer, lm.Client
		cfg.DataDir = filepath.Join(base.DataDir, fmt.Sprint("member-", lm.ID))
		m, err := startMember(cfg)
		if err != nil {
			return fmt.Errorf("member %d: %w (a local cluster keeps its addresses in %s, for its members to find each other after a restart)",
				lm.ID, err, filepath.Join(base.DataDir, localClusterFile))
		}
		members = append(members, m)
	}
	fmt.Printf("%d members, data under %s (%s)\n", n, base.DataDir, where)
	for _, lm := range lc.Members {
		fmt.Printf("  member %d: client http://%s  peer %s\n", lm.ID, lm.Client, lm.Peer)
	}
	first, last := lc.Members[0].Client, lc.Members[n-1].Client
	fmt.Printf("\ntry:\n  curl -X PUT -d world http://%s/kv/hello && curl http://%s/kv/hello\n  curl http://%s/cluster\n\nCtrl-C stops the cluster.\n", first, last, first)
	<-ctx.Done()
	fmt.Println("\nshutting down")
	return nil
}

// loadLocalCluster reads the addresses of the local cluster in dir, or,
// for a new cluster, picks free loopback ports and records them.
func loadLocalCluster(dir string, n int) (localCluster, error) {
	path := filepath.Join(dir, localClusterFile)
	b, err := os.ReadFile(path)
	if err == nil {
		var lc localCluster
		if err := json.Unmarshal(b, &lc); err != nil {
			return lc, fmt.Errorf("%s: %w", path, err)
		}
		if len(lc.Members) != n {
			return lc, fmt.Errorf("%s is a local cluster of %d members, not %d: start it with --local-cluster %d, or use another --data-dir",
				dir, len(lc.Members), n, len(lc.Members))
		}
		for i, lm := range lc.Members {
			if lm.ID != uint64(i+1) || lm.Peer == "" || lm.Client == "" {
				return lc, fmt.Errorf("%s: member %d is not id=%d with a peer and a client address", path, i+1, i+1)
			}
		}
		return lc, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return localCluster{}, err
	}
	if old, _ := filepath.Glob(filepath.Join(dir, "member-*")); len(old) > 0 {
		return localCluster{}, fmt.Errorf("%s holds member data but no %s: the addresses its members know are lost; use another --data-dir", dir, localClusterFile)
	}
	// Reserve the ports first (every member must know every peer address),
	// all at once so that none is handed out twice.
	var lc localCluster
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	reserve := func() (string, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		listeners = append(listeners, l)
		return l.Addr().String(), nil
	}
	for i := 1; i <= n; i++ {
		peer, err := reserve()
		if err != nil {
			return lc, err
		}
		client, err := reserve()
		if err != nil {
			return lc, err
		}
		lc.Members = append(lc.Members, localMember{ID: uint64(i), Peer: peer, Client: client})
	}
	return lc, writeFileAtomic(path, mustJSON(lc))
}

// writeFileAtomic writes path so that a crash leaves the old content or
// the new, never a part.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		err = d.Sync()
		d.Close()
		return err
	}
	return nil
}
