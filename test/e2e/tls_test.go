package e2e

// A remote client over TLS: the real docker CLI with --tlsverify and a
// client certificate, through a dockgate of its own listening on tcp://
// in front of the shared bed's dockerd. The certificate is the caller.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{t: t, dir: dir, cert: cert, key: key, der: der}
}

func (ca *testCA) write(name, typ string, der []byte) string {
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return p
}

// leaf issues a certificate named cn, valid from notBefore to notAfter,
// and writes it and its key as PREFIX-cert.pem and PREFIX-key.pem.
func (ca *testCA) leaf(prefix string, serial int64, cn string, usage x509.ExtKeyUsage, ip bool, notBefore, notAfter time.Time) (cert, key string) {
	ca.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if ip {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		ca.t.Fatal(err)
	}
	return ca.write(prefix+"-cert.pem", "CERTIFICATE", der), ca.write(prefix+"-key.pem", "EC PRIVATE KEY", kb)
}

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client
// certificate named cn into dir.
func tlsFiles(t *testing.T, dir, cn string) (ca *testCA, caFile, serverCert, serverKey, clientCert, clientKey string) {
	t.Helper()
	ca = newTestCA(t, dir, "e2e CA")
	now := time.Now()
	serverCert, serverKey = ca.leaf("server", 2, "dockgate", x509.ExtKeyUsageServerAuth, true, now.Add(-time.Hour), now.Add(time.Hour))
	clientCert, clientKey = ca.leaf("client", 3, cn, x509.ExtKeyUsageClientAuth, false, now.Add(-time.Hour), now.Add(time.Hour))
	return ca, ca.write("ca.pem", "CERTIFICATE", ca.der), serverCert, serverKey, clientCert, clientKey
}

func freeTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestTLSClientCertificateIsTheCaller(t *testing.T) {
	env := testbed.Shared(t)
	if env.Bin == "" {
		t.Skip("no dockgate binary in this bed (DOCKGATE_E2E_DIRECT)")
	}
	cli := newCLI(t)
	dir, err := os.MkdirTemp("/tmp", "dgtls")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	const cn = "e2e-remote-runner"
	issuer, ca, sCert, sKey, cCert, cKey := tlsFiles(t, dir, cn)
	addr := freeTCPPort(t)

	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	g, err := testbed.StartDockgate(ctx, env.Bin, filepath.Join(dir, "g"), env.DirectHost(),
		"--listen", "tcp://"+addr, "--tls-cert", sCert, "--tls-key", sKey, "--tls-client-ca", ca)
	if err != nil {
		t.Fatalf("start dockgate with a TLS listener: %v", err)
	}
	defer func() {
		if err := g.Stop(); err != nil {
			t.Errorf("stop the TLS dockgate: %v", err)
		}
		for _, p := range g.Problems() {
			t.Errorf("the TLS dockgate reports:\n%s", p)
		}
	}()

	docker := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, append([]string{"-H", "tcp://" + addr}, args...)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "DOCKER_CONFIG=" + filepath.Join(dir, "docker-config")}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := docker("--tlsverify", "--tlscacert", ca, "--tlscert", cCert, "--tlskey", cKey, "version", "--format", "{{.Server.APIVersion}}")
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("docker version over TLS with a client certificate: %v\n%s", err, out)
	}

	// Without a client certificate, with an expired one, or with one from
	// another CA, the CLI gets no further than the handshake.
	now := time.Now()
	expCert, expKey := issuer.leaf("expired", 4, cn, x509.ExtKeyUsageClientAuth, false, now.Add(-2*time.Hour), now.Add(-time.Hour))
	foreign := newTestCA(t, filepath.Join(dir, "foreign"), "someone else's CA")
	if err := os.MkdirAll(foreign.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	forCert, forKey := foreign.leaf("foreign", 2, cn, x509.ExtKeyUsageClientAuth, false, now.Add(-time.Hour), now.Add(time.Hour))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no client certificate", nil},
		{"an expired client certificate", []string{"--tlscert", expCert, "--tlskey", expKey}},
		{"a client certificate from another CA", []string{"--tlscert", forCert, "--tlskey", forKey}},
	} {
		args := append(append([]string{"--tlsverify", "--tlscacert", ca}, tc.args...), "version", "--format", "{{.Server.APIVersion}}")
		out, err := docker(args...)
		if err == nil || strings.Contains(out, "1.4") {
			t.Errorf("docker version over TLS with %s worked:\n%s", tc.name, out)
		} else if !strings.Contains(out, "tls") && !strings.Contains(out, "certificate") {
			t.Errorf("docker version over TLS with %s failed, but not at the handshake:\n%s", tc.name, out)
		}
	}

	deadline := time.Now().Add(auditWait)
	for {
		recs, err := g.AuditRecords()
		if err != nil {
			t.Fatalf("audit log: %v", err)
		}
		for _, rec := range recs {
			caller, _ := rec["caller"].(map[string]any)
			if strings.HasSuffix(asString(rec["path"]), "/version") && caller != nil && caller["cert"] == cn {
				if rec["decision"] != "allow" {
					t.Errorf("version over TLS: decision %v (%v)", rec["decision"], rec["reason"])
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record of GET /version with caller cert %q:\n%v", cn, recs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}
