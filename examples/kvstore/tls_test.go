package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// testPKI is a CA for a test and the files of the certificates it issued.
type testPKI struct {
	t      *testing.T
	dir    string
	ca     *certAuthority
	caFile string
}

func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	ca, err := newCertAuthority(name, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	require.NoError(t, err)
	p := &testPKI{t: t, dir: t.TempDir(), ca: ca}
	p.caFile = filepath.Join(p.dir, "ca.crt")
	require.NoError(t, os.WriteFile(p.caFile, ca.certPEM, 0o644))
	return p
}

// memberCert issues a peer certificate naming member (0: none), valid
// from an hour ago for the given time; it returns the cert and key files.
func (p *testPKI) memberCert(name string, member uint64, valid time.Duration) (certFile, keyFile string) {
	p.t.Helper()
	now := time.Now()
	certPEM, keyPEM, err := p.ca.issue(certRequest{
		name: name, member: member, ips: []net.IP{net.IPv4(127, 0, 0, 1)},
		usages:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		notBefore: now.Add(-time.Hour), notAfter: now.Add(valid),
	})
	require.NoError(p.t, err)
	certFile, keyFile = filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	require.NoError(p.t, os.WriteFile(certFile, certPEM, 0o644))
	require.NoError(p.t, os.WriteFile(keyFile, keyPEM, 0o600))
	return certFile, keyFile
}

// memberTLS is what a member with this PKI's certificate for id runs with:
// mutual TLS between members, HTTPS requiring client certificates.
func (p *testPKI) memberTLS(id uint64) tlsSettings {
	p.t.Helper()
	cert, key := p.memberCert(fmt.Sprint("member-", id), id, time.Hour)
	s, err := tlsFiles{PeerCert: cert, PeerKey: key, PeerCA: p.caFile, Cert: cert, Key: key, CA: p.caFile}.load()
	require.NoError(p.t, err)
	return s
}

// httpsClient trusts the CA and presents a client certificate of its own.
func (p *testPKI) httpsClient() *http.Client {
	p.t.Helper()
	certFile, keyFile := p.memberCert("client", 0, time.Hour)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(p.t, err)
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.cert)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}},
	}}
}

// TestTLSClusterEndToEnd: three members with mutual TLS between them and
// HTTPS with client certificates; writes and reads through every member.
func TestTLSClusterEndToEnd(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	c := &testCluster{t: t, dir: t.TempDir(), peers: map[uint64]string{}, members: map[uint64]*member{}}
	for id := uint64(1); id <= 3; id++ {
		c.reservePeer(id)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.stop()
		}
	})
	for id := uint64(1); id <= 3; id++ {
		cfg := c.config(id, false)
		cfg.InitialCluster = maps.Clone(c.peers)
		cfg.TLS = pki.memberTLS(id)
		m, err := startMember(cfg)
		require.NoError(t, err)
		c.members[id] = m
	}
	c.waitLeader()
	client := pki.httpsClient()
	url := func(id uint64, path string) string { return "https://" + c.members[id].clientL.Addr().String() + path }
	req := func(method, u, body string) (int, string) {
		t.Helper()
		r, err := http.NewRequest(method, u, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := client.Do(r)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	for id := uint64(1); id <= 3; id++ {
		status, body := req("PUT", url(id, fmt.Sprint("/kv/k", id)), fmt.Sprint("v", id))
		require.Equal(t, 200, status, body)
	}
	for id := uint64(1); id <= 3; id++ {
		for k := 1; k <= 3; k++ {
			status, body := req("GET", url(id, fmt.Sprint("/kv/k", k)), "")
			require.Equal(t, 200, status, body)
			require.Equal(t, fmt.Sprint("v", k), body)
		}
	}
	// GET /cluster asks the other members over HTTPS, with the peer
	// certificate.
	require.Eventually(t, func() bool {
		_, body := req("GET", url(1, "/cluster"), "")
		var cl struct{ Members []clusterMember }
		require.NoError(t, json.Unmarshal([]byte(body), &cl))
		for _, m := range cl.Members {
			if m.Status == nil {
				return false
			}
		}
		return len(cl.Members) == 3
	}, 5*time.Second, 20*time.Millisecond, "every member's status in /cluster")

	// Plain HTTP, and HTTPS without a client certificate, are refused.
	resp, err := http.Get("http://" + c.members[1].clientL.Addr().String() + "/kv/k1")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 400, resp.StatusCode, "plain HTTP to the HTTPS port")
	roots := x509.NewCertPool()
	roots.AddCert(pki.ca.cert)
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	_, err = noCert.Get(url(1, "/kv/k1"))
	require.ErrorContains(t, err, "certificate required")
}

// tlsTransport is a transport for member 1 with mutual TLS, logging to
// the returned buffer, its incoming messages on the channel.
func tlsTransport(t *testing.T, pki *testPKI, reports chan report) (*transport, <-chan pb.Message, *lockedBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	got := make(chan pb.Message, 16)
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	tr := newTransport(1, "127.0.0.1:1", ln, pki.memberTLS(1).Peer, func(m pb.Message) { got <- m }, reports, newMetrics(), log)
	t.Cleanup(tr.close)
	return tr, got, logs
}

// TestPeerTLSRefusesImpostors: a peer connection that does not prove,
// with a certificate from the peer CA, to be the member its hello claims,
// is refused with a log line saying why, and nothing it sends reaches
// Raft.
func TestPeerTLSRefusesImpostors(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	tr, got, logs := tlsTransport(t, pki, make(chan report, 16))
	addr := tr.ln.Addr().String()
	other := newTestPKI(t, "another CA")
	type attempt struct {
		cert, key string // "": plain TCP
		hello     uint64
		log       []string // what the member logs
	}
	certOf := func(p *testPKI, name string, id uint64, valid time.Duration) attempt {
		cert, key := p.memberCert(name, id, valid)
		return attempt{cert: cert, key: key, hello: id}
	}
	attempts := map[string]attempt{}
	a := certOf(other, "member-2-other-ca", 2, time.Hour)
	a.log = []string{"TLS handshake failed", "unknown authority"}
	attempts["certificate from another CA"] = a
	a = certOf(pki, "member-3", 3, time.Hour)
	a.hello, a.log = 2, []string{"the hello claims another member than the certificate names", "hello_from=2", "certificate_member=3"}
	attempts["member 3's certificate, hello as member 2"] = a
	a = certOf(pki, "member-2-expired", 2, -time.Minute)
	a.log = []string{"TLS handshake failed", "expired"}
	attempts["expired certificate"] = a
	a = certOf(pki, "no-member", 0, time.Hour)
	a.hello, a.log = 2, []string{"refusing peer connection", "names no member"}
	attempts["certificate naming no member"] = a
	attempts["plain TCP"] = attempt{hello: 2, log: []string{"TLS handshake failed", "does not look like a TLS handshake"}}

	for name, a := range attempts {
		t.Run(name, func(t *testing.T) {
			before := logs.String()
			conn := dialTLSPeer(t, addr, a.cert, a.key)
			// The member may have closed the connection before these
			// writes: their errors do not matter, what it logs and
			// delivers does.
			hb, err := (&pb.Message{Type: pb.MsgHeartbeat, From: a.hello, To: 1, Term: 9}).Marshal()
			require.NoError(t, err)
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if writeFrame(conn, mustJSON(hello{Magic: helloMagic, From: a.hello, Client: "127.0.0.1:2"})) == nil {
				writeFrame(conn, hb)
			}
			_, err = conn.Read(make([]byte, 1))
			require.Error(t, err, "the member closes the connection")
			require.Eventually(t, func() bool {
				out := strings.TrimPrefix(logs.String(), before)
				for _, want := range a.log {
					if !strings.Contains(out, want) {
						return false
					}
				}
				return strings.Contains(out, "level=WARN")
			}, 5*time.Second, 10*time.Millisecond, "log lines %q; the member logged:\n%s", a.log, logs.String())
			select {
			case m := <-got:
				t.Fatalf("delivered %v", m)
			default:
			}
		})
	}

	// The same with the right certificate is delivered: the refusals
	// above are the certificates', not the test's.
	cert, key := pki.memberCert("member-2", 2, time.Hour)
	conn := dialTLSPeer(t, addr, cert, key)
	require.NoError(t, writeFrame(conn, mustJSON(hello{Magic: helloMagic, From: 2, Client: "127.0.0.1:2"})))
	writeMessage(t, conn, pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 9})
	select {
	case m := <-got:
		require.Equal(t, uint64(2), m.From)
	case <-time.After(5 * time.Second):
		t.Fatalf("member 2's heartbeat was not delivered; the member logged:\n%s", logs.String())
	}
}

// dialTLSPeer connects to a peer port with the certificate in certFile
// (plain TCP when it is ""), trusting any server certificate, as an
// impostor would.
func dialTLSPeer(t *testing.T, addr, certFile, keyFile string) net.Conn {
	t.Helper()
	var conn net.Conn
	var err error
	if certFile == "" {
		conn, err = net.Dial("tcp", addr)
	} else {
		var cert tls.Certificate
		cert, err = tls.LoadX509KeyPair(certFile, keyFile)
		require.NoError(t, err)
		conn, err = tls.Dial("tcp", addr, &tls.Config{
			InsecureSkipVerify: true,
			// Always send it, even when the member asks for another CA's.
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		})
	}
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestPeerTLSDialsOnlyTheMemberItMeans: a member does not talk to a peer
// address whose certificate names another member, and says why.
func TestPeerTLSDialsOnlyTheMemberItMeans(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	reports := make(chan report, 64)
	tr, _, logs := tlsTransport(t, pki, reports)
	// Member 3 listens where member 1 expects member 2.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	impostor := newTransport(3, "127.0.0.1:3", ln, pki.memberTLS(3).Peer, func(pb.Message) {}, make(chan report, 16), newMetrics(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(impostor.close)
	tr.setPeer(2, ln.Addr().String())
	tr.send([]pb.Message{{Type: pb.MsgHeartbeat, From: 1, To: 2, Term: 1}})
	select {
	case r := <-reports:
		require.Equal(t, uint64(2), r.to)
		require.True(t, r.unreachable)
	case <-time.After(10 * time.Second):
		t.Fatal("member 2 was not reported unreachable")
	}
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "the peer's certificate is member 3's, not member 2's")
	}, 5*time.Second, 10*time.Millisecond, "the member logged:\n%s", logs.String())
	require.Contains(t, logs.String(), `level=WARN msg="peer unreachable" peer=2`)
}

// TestPlainListenNeedsInsecure: without TLS, a member listens on loopback
// only, unless --insecure.
func TestPlainListenNeedsInsecure(t *testing.T) {
	for addr, loopback := range map[string]bool{
		"127.0.0.1:2380": true, "[::1]:2380": true, "localhost:2380": true,
		":2380": false, "0.0.0.0:2380": false, "[::]:2380": false, "10.1.2.3:2380": false, "host1:2380": false,
	} {
		require.Equal(t, loopback, isLoopback(addr), addr)
		err := checkPlainListen("--listen-peer", addr, "speak for a member", "--peer-cert-file", false)
		if loopback {
			require.NoError(t, err, addr)
		} else {
			require.ErrorContains(t, err, "--insecure", addr)
		}
		require.NoError(t, checkPlainListen("--listen-peer", addr, "speak for a member", "--peer-cert-file", true), addr)
	}
	base := []string{"--id", "1", "--in-memory", "--initial-cluster", "1=127.0.0.1:1"}
	err := run(append(base, "--listen-peer", "0.0.0.0:0"))
	require.ErrorContains(t, err, "--listen-peer 0.0.0.0:0: refusing to listen without TLS")
	err = run(append(base, "--listen-client", ":0"))
	require.ErrorContains(t, err, "--listen-client :0: refusing to listen without TLS")

	// A peer certificate must name the member it is given to.
	pki := newTestPKI(t, "test CA")
	cert, key := pki.memberCert("member-2", 2, time.Hour)
	err = run(append(base, "--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", pki.caFile))
	require.ErrorContains(t, err, "--peer-cert-file names member 2, but this is member 1")
	err = run(append(base, "--peer-cert-file", cert, "--peer-key-file", key))
	require.ErrorContains(t, err, "--peer-trusted-ca-file")
}
