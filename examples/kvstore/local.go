package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
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
// temporary one, removed when it returns. With useTLS, both ports use TLS
// with certificates from a CA made for the cluster (localCerts).
func runLocalCluster(ctx context.Context, n int, base memberConfig, useTLS bool) error {
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
	var certs *localCerts
	if useTLS {
		if certs, err = loadLocalCerts(filepath.Join(base.DataDir, "tls"), n); err != nil {
			return fmt.Errorf("--local-cluster-tls: %w", err)
		}
	}
	var members []server
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
		if certs != nil {
			cfg.TLS = certs.members[lm.ID]
		}
		m, err := startServer(cfg)
		if err != nil {
			return fmt.Errorf("member %d: %w (a local cluster keeps its addresses in %s, for its members to find each other after a restart)",
				lm.ID, err, filepath.Join(base.DataDir, localClusterFile))
		}
		members = append(members, m)
	}
	printLocalCluster(lc, base.DataDir, where, certs)
	failed := make(chan int, len(members))
	for i, m := range members {
		go func() {
			select {
			case <-m.Failed():
				failed <- i
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		fmt.Println("\nshutting down")
		return nil
	case i := <-failed:
		return fmt.Errorf("member %d stopped: %w; stopping the local cluster", lc.Members[i].ID, members[i].Failure())
	}
}

// printLocalCluster tells where the cluster is and how to try it.
func printLocalCluster(lc localCluster, dir, where string, certs *localCerts) {
	scheme, curl, security := "http", "curl", "plain TCP and HTTP on loopback; --local-cluster-tls for TLS"
	if certs != nil {
		scheme, curl = "https", "curl $TLS"
		security = "mutual TLS between members, HTTPS with client certificates; certificates in " + certs.dir
	}
	fmt.Printf("%d members, data under %s (%s)\n%s\n", len(lc.Members), dir, where, security)
	for _, lm := range lc.Members {
		fmt.Printf("  member %d: client %s://%s  peer %s\n", lm.ID, scheme, lm.Client, lm.Peer)
	}
	first, last := lc.Members[0].Client, lc.Members[len(lc.Members)-1].Client
	fmt.Printf("\ntry:\n")
	if certs != nil {
		fmt.Printf("  TLS=\"--cacert %s --cert %s --key %s\"\n", certs.caFile, certs.clientCert, certs.clientKey)
	}
	fmt.Printf("  %s -X PUT -d world %s://%s/kv/hello && %s %s://%s/kv/hello\n  %s %s://%s/cluster\n\nCtrl-C stops the cluster.\n",
		curl, scheme, first, curl, scheme, last, curl, scheme, first)
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
	return lc, writeFileAtomic(path, mustJSON(lc), 0o644)
}

// writeFileAtomic writes path so that a crash leaves the old content or
// the new, never a part.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
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

// localCerts are the certificates of a --local-cluster-tls cluster, in
// dir: ca.crt (and ca.key), member-<id>.crt and .key for each member (its
// peer certificate, which also serves its client port: it names the
// member and 127.0.0.1 and localhost), client.crt and .key for curl.
type localCerts struct {
	dir                           string
	caFile, clientCert, clientKey string
	members                       map[uint64]tlsSettings
}

// loadLocalCerts loads the certificates in dir, making them first if
// there are none.
func loadLocalCerts(dir string, n int) (*localCerts, error) {
	lc := &localCerts{
		dir: dir, caFile: filepath.Join(dir, "ca.crt"),
		clientCert: filepath.Join(dir, "client.crt"), clientKey: filepath.Join(dir, "client.key"),
		members: map[uint64]tlsSettings{},
	}
	if _, err := os.Stat(lc.caFile); errors.Is(err, fs.ErrNotExist) {
		if err := makeLocalCerts(dir, n); err != nil {
			return nil, err
		}
	}
	for id := uint64(1); id <= uint64(n); id++ {
		cert, key := filepath.Join(dir, fmt.Sprintf("member-%d.crt", id)), filepath.Join(dir, fmt.Sprintf("member-%d.key", id))
		s, err := tlsFiles{PeerCert: cert, PeerKey: key, PeerCA: lc.caFile, Cert: cert, Key: key, CA: lc.caFile}.load()
		if err != nil {
			return nil, err
		}
		lc.members[id] = s
	}
	return lc, nil
}

// makeLocalCerts makes a CA and the certificates of n members and a
// client; ca.crt is written last, so that its presence means they all are.
func makeLocalCerts(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now()
	from, until := now.Add(-time.Hour), now.AddDate(5, 0, 0)
	ca, err := newCertAuthority("kvstore local cluster CA", from, until)
	if err != nil {
		return err
	}
	write := func(name string, certPEM, keyPEM []byte) error {
		if err := writeFileAtomic(filepath.Join(dir, name+".key"), keyPEM, 0o600); err != nil {
			return err
		}
		return writeFileAtomic(filepath.Join(dir, name+".crt"), certPEM, 0o644)
	}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for id := uint64(1); id <= uint64(n); id++ {
		certPEM, keyPEM, err := ca.issue(certRequest{
			name: fmt.Sprint("kvstore member ", id), member: id, usages: both,
			ips: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, dnsNames: []string{"localhost"},
			notBefore: from, notAfter: until,
		})
		if err == nil {
			err = write(fmt.Sprint("member-", id), certPEM, keyPEM)
		}
		if err != nil {
			return err
		}
	}
	certPEM, keyPEM, err := ca.issue(certRequest{
		name: "kvstore client", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, notBefore: from, notAfter: until,
	})
	if err == nil {
		err = write("client", certPEM, keyPEM)
	}
	if err != nil {
		return err
	}
	caKey, err := ca.keyPEM()
	if err != nil {
		return err
	}
	return write("ca", ca.certPEM, caKey)
}
