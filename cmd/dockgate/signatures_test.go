package main

import (
	"context"
	"crypto"
	"flag"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/internal/signature"
	"github.com/dockgate/dockgate/internal/syncbuf"
	"github.com/dockgate/dockgate/test/signing"
)

// sigBed is an in-process registry (ggcr's, no referrers API, as
// Debian's registry 2.8) holding one image signed by the key "release",
// whose public half is in keys.
type sigBed struct {
	host, repo, tag string
	digest          string
	keys            string // a policy's keys/ directory
	release         crypto.Signer
	// down makes the registry answer 503 to everything.
	down atomic.Bool
}

func newSigBed(t *testing.T) *sigBed {
	t.Helper()
	b := &sigBed{repo: "team/app", tag: "1", keys: filepath.Join(t.TempDir(), "keys")}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	b.host = strings.TrimPrefix(srv.URL, "http://")
	b.digest = b.push(t, b.tag)
	var err error
	if b.release, err = signing.GenerateKey(b.keys, "release"); err != nil {
		t.Fatal(err)
	}
	if err := signing.SignCosign(context.Background(), b.ref(b.digest), b.release); err != nil {
		t.Fatal(err)
	}
	return b
}

// push puts a new random image at tag and returns its digest.
func (b *sigBed) push(t *testing.T, tag string) string {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(b.host + "/" + b.repo + ":" + tag)
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

func (b *sigBed) ref(digest string) string { return b.host + "/" + b.repo + "@" + digest }

func newTestVerifier(t *testing.T) *signature.Verifier {
	t.Helper()
	v, err := signature.New(signature.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSignatureHolderCountsAcrossASwap(t *testing.T) {
	b := newSigBed(t)
	keys, err := signature.LoadKeys(b.keys)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h := newSignatureHolder(newTestVerifier(t), "")
	defer h.Close()
	repo := b.host + "/" + b.repo
	for range 2 {
		if r := h.Verify(ctx, repo, b.digest, keys); r.Status != signature.Signed {
			t.Fatalf("Verify = %+v, want signed by release", r)
		}
	}
	if s := h.Stats(); s.Verifications != 1 || s.CacheHits != 1 {
		t.Fatalf("before the swap: %+v, want 1 verification and 1 cache hit", s)
	}
	h.swap(newTestVerifier(t), "other")
	// The new verifier's cache is empty: the registry is asked again.
	if r := h.Verify(ctx, repo, b.digest, keys); r.Status != signature.Signed {
		t.Fatalf("Verify after the swap = %+v", r)
	}
	b.down.Store(true)
	if r := h.Verify(ctx, repo, b.push0(), keys); r.Status != signature.Unverified || r.Failure != signature.FailUnreachable {
		t.Fatalf("Verify with the registry down = %+v, want unverified, unreachable", r)
	}
	s := h.Stats()
	if s.Verifications != 3 || s.CacheHits != 1 || s.Failures[signature.FailUnreachable] != 1 {
		t.Fatalf("after the swap: %+v, want the old verifier's counts added to the new one's (3 verifications, 1 hit, 1 unreachable)", s)
	}
}

// push0 is a digest the registry does not have.
func (b *sigBed) push0() string {
	return "sha256:" + strings.Repeat("0", 64)
}

// TestReloadReplacesTheVerifierWhenItsSourceChanges: a reload makes a new
// verifier when the signatures section or the files it names change, keeps
// the one in force otherwise, and fails whole (nothing changes) when the
// new one cannot be made.
func TestReloadReplacesTheVerifierWhenItsSourceChanges(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("p, *, endpoint, *, allow\n"), 0o644)
	dockerConfig := filepath.Join(dir, "config.json")
	os.WriteFile(dockerConfig, []byte(`{"auths":{}}`), 0o600)
	cfg := filepath.Join(dir, "dockgate.yaml")
	writeCfg := func(section string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte("policy: .\nsignatures:\n"+section), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("  docker_config: config.json\n  timeout: 5s\n")
	o, err := parseServe([]string{"--config", cfg}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.signatures.dockerConfig != dockerConfig {
		t.Fatalf("docker_config %q, want it relative to the config file: %q", o.signatures.dockerConfig, dockerConfig)
	}
	p, err := loadPolicy(o.policy)
	if err != nil {
		t.Fatal(err)
	}
	src := o.signatures.source()
	v, err := o.signatures.newVerifier()
	if err != nil {
		t.Fatal(err)
	}
	h := newSignatureHolder(v, src)
	defer h.Close()
	var logs syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newConfigReloader(ctx, o, p, zerolog.New(&logs), nil, nil, h, nil)
	if r.decider.Signatures != authz.Signatures(h) {
		t.Fatal("the decider does not look signatures up through the holder")
	}

	steps := []struct {
		name     string
		change   func()
		replaced bool
		fails    string
	}{
		{"nothing changed: the verifier and its cache stay", func() {}, false, ""},
		{"the timeout changed", func() { writeCfg("  docker_config: config.json\n  timeout: 7s\n") }, true, ""},
		{"credentials rotated in place in the same config.json", func() {
			os.WriteFile(dockerConfig, []byte(`{"auths":{"registry.lan":{"auth":"dTpw"}}}`), 0o600)
		}, true, ""},
		{"a docker config that is not there fails the reload, the verifier in force stays", func() {
			writeCfg("  docker_config: gone.json\n  timeout: 7s\n")
		}, false, "registry credentials"},
		{"a CA file with no certificate fails the reload", func() {
			os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("not a certificate"), 0o644)
			writeCfg("  docker_config: config.json\n  timeout: 7s\n  ca_files: [ca.pem]\n")
		}, false, "no PEM certificate"},
		{"the section removed: anonymous lookups, a new verifier", func() { writeCfg("  cache_size: 16\n") }, true, ""},
	}
	for _, st := range steps {
		before := h.cur.Load()
		st.change()
		err := r.reload("SIGHUP")
		switch {
		case st.fails != "" && (err == nil || !strings.Contains(err.Error(), st.fails)):
			t.Errorf("%s: reload error %v, want one saying %q", st.name, err, st.fails)
		case st.fails == "" && err != nil:
			t.Errorf("%s: reload failed: %v", st.name, err)
		}
		if replaced := h.cur.Load() != before; replaced != st.replaced {
			t.Errorf("%s: verifier replaced %v, want %v\n%s", st.name, replaced, st.replaced, logs.String())
		}
	}
}

func TestCheckRefusesRegistryAccessItCannotSetUp(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dockgate.yaml")
	os.WriteFile(cfg, []byte("signatures:\n  docker_config: missing/config.json\n"), 0o644)
	code, _, errOut := runCmd(t, "check", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, filepath.Join(dir, "missing/config.json")) || !strings.Contains(errOut, "config not valid") {
		t.Errorf("check exit %d, want 1 naming the docker config\n%s", code, errOut)
	}
}

func TestSignatureFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want signatureOptions
		err  string
	}{
		{"defaults: anonymous, 10s, 4096 kept", nil,
			signatureOptions{timeout: 10 * time.Second, cacheSize: 4096}, ""},
		{"repeated CA files and insecure registries are each kept",
			[]string{"--signature-ca-file", "a.pem", "--signature-ca-file", "b.pem", "--signature-insecure-registry", "r1:5000", "--signature-insecure-registry", "r2",
				"--signature-docker-config", "/etc/dockgate/auth.json", "--signature-timeout", "3s", "--signature-cache-size", "0"},
			signatureOptions{dockerConfig: "/etc/dockgate/auth.json", caFiles: listFlag{"a.pem", "b.pem"}, insecure: listFlag{"r1:5000", "r2"}, timeout: 3 * time.Second}, ""},
		{"a timeout of zero would mean the verifier's default, not what was asked", []string{"--signature-timeout", "0s"}, signatureOptions{}, "--signature-timeout 0s"},
		{"a negative cache size", []string{"--signature-cache-size", "-1"}, signatureOptions{}, "--signature-cache-size -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseServe(append([]string{"--config", "", "--audit-log", filepath.Join(dir, "a.log")}, tt.args...), io.Discard)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one naming %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.signatures, tt.want) {
				t.Errorf("got %+v, want %+v", o.signatures, tt.want)
			}
			// explain and check pass the flags on to parseServe one by one.
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			var again signatureOptions
			again.flags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			o2, err := parseServe(append([]string{"--config", ""}, serveArgsOf(fs, "signature-docker-config", "signature-ca-file", "signature-timeout", "signature-insecure-registry", "signature-cache-size")...), io.Discard)
			if err != nil || !reflect.DeepEqual(o2.signatures, tt.want) {
				t.Errorf("passed on through serveArgsOf: %+v, %v; want %+v", o2.signatures, err, tt.want)
			}
		})
	}
}
