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

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client
// certificate named cn (docker's ca.pem, cert.pem and key.pem) into dir.
func tlsFiles(t *testing.T, dir, cn string) (ca, serverCert, serverKey, clientCert, clientKey string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, ip bool) ([]byte, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if ip {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return der, kb
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	sDER, sKey := leaf(2, "dockgate", x509.ExtKeyUsageServerAuth, true)
	cDER, cKey := leaf(3, cn, x509.ExtKeyUsageClientAuth, false)
	return ca, write("server-cert.pem", "CERTIFICATE", sDER), write("server-key.pem", "EC PRIVATE KEY", sKey),
		write("cert.pem", "CERTIFICATE", cDER), write("key.pem", "EC PRIVATE KEY", cKey)
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
	ca, sCert, sKey, cCert, cKey := tlsFiles(t, dir, cn)
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

	// Without a client certificate the CLI gets no further than the
	// handshake.
	if out, err := docker("--tlsverify", "--tlscacert", ca, "version", "--format", "{{.Server.APIVersion}}"); err == nil {
		t.Errorf("docker version over TLS without a client certificate worked:\n%s", out)
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
