package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// A TLS listener serves remote clients (docker --tlsverify) that identify
// themselves with a client certificate: there is no SO_PEERCRED across a
// network, so the certificate is the whole identity, and a connection
// without a valid one is never served.

// handshakeTimeout bounds the TLS handshake of one connection: a client
// that connects and says nothing must not hold a slot (or a stop) forever.
const handshakeTimeout = 10 * time.Second

// noID is the uid and gid of a caller known only by its certificate.
const noID = ^uint32(0)

// TLSConfig is the server side of dockgate's TLS listener: the server's
// certificate and key, and the CA bundle that client certificates must
// chain to. Client certificates are required and verified; TLS 1.2 is the
// oldest version spoken.
func TLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	pem, err := os.ReadFile(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("TLS client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS client CA %s: no PEM certificate in it", clientCAFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
		// HTTP/1.1 only: HTTP/2 is refused on every listener.
		NextProtos: []string{"http/1.1"},
	}, nil
}

// ListenTLS listens on a TCP address and serves TLS with cfg on every
// connection. The handshake happens in Identify, on the connection's own
// goroutine, not in Accept.
func ListenTLS(address string, cfg *tls.Config) (net.Listener, error) {
	if cfg == nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, errors.New("listen on " + address + ": a TCP listener needs TLS with verified client certificates")
	}
	l, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(l, cfg), nil
}

// identifyTLS completes the handshake and names the caller by the common
// name of its verified client certificate (subject cert:<CN>) and its DNS
// and URI SANs (cert-dns:<name>, cert-uri:<uri>).
func identifyTLS(tc *tls.Conn) (*Caller, error) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("identify caller: TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	// VerifiedChains, not PeerCertificates: only a certificate that
	// chained to the client CA names anyone.
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return nil, errors.New("identify caller: no verified client certificate")
	}
	leaf := st.VerifiedChains[0][0]
	if leaf.Subject.CommonName == "" {
		return nil, errors.New("identify caller: the client certificate has no common name")
	}
	// No uid or gid: (uid_t)-1, Linux's "no id", rather than 0, which
	// would read as root in the audit log.
	return &Caller{UID: noID, GID: noID, Cert: leaf.Subject.CommonName, CertSANs: certSANs(leaf)}, nil
}

// certSANs are the subjects a certificate's DNS and URI subject alternative
// names give: cert-dns:NAME and cert-uri:URI, each with its own prefix so
// that a SAN never reads as a common name (cert:) or as the other kind.
func certSANs(leaf *x509.Certificate) []string {
	var s []string
	for _, n := range leaf.DNSNames {
		if n != "" {
			s = append(s, "cert-dns:"+n)
		}
	}
	for _, u := range leaf.URIs {
		if u != nil {
			s = append(s, "cert-uri:"+u.String())
		}
	}
	return s
}
