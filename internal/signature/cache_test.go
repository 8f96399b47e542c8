package signature

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/signing"
)

func TestVerifyCache(t *testing.T) {
	s := testSigners(t)
	keys := mustLoadKeys(t, s.keysDir)
	ctx := context.Background()

	t.Run("a signed digest is looked up once and then answered from the cache", func(t *testing.T) {
		reg := newTestRegistry(t, false)
		d := reg.push(t, "team/app")
		must(t, signing.SignCosign(ctx, reg.ref("team/app", d), s.byName["release"]))
		v := mustVerifier(t, Options{})
		first := v.Verify(ctx, reg.host+"/team/app", d, keys)
		reg.intercept(func(w http.ResponseWriter, r *http.Request) bool {
			http.Error(w, "the registry went away", http.StatusServiceUnavailable)
			return true
		})
		second := v.Verify(ctx, reg.host+"/team/app", d, keys)
		if first.Status != Signed || second.Status != Signed || !slices.Equal(second.Keys, []string{"release"}) {
			t.Fatalf("Verify = %+v then %+v, want signed by release twice", first, second)
		}
		second.Keys[0] = "changed by the caller"
		if third := v.Verify(ctx, reg.host+"/team/app", d, keys); third.Keys[0] != "release" {
			t.Errorf("a caller's change to Keys reached the cache: %v", third.Keys)
		}
		st := v.Stats()
		if st.Verifications != 1 || st.CacheHits != 2 {
			t.Errorf("Stats = %+v, want 1 verification and 2 cache hits", st)
		}
	})

	t.Run("another key set is another cache entry", func(t *testing.T) {
		reg := newTestRegistry(t, false)
		d := reg.push(t, "team/app")
		must(t, signing.SignCosign(ctx, reg.ref("team/app", d), s.byName["release"]))
		v := mustVerifier(t, Options{})
		if r := v.Verify(ctx, reg.host+"/team/app", d, keys); r.Status != Signed {
			t.Fatalf("with the keys: %+v", r)
		}
		if r := v.Verify(ctx, reg.host+"/team/app", d, mustLoadKeys(t, t.TempDir())); r.Status != Unsigned || r.Failure != FailBadSignature {
			t.Errorf("with no keys: %+v, want unsigned (bad-signature)", r)
		}
	})

	t.Run("an unverified result is never remembered", func(t *testing.T) {
		reg := newTestRegistry(t, false)
		d := reg.push(t, "team/app")
		must(t, signing.SignCosign(ctx, reg.ref("team/app", d), s.byName["release"]))
		var down atomic.Bool
		down.Store(true)
		reg.intercept(func(w http.ResponseWriter, r *http.Request) bool {
			if down.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
			}
			return down.Load()
		})
		v := mustVerifier(t, Options{})
		if r := v.Verify(ctx, reg.host+"/team/app", d, keys); r.Status != Unverified {
			t.Fatalf("registry down: %+v, want unverified", r)
		}
		down.Store(false)
		if r := v.Verify(ctx, reg.host+"/team/app", d, keys); r.Status != Signed {
			t.Errorf("registry back: %+v, want signed", r)
		}
		if st := v.Stats(); st.Verifications != 2 || st.CacheHits != 0 || st.Failures[FailUnreachable] != 1 {
			t.Errorf("Stats = %+v, want 2 verifications, no hit, one unreachable", st)
		}
	})

	t.Run("an unsigned result expires so that a signature added later is seen", func(t *testing.T) {
		reg := newTestRegistry(t, false)
		d := reg.push(t, "team/app")
		v := mustVerifier(t, Options{UnsignedTTL: time.Minute, SignedTTL: time.Hour})
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		v.now = func() time.Time { return now }
		if r := v.Verify(ctx, reg.host+"/team/app", d, keys); r.Status != Unsigned {
			t.Fatalf("before signing: %+v", r)
		}
		must(t, signing.SignCosign(ctx, reg.ref("team/app", d), s.byName["release"]))
		if r := v.Verify(ctx, reg.host+"/team/app", d, keys); r.Status != Unsigned {
			t.Fatalf("signed, within the unsigned TTL: %+v, want the remembered unsigned", r)
		}
		now = now.Add(time.Minute)
		if r := v.Verify(ctx, reg.host+"/team/app", d, keys); r.Status != Signed {
			t.Fatalf("after the unsigned TTL: %+v, want signed", r)
		}
		now = now.Add(59 * time.Minute)
		if r := v.Verify(ctx, reg.host+"/team/app", d, keys); r.Status != Signed {
			t.Fatalf("within the signed TTL: %+v", r)
		}
		if st := v.Stats(); st.Verifications != 2 || st.CacheHits != 2 {
			t.Errorf("Stats = %+v, want 2 verifications and 2 hits", st)
		}
		now = now.Add(time.Minute)
		v.Verify(ctx, reg.host+"/team/app", d, keys)
		if st := v.Stats(); st.Verifications != 3 {
			t.Errorf("after the signed TTL: Stats = %+v, want a third verification", st)
		}
	})

	t.Run("the least recently used result is evicted first", func(t *testing.T) {
		c := newCache(2)
		now := time.Now()
		c.put("a", Result{Status: Signed}, time.Time{})
		c.put("b", Result{Status: Signed}, time.Time{})
		c.get("a", now)
		c.put("c", Result{Status: Signed}, time.Time{})
		if _, ok := c.get("b", now); ok {
			t.Error("b, the least recently used, is still cached")
		}
		for _, k := range []string{"a", "c"} {
			if _, ok := c.get(k, now); !ok {
				t.Errorf("%s was evicted", k)
			}
		}
		if c.len() != 2 {
			t.Errorf("cache holds %d entries, want 2", c.len())
		}
	})
}

func TestConcurrentVerifyAsksOnce(t *testing.T) {
	s := testSigners(t)
	keys := mustLoadKeys(t, s.keysDir)
	ctx := context.Background()
	reg := newTestRegistry(t, true)
	d := reg.push(t, "team/app")
	must(t, signing.SignCosign(ctx, reg.ref("team/app", d), s.byName["release"]))

	// The registry holds every request until all callers have asked, so
	// that without the single flight each of them would go out.
	const callers = 16
	release := make(chan struct{})
	reg.intercept(func(w http.ResponseWriter, r *http.Request) bool {
		<-release
		return false
	})
	v := mustVerifier(t, Options{})
	var asked sync.WaitGroup
	asked.Add(callers)
	var once sync.Once
	v.beforeFlight = func() { asked.Done() }
	results := make([]Result, callers)
	var done sync.WaitGroup
	for i := range callers {
		done.Add(1)
		go func() {
			defer done.Done()
			results[i] = v.Verify(ctx, reg.host+"/team/app", d, keys)
		}()
	}
	asked.Wait()
	once.Do(func() { close(release) })
	done.Wait()
	for i, r := range results {
		if r.Status != Signed || !slices.Equal(r.Keys, []string{"release"}) {
			t.Errorf("caller %d: %+v, want signed by release", i, r)
		}
	}
	if st := v.Stats(); st.Verifications != 1 || st.CacheHits > callers-1 {
		t.Errorf("Stats = %+v, want one verification for %d callers", st, callers)
	}
}

func TestVerifyCallerGivesUp(t *testing.T) {
	s := testSigners(t)
	keys := mustLoadKeys(t, s.keysDir)
	reg := newTestRegistry(t, false)
	d := reg.push(t, "team/app")
	reg.intercept(func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	})
	v := mustVerifier(t, Options{Timeout: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := v.Verify(ctx, reg.host+"/team/app", d, keys); r.Status != Unverified || r.Failure != FailTimeout {
		t.Errorf("Verify with a cancelled context = %+v, want unverified (timeout)", r)
	}
}
