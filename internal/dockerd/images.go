package dockerd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
	"github.com/opencontainers/go-digest"
)

// identityAPI is the first API version whose image inspect carries
// Identity.Pull (moby API 1.53, Engine 29): the repositories the image
// store recorded the image being pulled from or pushed to (containerd's
// distribution-source labels on the image's index or manifest).
const identityAPI = "1.53"

// serverAPIMaxAge is how long the daemon's API version, learned from
// /_ping, is trusted. Either way a stale answer fails closed: asking an
// older daemon at identityAPI is an error (refused), and asking a newer
// one without it leaves a containerd-store image with no proof.
const serverAPIMaxAge = 10 * time.Second

// registryCacheSize bounds the digest references registryServes
// remembers; past it the memory starts over.
const registryCacheSize = 4096

// registryCache remembers the digest references a registry was seen to
// serve: a digest names the same content for ever.
type registryCache struct {
	mu   sync.Mutex
	refs map[string]struct{}
}

func (c *registryCache) has(ref string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.refs[ref]
	return ok
}

func (c *registryCache) add(ref string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refs == nil || len(c.refs) >= registryCacheSize {
		c.refs = map[string]struct{}{}
	}
	c.refs[ref] = struct{}{}
}

// serverAPI remembers the API version dockerd last reported.
type serverAPI struct {
	mu      sync.Mutex
	version string
	at      time.Time
}

// imageRecord is what ImageProvenance reads from an image inspect: the
// SDK's type predates Identity.
type imageRecord struct {
	ID          string   `json:"Id"`
	RepoTags    []string `json:"RepoTags"`
	RepoDigests []string `json:"RepoDigests"`
	// Descriptor is present only for the containerd image store (API
	// 1.48 on): the image's index or manifest, whose digest is its ID.
	Descriptor *struct {
		Digest string `json:"digest"`
	} `json:"Descriptor"`
	Identity *struct {
		Pull []struct {
			Repository string `json:"Repository"`
		} `json:"Pull"`
	} `json:"Identity"`
}

// ImageProvenance resolves an image reference (name, digest reference,
// full ID or ID prefix) as dockerd resolves it to run it, with GET
// /images/{ref}/json (the same lookup as container create: name, then ID
// prefix), and returns the image's ID, the RepoDigests that prove where
// its content came from (those only a pull from or a push to that
// repository records, whatever dockerd's image store: provenRepoDigests)
// and its RepoTags; found is false when no such image exists.
func (d *Client) ImageProvenance(ctx context.Context, ref string) (string, []string, []string, bool, error) {
	// A valid reference has no character that could leave the path
	// segment the SDK puts it in.
	if _, err := reference.ParseAnyReference(ref); err != nil {
		return "", nil, nil, false, invalidName("invalid image reference %q: %v", ref, err)
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	c, err := d.imageClient(ctx)
	if err != nil {
		return "", nil, nil, false, err
	}
	var raw bytes.Buffer
	err = d.ask(ctx, func(ctx context.Context) error {
		raw.Reset()
		_, err := c.ImageInspect(ctx, ref, client.ImageInspectWithRawResponse(&raw))
		return err
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", nil, nil, false, nil
		}
		return "", nil, nil, false, answered(err)
	}
	var im imageRecord
	if err := json.Unmarshal(raw.Bytes(), &im); err != nil {
		return "", nil, nil, false, fmt.Errorf("image %s: reading dockerd's answer: %w", ref, err)
	}
	proven, verify := provenRepoDigests(im)
	for _, rd := range verify {
		ok, err := d.registryServes(ctx, rd)
		if err != nil {
			return "", nil, nil, false, err
		}
		if ok {
			proven = append(proven, rd)
		}
	}
	return im.ID, proven, im.RepoTags, true, nil
}

// registryServes asks dockerd whether the registry of a digest reference
// serves that manifest in that repository (GET /distribution/{name}/json,
// with dockerd's registry settings and no credentials). Content is
// addressed by digest, so a yes proves the local image is the registry's.
// Any failure to get an answer from the registry is a no: the image then
// runs as a local one. Yeses are remembered (registryCache).
func (d *Client) registryServes(ctx context.Context, digestRef string) (bool, error) {
	if d.served.has(digestRef) {
		return true, nil
	}
	c, ok := canonical(digestRef)
	if !ok {
		return false, nil
	}
	di, err := d.sdk.DistributionInspect(ctx, c.String(), "")
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, nil
	}
	if di.Descriptor.Digest != c.Digest() {
		return false, nil
	}
	d.served.add(digestRef)
	return true, nil
}

// provenRepoDigests sorts the RepoDigests into those that prove where the
// content came from (only a pull from, or a push to, that repository
// records them) and those the registry must confirm (verify).
//
// The classic image store (graphdrivers) records a RepoDigest only then,
// and its digest is the manifest's, never the image ID (the config's
// digest). The containerd image store (Engine 29's default) lists a
// RepoDigest for every name of an image, tags made here included, each
// with the image ID as digest, and nothing it reports is proof:
// Identity.Pull names the repositories of containerd's distribution-source
// labels, which a pull or a push sets, but so does a BuildKit build FROM a
// local image under the name it was given (tag evil as the approved name,
// build anything FROM it, and the evil content "was pulled" from the
// approved repository), and containerd keys them by host without the
// registry's port. So there a RepoDigest whose repository Identity.Pull
// names (by host and path) is only a candidate, and the registry must
// serve that digest in that repository (verify); a name Identity does not
// name is not even asked about (a ci.local tag, say). An image is taken to
// be in the containerd store when dockerd says so (Descriptor) or when a
// RepoDigest's digest is its ID, which the classic store never records; a
// daemon too old to report Identity gives no candidates, and the image
// runs as a local one.
func provenRepoDigests(im imageRecord) (proven, verify []string) {
	containerd := im.Descriptor != nil
	for _, rd := range im.RepoDigests {
		if c, ok := canonical(rd); ok && c.Digest().String() == im.ID {
			containerd = true
		}
	}
	if !containerd {
		return im.RepoDigests, nil
	}
	pulled := map[string]bool{}
	if im.Identity != nil {
		for _, p := range im.Identity.Pull {
			if n, err := reference.ParseNormalizedNamed(p.Repository); err == nil {
				pulled[n.Name()] = true
			}
		}
	}
	for _, rd := range im.RepoDigests {
		c, ok := canonical(rd)
		if ok && c.Digest().String() == im.ID && (pulled[c.Name()] || pulled[withoutPort(c)]) {
			verify = append(verify, rd)
		}
	}
	return nil, verify
}

// withoutPort is a name's repository as containerd's distribution-source
// label records it: the registry's host without its port. It is "" for a
// name without a port.
func withoutPort(n reference.Named) string {
	host, _, err := net.SplitHostPort(reference.Domain(n))
	if err != nil {
		return ""
	}
	return host + "/" + reference.Path(n)
}

func canonical(s string) (reference.Canonical, bool) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, false
	}
	c, ok := n.(reference.Canonical)
	return c, ok
}

// imageClient is the client to inspect images with: one pinned to
// identityAPI when dockerd speaks it, else the negotiating one (the SDK
// caps negotiation at its own, older, maximum).
func (d *Client) imageClient(ctx context.Context) (*client.Client, error) {
	v, err := d.serverAPIVersion(ctx)
	if err != nil {
		return nil, err
	}
	if versions.LessThan(v, identityAPI) {
		return d.sdk, nil
	}
	return d.identity, nil
}

// serverAPIVersion is dockerd's API version, asked at most every
// serverAPIMaxAge.
func (d *Client) serverAPIVersion(ctx context.Context) (string, error) {
	d.api.mu.Lock()
	defer d.api.mu.Unlock()
	if d.api.version != "" && time.Since(d.api.at) < serverAPIMaxAge {
		return d.api.version, nil
	}
	var v string
	err := d.ask(ctx, func(ctx context.Context) error {
		p, err := d.sdk.Ping(ctx)
		v = p.APIVersion
		return err
	})
	if err != nil {
		return "", fmt.Errorf("asking dockerd its API version: %w", err)
	}
	if v == "" {
		// dockerd before 1.25 does not say; it has no Identity.
		v = "1.24"
	}
	d.api.version, d.api.at = v, time.Now()
	return v, nil
}

// RegistryDigest asks a registry, through dockerd, which manifest it
// serves under the name ref (GET /distribution/{name}/json) with the
// caller's credentials for that registry (encodedAuth, "" for none).
func (d *Client) RegistryDigest(ctx context.Context, ref, encodedAuth string) (digest.Digest, error) {
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return "", invalidName("invalid image reference %q: %v", ref, err)
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	di, err := d.sdk.DistributionInspect(ctx, ref, encodedAuth)
	if err != nil {
		return "", err
	}
	if err := di.Descriptor.Digest.Validate(); err != nil {
		return "", fmt.Errorf("invalid digest %q: %w", di.Descriptor.Digest, err)
	}
	return di.Descriptor.Digest, nil
}
