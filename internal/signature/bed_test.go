package signature

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dockgate/dockgate/test/signing"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// signers are the test keys: the trusted ones are written to a keys
// directory, "stranger" is not.
type signers struct {
	byName  map[string]crypto.Signer
	keysDir string
}

var (
	signersOnce sync.Once
	signersVal  *signers
	signersErr  error
)

// testSigners makes the keys once per test binary: RSA generation is slow
// under -race, and keys are not state any test changes.
func testSigners(t testing.TB) *signers {
	t.Helper()
	signersOnce.Do(func() {
		dir, err := osMkdirTemp()
		if err != nil {
			signersErr = err
			return
		}
		s := &signers{byName: map[string]crypto.Signer{}, keysDir: dir}
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			signersErr = err
			return
		}
		for name, k := range map[string]crypto.Signer{"p384": p384, "ed": ed, "rsa": rk} {
			if err := signing.WritePublicKey(dir, name, k.Public()); err != nil {
				signersErr = err
				return
			}
			s.byName[name] = k
		}
		for _, name := range []string{"release", "ci"} {
			k, err := signing.GenerateKey(dir, name)
			if err != nil {
				signersErr = err
				return
			}
			s.byName[name] = k
		}
		stranger, err := signing.GenerateKey(dir+"/untrusted", "stranger")
		if err != nil {
			signersErr = err
			return
		}
		s.byName["stranger"] = stranger
		signersVal = s
	})
	if signersErr != nil {
		t.Fatalf("test keys: %v", signersErr)
	}
	return signersVal
}

// testRegistry is ggcr's in-process registry behind httptest, with a hook
// that may answer a request in its place (an outage, a refusal, a lie).
type testRegistry struct {
	srv  *httptest.Server
	host string
	hook atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]
}

func newTestRegistry(t testing.TB, referrers bool) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	h := registry.New(registry.WithReferrersSupport(referrers), registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if f := r.hook.Load(); f != nil && (*f)(w, req) {
			return
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	r.host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// intercept makes f answer the requests it returns true for, from now on.
func (r *testRegistry) intercept(f func(http.ResponseWriter, *http.Request) bool) {
	r.hook.Store(&f)
}

// push puts a random image at host/repo:latest and returns its digest.
func (r *testRegistry) push(t testing.TB, repo string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host + "/" + repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func (r *testRegistry) ref(repo, digest string) string { return r.host + "/" + repo + "@" + digest }

func mustLoadKeys(t testing.TB, dir string) *KeySet {
	t.Helper()
	ks, err := LoadKeys(dir)
	if err != nil {
		t.Fatalf("LoadKeys: %v", err)
	}
	return ks
}

func mustVerifier(t testing.TB, opts Options) *Verifier {
	t.Helper()
	v, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func osMkdirTemp() (string, error) { return os.MkdirTemp("", "dockgate-signature-keys-") }

func TestMain(m *testing.M) {
	code := m.Run()
	if signersVal != nil {
		os.RemoveAll(signersVal.keysDir)
	}
	os.Exit(code)
}
