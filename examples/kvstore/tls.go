package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// A member's peer certificate names the member with a URI SAN
// "kvstore://member/<id>" (exactly one such URI). Both sides of a peer
// connection check it: the dialing member that it reached the member it
// meant to, the accepting member that the hello frame claims the member
// the certificate names. Peer certificates are used both ways, so they
// need the serverAuth and clientAuth extended key usages.
const memberURIPrefix = "kvstore://member/"

// memberURI is the URI SAN that names member id.
func memberURI(id uint64) *url.URL {
	u, _ := url.Parse(memberURIPrefix + strconv.FormatUint(id, 10))
	return u
}

// memberIDOf returns the member a certificate names.
func memberIDOf(cert *x509.Certificate) (uint64, error) {
	var id uint64
	for _, u := range cert.URIs {
		s, ok := strings.CutPrefix(u.String(), memberURIPrefix)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("certificate %q: %q is not %s<id>", cert.Subject, u, memberURIPrefix)
		}
		if id != 0 && n != id {
			return 0, fmt.Errorf("certificate %q names two members, %d and %d", cert.Subject, id, n)
		}
		id = n
	}
	if id == 0 {
		return 0, fmt.Errorf("certificate %q names no member (no %s<id> URI SAN)", cert.Subject, memberURIPrefix)
	}
	return id, nil
}

// tlsSettings is a member's TLS setup; the zero value is plain TCP and
// plain HTTP.
type tlsSettings struct {
	Peer   *peerTLS    // mutual TLS between members; nil: plain TCP
	Client *tls.Config // the client (HTTP) port's server config; nil: plain HTTP
	// StatusClient asks the other members' client ports for their status
	// (GET /cluster): it trusts the peer CA and presents the peer
	// certificate. nil: http.DefaultClient.
	StatusClient *http.Client
}

// clientURL is the base URL of a member's client port at addr.
func (s tlsSettings) clientURL(addr string) string {
	if s.Client != nil {
		return "https://" + addr
	}
	return "http://" + addr
}

func (s tlsSettings) statusClient() *http.Client {
	if s.StatusClient != nil {
		return s.StatusClient
	}
	return http.DefaultClient
}

// listenClient listens on the client port, with TLS when configured.
func (s tlsSettings) listenClient(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil || s.Client == nil {
		return l, err
	}
	return tls.NewListener(l, s.Client), nil
}

// peerTLS is the mutual TLS between members: this member's certificate
// and the CA its peers' certificates must chain to.
type peerTLS struct {
	cert  tls.Certificate
	roots *x509.CertPool
}

// serverConfig is for the peer listener: a client certificate from the
// peer CA is required; which member it names is checked against the
// hello (transport.serve).
func (p *peerTLS) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{p.cert},
		ClientCAs:    p.roots,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
}

// clientConfig is for dialing member id: its certificate must chain to
// the peer CA and name member id. Peers are known by member ID, not by
// host name, so the host name check is replaced by the member check.
func (p *peerTLS) clientConfig(id uint64) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{p.cert},
		InsecureSkipVerify: true, // VerifyConnection verifies the chain and the member
		VerifyConnection: func(cs tls.ConnectionState) error {
			return p.verifyMember(cs.PeerCertificates, id)
		},
	}
}

// verifyMember checks that certs chain to the peer CA, may serve, and
// name member want.
func (p *peerTLS) verifyMember(certs []*x509.Certificate, want uint64) error {
	if len(certs) == 0 {
		return errors.New("the peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots: p.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("peer certificate: %w", err)
	}
	got, err := memberIDOf(certs[0])
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("the peer's certificate is member %d's, not member %d's", got, want)
	}
	return nil
}

// tlsFiles are the TLS flags.
type tlsFiles struct {
	PeerCert, PeerKey, PeerCA string // --peer-cert-file, --peer-key-file, --peer-trusted-ca-file
	Cert, Key, CA             string // --cert-file, --key-file, --trusted-ca-file
}

// load reads the files named and builds the settings.
func (f tlsFiles) load() (tlsSettings, error) {
	var s tlsSettings
	switch {
	case f.PeerCert == "" && f.PeerKey == "" && f.PeerCA == "":
	case f.PeerCert == "" || f.PeerKey == "" || f.PeerCA == "":
		return s, errors.New("peer TLS needs --peer-cert-file, --peer-key-file and --peer-trusted-ca-file together")
	default:
		cert, err := tls.LoadX509KeyPair(f.PeerCert, f.PeerKey)
		if err != nil {
			return s, fmt.Errorf("--peer-cert-file, --peer-key-file: %w", err)
		}
		roots, err := loadCertPool(f.PeerCA)
		if err != nil {
			return s, fmt.Errorf("--peer-trusted-ca-file: %w", err)
		}
		s.Peer = &peerTLS{cert: cert, roots: roots}
	}
	switch {
	case f.Cert == "" && f.Key == "" && f.CA == "":
	case f.Cert == "" || f.Key == "":
		return s, errors.New("client TLS needs --cert-file and --key-file (and --trusted-ca-file to require client certificates)")
	default:
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return s, fmt.Errorf("--cert-file, --key-file: %w", err)
		}
		s.Client = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if f.CA != "" {
			pool, err := loadCertPool(f.CA)
			if err != nil {
				return s, fmt.Errorf("--trusted-ca-file: %w", err)
			}
			s.Client.ClientCAs, s.Client.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	s.StatusClient = s.newStatusClient()
	return s, nil
}

// newStatusClient is the HTTP client for the other members' client
// ports: with client TLS it trusts the peer CA (and the system's) and
// presents the peer certificate, so one CA for both ports is enough.
func (s tlsSettings) newStatusClient() *http.Client {
	if s.Client == nil {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.Peer != nil {
		cfg.RootCAs = s.Peer.roots
		cfg.Certificates = []tls.Certificate{s.Peer.cert}
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func loadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// isLoopback reports whether a listen address can only be reached from
// this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkPlainListen refuses a port without TLS on an address others can
// reach, unless insecure. risk says what anyone reaching it could do.
func checkPlainListen(flag, addr, risk, tlsFlags string, insecure bool) error {
	if isLoopback(addr) || insecure {
		return nil
	}
	return fmt.Errorf("%s %s: refusing to listen without TLS on an address other machines can reach (anyone who reaches it could %s); give %s, or --insecure to do it anyway",
		flag, addr, risk, tlsFlags)
}
