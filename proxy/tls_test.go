package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/internal/syncbuf"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64 = 1

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a leaf certificate; server ones are for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, cn string, server bool, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsProxy is a Server on a TLS listener with the real Identify, in front
// of a fake dockerd.
type tlsProxy struct {
	addr  string
	ca    *testCA // the client CA and the server's issuer
	audit *syncbuf.Buffer
}

func startTLSProxy(t *testing.T) *tlsProxy {
	t.Helper()
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	ca := newTestCA(t, "dockgate test CA")
	certPEM, keyPEM := ca.issue(t, "dockgate", true, time.Now().Add(time.Hour))
	cfg, err := TLSConfig(writeFile(t, dir, "server.pem", certPEM), writeFile(t, dir, "server-key.pem", keyPEM), writeFile(t, dir, "ca.pem", ca.pem))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ListenTLS("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &tlsProxy{addr: l.Addr().String(), ca: ca, audit: &syncbuf.Buffer{}}
	srv := New(Config{
		Upstream: up.upstream(),
		Router:   authz.NewRouter(),
		Decider:  authz.AllowAll{},
		Audit:    audit.NewLogger(p.audit),
		Log:      zerolog.Nop(),
		Conns:    ConnLimits{Max: 16, PerCaller: 8},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		srv.Serve(ctx, l)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return p
}

// ping does GET /_ping over TLS with the client certificate (if any) and
// returns the status, or the error that stopped it.
func (p *tlsProxy) ping(t *testing.T, cfg *tls.Config) (int, error) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.cert)
	cfg.RootCAs = roots
	cfg.ServerName = "127.0.0.1"
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", p.addr, cfg)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func clientCert(t *testing.T, ca *testCA, cn string, notAfter time.Time) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, cn, false, notAfter)
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSClientWithAValidCertificateIsServedAsCert(t *testing.T) {
	p := startTLSProxy(t)
	status, err := p.ping(t, &tls.Config{Certificates: []tls.Certificate{clientCert(t, p.ca, "ci-runner", time.Now().Add(time.Hour))}})
	if err != nil || status != http.StatusOK {
		t.Fatalf("ping with a valid client certificate: %d %v", status, err)
	}
	waitFor(t, "the audit record", ioTimeout, func() bool { return strings.Contains(p.audit.String(), `"path":"/_ping"`) })
	rec := p.audit.String()
	if !strings.Contains(rec, `"cert":"ci-runner"`) || !strings.Contains(rec, `"decision":"allow"`) {
		t.Fatalf("audit record does not name the certificate:\n%s", rec)
	}
	if strings.Contains(rec, `"uid":0,`) {
		t.Errorf("a certificate caller is recorded as uid 0:\n%s", rec)
	}
}

func TestTLSClientsWithoutAValidCertificateAreNotServed(t *testing.T) {
	p := startTLSProxy(t)
	other := newTestCA(t, "someone else's CA")
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"expired certificate", &tls.Config{Certificates: []tls.Certificate{clientCert(t, p.ca, "ci-runner", time.Now().Add(-time.Hour))}}},
		// Sent whatever CAs the server names as acceptable.
		{"certificate from another CA", &tls.Config{GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := clientCert(t, other, "ci-runner", time.Now().Add(time.Hour))
			return &c, nil
		}}},
		{"no client certificate", &tls.Config{}},
		{"TLS 1.1", &tls.Config{Certificates: []tls.Certificate{clientCert(t, p.ca, "ci-runner", time.Now().Add(time.Hour))}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, err := p.ping(t, tc.cfg)
			if err == nil {
				t.Fatalf("served with status %d, want the handshake to fail", status)
			}
			t.Logf("refused: %v", err)
		})
	}
	// Each attempt is on record, with why it was not served.
	waitFor(t, "the refused handshakes on record", ioTimeout, func() bool {
		return strings.Count(p.audit.String(), "cannot identify caller: identify caller: TLS handshake") >= 3
	})
	if strings.Contains(p.audit.String(), `"decision":"allow"`) {
		t.Fatalf("a request without a valid certificate was allowed:\n%s", p.audit.String())
	}
}

func TestTCPListenerWithoutVerifiedClientCertificatesIsRefused(t *testing.T) {
	for _, cfg := range []*tls.Config{nil, {ClientAuth: tls.RequestClientCert}, {ClientAuth: tls.VerifyClientCertIfGiven}} {
		if l, err := ListenTLS("127.0.0.1:0", cfg); err == nil {
			l.Close()
			t.Errorf("ListenTLS with %+v listened", cfg)
		}
	}
}
