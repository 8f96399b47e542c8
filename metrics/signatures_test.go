package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dockgate/dockgate/internal/signature"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler("unix:///none", nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestSignatureCountersAreReadAtEachScrape(t *testing.T) {
	var mu sync.Mutex
	stats := signature.Stats{Failures: map[signature.Failure]uint64{}}
	m := New()
	m.WatchSignatures(func() signature.Stats {
		mu.Lock()
		defer mu.Unlock()
		s := stats
		s.Failures = map[signature.Failure]uint64{}
		for k, v := range stats.Failures {
			s.Failures[k] = v
		}
		return s
	})
	steps := []struct {
		name  string
		apply func(s *signature.Stats)
		want  []string
		not   []string
	}{
		{"nothing verified yet: zero counters, no failure series",
			func(*signature.Stats) {},
			[]string{"dockgate_signature_verifications_total 0", "dockgate_signature_cache_hits_total 0"},
			[]string{"dockgate_signature_failures_total{"}},
		{"a lookup that went out, a cached answer, a registry down and a forged signature",
			func(s *signature.Stats) {
				s.Verifications, s.CacheHits = 3, 1
				s.Failures[signature.FailUnreachable] = 1
				s.Failures[signature.FailBadSignature] = 1
			},
			[]string{"dockgate_signature_verifications_total 3", "dockgate_signature_cache_hits_total 1",
				`dockgate_signature_failures_total{cause="unreachable"} 1`, `dockgate_signature_failures_total{cause="bad-signature"} 1`},
			nil},
		{"counts go on between scrapes",
			func(s *signature.Stats) { s.CacheHits = 40; s.Failures[signature.FailUnreachable] = 2 },
			[]string{"dockgate_signature_cache_hits_total 40", `dockgate_signature_failures_total{cause="unreachable"} 2`},
			nil},
	}
	for _, st := range steps {
		mu.Lock()
		st.apply(&stats)
		mu.Unlock()
		out := scrape(t, m)
		for _, w := range st.want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("%s: no line %q in /metrics", st.name, w)
			}
		}
		for _, n := range st.not {
			if strings.Contains(out, n) {
				t.Errorf("%s: /metrics has %q", st.name, n)
			}
		}
	}
}

func TestNoSignatureCountersWithoutAVerifier(t *testing.T) {
	if out := scrape(t, New()); strings.Contains(out, "dockgate_signature_") {
		t.Error("signature counters exported with no verifier watched")
	}
	var m *Metrics
	m.WatchSignatures(func() signature.Stats { return signature.Stats{} }) // a nil Metrics records nothing
}
