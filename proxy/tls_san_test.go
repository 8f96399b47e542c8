package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/syncbuf"
)

// issueWithSANs makes a client certificate with DNS and URI SANs.
func (ca *testCA) issueWithSANs(t *testing.T, cn string, dns []string, uris []string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
	}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSCallerSubjectsIncludeDNSAndURISANs(t *testing.T) {
	ca := newTestCA(t, "dockgate test CA")
	c := ca.issueWithSANs(t, "ci-runner", []string{"runner.example.com", "runner2.example.com"}, []string{"spiffe://example.com/ci/runner"})
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	caller := &Caller{UID: noID, GID: noID, Cert: leaf.Subject.CommonName, CertSANs: certSANs(leaf)}
	got := caller.Subjects()
	want := []string{"cert:ci-runner", "cert-dns:runner.example.com", "cert-dns:runner2.example.com", "cert-uri:spiffe://example.com/ci/runner", "*"}
	if !slices.Equal(got, want) {
		t.Fatalf("subjects %q, want %q", got, want)
	}
	// A certificate whose common name looks like a SAN subject is still
	// only a cert: subject.
	ca2 := ca.issueWithSANs(t, "cert-dns:runner.example.com", nil, nil)
	leaf2, _ := x509.ParseCertificate(ca2.Certificate[0])
	c2 := &Caller{Cert: leaf2.Subject.CommonName, CertSANs: certSANs(leaf2)}
	if s := c2.Subjects(); slices.Contains(s, "cert-dns:runner.example.com") {
		t.Fatalf("a common name poses as a DNS SAN: %q", s)
	}
}

// TestTLSPolicyRowForADNSSANAllows serves a policy that allows only
// cert-dns:runner.example.com: a client whose certificate has that DNS SAN
// (and another common name) is allowed, one without it is refused.
func TestTLSPolicyRowForADNSSANAllows(t *testing.T) {
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
	pol, err := policy.LoadFS(fstest.MapFS{"a.csv": {Data: []byte("p, cert-dns:runner.example.com, endpoint, system.ping, allow\n")}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	p := &tlsProxy{addr: l.Addr().String(), ca: ca, audit: &syncbuf.Buffer{}}
	srv := New(Config{
		Upstream: up.upstream(),
		Router:   authz.NewRouter(),
		Decider:  authz.NewPolicyDecider(pol),
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

	status, err := p.ping(t, &tls.Config{Certificates: []tls.Certificate{ca.issueWithSANs(t, "ci-runner", []string{"runner.example.com"}, []string{"spiffe://example.com/ci"})}})
	if err != nil || status != http.StatusOK {
		t.Fatalf("ping with the DNS SAN the policy allows: %d %v\n%s", status, err, p.audit.String())
	}
	waitFor(t, "the audit record", ioTimeout, func() bool { return strings.Contains(p.audit.String(), `"path":"/_ping"`) })
	if rec := p.audit.String(); !strings.Contains(rec, `"cert_sans":["cert-dns:runner.example.com","cert-uri:spiffe://example.com/ci"]`) {
		t.Errorf("the audit record does not list the SANs:\n%s", rec)
	}
	// The SAN's name as a common name gives no cert-dns: subject.
	status, err = p.ping(t, &tls.Config{Certificates: []tls.Certificate{ca.issueWithSANs(t, "runner.example.com", []string{"other.example.com"}, nil)}})
	if err != nil || status != http.StatusForbidden {
		t.Fatalf("ping without the DNS SAN: %d %v, want 403", status, err)
	}
}
