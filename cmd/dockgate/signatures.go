package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockgate/dockgate/internal/signature"
)

// signatureOptions are the flags (and the config's signatures: section)
// of dockgate's own registry access, for the signature fact
// (docs/supply-chain.md).
type signatureOptions struct {
	// dockerConfig is a docker config.json whose credentials dockgate
	// uses for its lookups: never a caller's X-Registry-Auth, which is the
	// caller's to give dockerd, not dockgate's to reuse.
	dockerConfig string
	caFiles      listFlag
	timeout      time.Duration
	insecure     listFlag
	cacheSize    int
}

func (s *signatureOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.dockerConfig, "signature-docker-config", "", "docker config.json whose registry credentials dockgate uses to look up signatures (default: none, ask anonymously); a caller's X-Registry-Auth is never used")
	fs.Var(&s.caFiles, "signature-ca-file", "PEM CA certificates trusted for registries' TLS besides the system roots (repeatable)")
	fs.DurationVar(&s.timeout, "signature-timeout", 10*time.Second, "time allowed for one signature lookup in one registry; then the image is unverified")
	fs.Var(&s.insecure, "signature-insecure-registry", "registry host[:port] reached over plain HTTP (repeatable; loopback, RFC 1918 and *.local already are); signatures are verified whatever the transport")
	fs.IntVar(&s.cacheSize, "signature-cache-size", 4096, "verification results kept (a signed digest until the keys change, an unsigned one for a minute); 0: none")
}

// check refuses what New would take for a default rather than what was
// asked.
func (s *signatureOptions) check() error {
	if s.timeout <= 0 {
		return fmt.Errorf("--signature-timeout %v: want a positive duration such as 10s", s.timeout)
	}
	if s.cacheSize < 0 {
		return fmt.Errorf("--signature-cache-size %d: want 0 (no cache) or more", s.cacheSize)
	}
	return nil
}

func (s *signatureOptions) verifierOptions() signature.Options {
	size := s.cacheSize
	if size == 0 {
		size = -1 // New's zero is its default size; the flag's is none
	}
	return signature.Options{
		DockerConfig: s.dockerConfig,
		CAFiles:      append([]string(nil), s.caFiles...),
		Timeout:      s.timeout,
		Insecure:     append([]string(nil), s.insecure...),
		CacheSize:    size,
	}
}

// newVerifier makes the verifier the options describe, with errors naming
// the flag or config key at fault.
func (s *signatureOptions) newVerifier() (*signature.Verifier, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	v, err := signature.New(s.verifierOptions())
	if err != nil {
		return nil, fmt.Errorf("signatures (--signature-docker-config, --signature-ca-file): %w", err)
	}
	return v, nil
}

// source says what a verifier made from the options would read: the
// options and the bytes of the files they name. A reload makes a new
// verifier when it changes, so that credentials rotated in place in the
// same config.json are used from the reload on.
func (s *signatureOptions) source() string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %v %q %d\n", s.dockerConfig, []string(s.caFiles), s.timeout, []string(s.insecure), s.cacheSize)
	for _, f := range append([]string{s.dockerConfig}, s.caFiles...) {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(h, "%s: %v\n", f, err)
			continue
		}
		fmt.Fprintf(h, "%s %d:", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// signatureHolder is the decider's authz.Signatures for the process's
// life: the decider's field is read by every decision, so a reload swaps
// the verifier inside the holder rather than the field. Its Stats add up
// every verifier it held, so that the metrics' counters never go back.
type signatureHolder struct {
	cur atomic.Pointer[signature.Verifier]

	mu      sync.Mutex
	source  string          // what the verifier in force was made from (signatureOptions.source)
	retired signature.Stats // the counts of the verifiers replaced
}

// newSignatureHolder holds v, made from the options whose source() was
// source (read before v was made: a file changed in between makes the
// next reload make a new verifier, never miss the change).
func newSignatureHolder(v *signature.Verifier, source string) *signatureHolder {
	h := &signatureHolder{source: source, retired: signature.Stats{Failures: map[signature.Failure]uint64{}}}
	h.cur.Store(v)
	return h
}

// changed says whether options whose source() is source would make a
// verifier other than the one in force.
func (h *signatureHolder) changed(source string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return source != h.source
}

// Verify implements authz.Signatures with the verifier in force.
func (h *signatureHolder) Verify(ctx context.Context, repo, digest string, keys *signature.KeySet) signature.Result {
	return h.cur.Load().Verify(ctx, repo, digest, keys)
}

// Resolve implements authz.Signatures with the verifier in force.
func (h *signatureHolder) Resolve(ctx context.Context, ref string) (string, error) {
	return h.cur.Load().Resolve(ctx, ref)
}

// swap puts v in force and closes the verifier it replaces. Lookups
// already running on the old one finish there (within its timeout); what
// they count after the swap is not added up.
func (h *signatureHolder) swap(v *signature.Verifier, source string) {
	h.mu.Lock()
	h.source = source
	old := h.cur.Swap(v)
	addStats(&h.retired, old.Stats())
	h.mu.Unlock()
	old.Close()
}

// Stats are the counts of every verifier held so far.
func (h *signatureHolder) Stats() signature.Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := signature.Stats{Failures: map[signature.Failure]uint64{}}
	addStats(&s, h.retired)
	addStats(&s, h.cur.Load().Stats())
	return s
}

// Close closes the verifier in force.
func (h *signatureHolder) Close() { h.cur.Load().Close() }

func addStats(to *signature.Stats, s signature.Stats) {
	to.Verifications += s.Verifications
	to.CacheHits += s.CacheHits
	for f, n := range s.Failures {
		to.Failures[f] += n
	}
}

// signatureWarnings are what a policy's signature rows and keys say that
// is probably not what its author meant; the policy loads and serves.
func signatureWarnings(verifies bool, keys *signature.KeySet) []string {
	n := len(keys.Names())
	switch {
	case verifies && n == 0:
		return []string{"warning: a row names the signature kind but the policy has no keys (keys/NAME.pub): every image from a registry is unsigned"}
	case !verifies && n > 0:
		return []string{fmt.Sprintf("warning: keys/ holds %d key(s) (%s) but no row names the signature kind: signatures are not looked up", n, strings.Join(keys.Names(), ", "))}
	}
	return nil
}
