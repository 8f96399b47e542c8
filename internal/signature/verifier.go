package signature

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/singleflight"
)

// Options configure a Verifier.
type Options struct {
	// DockerConfig is the path of a docker config.json whose credentials
	// are used for the registries it names; "" asks anonymously. A
	// caller's own credentials (X-Registry-Auth) are never used.
	DockerConfig string
	// CAFiles are PEM certificates trusted for registries' TLS besides the
	// system roots.
	CAFiles []string
	// Timeout bounds one Verify or Resolve against one registry (10s when
	// zero).
	Timeout time.Duration
	// Insecure names registries (host[:port]) reached over plain HTTP. ggcr
	// already does so for localhost, loopback, RFC 1918 and *.local
	// addresses. Signatures are verified whatever the transport.
	Insecure []string
	// CacheSize bounds the cached results (4096 when zero; negative: no
	// cache).
	CacheSize int
	// SignedTTL is how long a Signed result is kept (zero: until evicted,
	// or until the key set changes, which changes the cache key).
	SignedTTL time.Duration
	// UnsignedTTL is how long an Unsigned result is kept, so that an image
	// signed after it was refused is seen soon (one minute when zero;
	// negative: not kept).
	UnsignedTTL time.Duration
}

// Verifier looks up and verifies signatures; it is safe for concurrent
// use.
type Verifier struct {
	opts      Options
	keychain  authn.Keychain
	transport http.RoundTripper
	insecure  map[string]bool
	cache     *cache
	flight    singleflight.Group
	stats     counters
	now       func() time.Time
	// beforeFlight, when set by a test, runs before a lookup joins or
	// starts the single flight of its key.
	beforeFlight func()
}

// New makes a Verifier; it reads the docker config and the CA files now.
func New(opts Options) (*Verifier, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 4096
	}
	if opts.UnsignedTTL == 0 {
		opts.UnsignedTTL = time.Minute
	}
	kc, err := loadKeychain(opts.DockerConfig)
	if err != nil {
		return nil, err
	}
	tr, err := newTransport(opts.CAFiles)
	if err != nil {
		return nil, err
	}
	insecure := map[string]bool{}
	for _, r := range opts.Insecure {
		insecure[r] = true
	}
	return &Verifier{
		opts:      opts,
		keychain:  kc,
		transport: tr,
		insecure:  insecure,
		cache:     newCache(opts.CacheSize),
		now:       time.Now,
	}, nil
}

// Close closes the idle registry connections. A Verifier replaced on a
// policy reload is closed so that its connections do not linger; lookups
// still running finish within Options.Timeout.
func (v *Verifier) Close() {
	if c, ok := v.transport.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Stats returns the counters so far.
func (v *Verifier) Stats() Stats { return v.stats.snapshot() }

// Verify says which keys verify a signature of digest (sha256:<hex>) in
// repo, a normalized repository such as 127.0.0.1:5000/team/app or
// docker.io/library/busybox. Signed and Unsigned results are cached;
// concurrent calls for the same (repo, digest, keys) ask the registry once.
func (v *Verifier) Verify(ctx context.Context, repo, digest string, keys *KeySet) Result {
	key := repo + "@" + digest + "#" + keys.Fingerprint()
	if r, ok := v.cache.get(key, v.now()); ok {
		v.stats.hits.Add(1)
		r.Keys = slices.Clone(r.Keys)
		return r
	}
	if v.beforeFlight != nil {
		v.beforeFlight()
	}
	ch := v.flight.DoChan(key, func() (any, error) {
		// The lookup outlives the caller that started it, whose waiters
		// may still want it; Options.Timeout bounds it.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.opts.Timeout)
		defer cancel()
		v.stats.verifications.Add(1)
		r, final := v.lookup(lctx, repo, digest, keys)
		if r.Status != Signed {
			v.stats.fail(r.Failure)
		}
		if final {
			v.remember(key, r)
		}
		return r, nil
	})
	select {
	case res := <-ch:
		r := res.Val.(Result)
		r.Keys = slices.Clone(r.Keys)
		return r
	case <-ctx.Done():
		return Result{Status: Unverified, Failure: FailTimeout,
			Cause: fmt.Sprintf("signatures of %s in %s: %v", digest, repo, ctx.Err())}
	}
}

func (v *Verifier) remember(key string, r Result) {
	var ttl time.Duration
	switch r.Status {
	case Signed:
		ttl = v.opts.SignedTTL
	case Unsigned:
		ttl = v.opts.UnsignedTTL
		if ttl < 0 {
			return
		}
	default:
		return
	}
	var expires time.Time
	if ttl > 0 {
		expires = v.now().Add(ttl)
	}
	v.cache.put(key, r, expires)
}

// Resolve returns the digest of the manifest ref (repo:tag or repo@digest)
// names now, asking the registry with HEAD and, where HEAD gives no
// digest, GET. A digest reference is returned as it is. Errors are
// *RegistryError.
func (v *Verifier) Resolve(ctx context.Context, ref string) (string, error) {
	r, err := name.ParseReference(ref, v.nameOptions(ref)...)
	if err != nil {
		return "", fmt.Errorf("resolve %q: %w", ref, err)
	}
	if d, ok := r.(name.Digest); ok {
		if _, err := v1.NewHash(d.DigestStr()); err != nil {
			return "", fmt.Errorf("resolve %q: %w", ref, err)
		}
		return d.DigestStr(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	opts := v.remoteOptions(ctx)
	desc, err := remote.Head(r, opts...)
	if err != nil && !isNotFound(err) && ctx.Err() == nil {
		var gd *remote.Descriptor
		if gd, err = remote.Get(r, opts...); err == nil {
			return gd.Digest.String(), nil
		}
	}
	if err != nil {
		re := classify(r.Context().RegistryStr(), err)
		// Counted as Verify's failures are: a registry that is down
		// fails a pull by tag here, before any signature is looked at.
		v.stats.fail(re.Failure)
		return "", re
	}
	return desc.Digest.String(), nil
}

func (v *Verifier) nameOptions(ref string) []name.Option {
	for reg := range v.insecure {
		if len(ref) > len(reg) && ref[:len(reg)] == reg && ref[len(reg)] == '/' {
			return []name.Option{name.Insecure}
		}
	}
	return nil
}

func (v *Verifier) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(v.transport),
		remote.WithAuthFromKeychain(v.keychain),
		// A registry that fails is retried once, soon: the caller is
		// waiting, and Options.Timeout bounds the whole lookup anyway.
		remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 2}),
	}
}
