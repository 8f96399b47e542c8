package signature

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Bounds on what is read from a registry: a registry (or whoever can push
// to it) must not make dockgate read without end or look at signatures
// without end. Past a bound the signatures do not count.
const (
	maxManifest      = 4 << 20 // a signature manifest, a referrer, the referrers index
	maxSignatureBlob = 1 << 20 // one simple-signing payload or one bundle
	maxSignatures    = 64      // signatures looked at for one digest, both formats together
	maxOtherResponse = 1 << 20 // anything else: /v2/, token responses, error bodies
)

// errTooLarge is what a registry response past its bound reads as.
type errTooLarge struct{ limit int64 }

func (e *errTooLarge) Error() string {
	return fmt.Sprintf("registry response exceeds %d bytes", e.limit)
}

// limitTransport bounds every response body by what its path fetches, so
// that every reader above it (ggcr's and ours) is bounded without knowing.
type limitTransport struct{ next http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// /v2/<name>/manifests/<reference>, …/referrers/<digest>,
	// …/blobs/<digest>: the segment before the last says what is fetched,
	// whatever the repository is called.
	limit := int64(maxOtherResponse)
	switch path.Base(path.Dir(req.URL.Path)) {
	case "manifests", "referrers":
		limit = maxManifest
	case "blobs":
		limit = maxSignatureBlob
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, &errTooLarge{limit: limit}
	}
	resp.Body = &limitedBody{rc: resp.Body, left: limit, limit: limit}
	return resp, nil
}

type limitedBody struct {
	rc    io.ReadCloser
	left  int64
	limit int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, &errTooLarge{limit: b.limit}
		}
		return b.rc.Read(p[:0])
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

// CloseIdleConnections lets Verifier.Close reach the transport below.
func (t limitTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// newTransport is ggcr's default transport with the configured CAs added to
// the system roots, bounded by limitTransport. The CA files are read and
// checked now, so that a wrong one stops startup or a reload; the system
// roots are read when the first registry is asked (lazyTransport).
func newTransport(caFiles []string) (http.RoundTripper, error) {
	var extra [][]byte
	for _, f := range caFiles {
		pemBytes, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("registry CA: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("registry CA %s: no PEM certificate in it", f)
		}
		extra = append(extra, pemBytes)
	}
	lt := &lazyTransport{}
	lt.get = sync.OnceValue(func() *http.Transport {
		defer lt.built.Store(true)
		return registryTransport(extra)
	})
	return limitTransport{next: lt}, nil
}

// lazyTransport makes its transport on the first request. Reading the
// system's CA certificates takes some 25 ms, a third of dockgate's
// start-up, and most policies never ask a registry anything.
type lazyTransport struct {
	get   func() *http.Transport
	built atomic.Bool
}

func (t *lazyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.get().RoundTrip(req)
}

// CloseIdleConnections does not make a transport to close nothing in.
func (t *lazyTransport) CloseIdleConnections() {
	if t.built.Load() {
		t.get().CloseIdleConnections()
	}
}

// registryTransport trusts the system roots and the extra PEM blocks, each
// of which newTransport has checked.
func registryTransport(extra [][]byte) *http.Transport {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	for _, pemBytes := range extra {
		roots.AppendCertsFromPEM(pemBytes)
	}
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// configKeychain gives the credentials of one docker config.json, the
// operator's, to every registry it names, and none to the others. It never
// reads $HOME or $DOCKER_CONFIG: whoever runs dockgate's process must not
// change whose credentials it uses.
type configKeychain struct{ cf *configfile.ConfigFile }

func loadKeychain(path string) (authn.Keychain, error) {
	if path == "" {
		return anonymousKeychain{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("registry credentials %s: %w", path, err)
	}
	cf.Filename = path
	return configKeychain{cf: cf}, nil
}

func (k configKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	key := target.RegistryStr()
	if key == name.DefaultRegistry {
		key = authn.DefaultAuthKey
	}
	cfg, err := k.cf.GetAuthConfig(key)
	if err != nil {
		return nil, fmt.Errorf("registry credentials for %s: %w", target.RegistryStr(), err)
	}
	if cfg.Username == "" && cfg.Password == "" && cfg.Auth == "" && cfg.IdentityToken == "" && cfg.RegistryToken == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      cfg.Username,
		Password:      cfg.Password,
		Auth:          cfg.Auth,
		IdentityToken: cfg.IdentityToken,
		RegistryToken: cfg.RegistryToken,
	}), nil
}

type anonymousKeychain struct{}

func (anonymousKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.Anonymous, nil
}

// RegistryError is a registry that could not be asked, or said no.
type RegistryError struct {
	Registry string
	Failure  Failure
	Err      error
}

func (e *RegistryError) Error() string {
	switch e.Failure {
	case FailAuth:
		return fmt.Sprintf("registry %s denied dockgate access: %v", e.Registry, e.Err)
	case FailTimeout:
		return fmt.Sprintf("registry %s did not answer in time: %v", e.Registry, e.Err)
	case FailNotFound:
		return fmt.Sprintf("registry %s: not found: %v", e.Registry, e.Err)
	case FailMalformed:
		return fmt.Sprintf("registry %s: %v", e.Registry, e.Err)
	}
	return fmt.Sprintf("registry %s unreachable: %v", e.Registry, e.Err)
}

func (e *RegistryError) Unwrap() error { return e.Err }

// classify names what went wrong asking a registry. Anything it cannot
// name is "unreachable": an answer dockgate cannot judge is no answer.
func classify(registry string, err error) *RegistryError {
	f := FailUnreachable
	var terr *transport.Error
	var big *errTooLarge
	var nerr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &nerr) && nerr.Timeout():
		f = FailTimeout
	case errors.As(err, &big):
		f = FailMalformed
	case errors.As(err, &terr):
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			f = FailAuth
		case http.StatusNotFound:
			f = FailNotFound
		}
	}
	return &RegistryError{Registry: registry, Failure: f, Err: err}
}

// isNotFound is a 404 from the registry: the tag or manifest is not there.
func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}
