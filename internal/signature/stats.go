package signature

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Stats counts what a Verifier did since it was made.
type Stats struct {
	// Verifications counts the digests looked up in a registry (cache
	// misses that went out; concurrent callers of one lookup count once).
	Verifications uint64
	// CacheHits counts Verify calls answered from the cache.
	CacheHits uint64
	// Failures counts the results that were not Signed, and the tags
	// Resolve could not resolve, by their Failure.
	Failures map[Failure]uint64
}

type counters struct {
	verifications atomic.Uint64
	hits          atomic.Uint64
	mu            sync.Mutex
	failures      map[Failure]uint64
}

func (c *counters) fail(f Failure) {
	if f == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures == nil {
		c.failures = map[Failure]uint64{}
	}
	c.failures[f]++
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := maps.Clone(c.failures)
	if f == nil {
		f = map[Failure]uint64{}
	}
	return Stats{Verifications: c.verifications.Load(), CacheHits: c.hits.Load(), Failures: f}
}
