package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dockgate/dockgate/internal/signature"
)

// WatchSignatures exports the signature verifier's counters, as stats
// tells them at each scrape: lookups that went to a registry, answers from
// the cache, and results that were not signed by their cause (the
// signature.Failure values). stats must never count down; serve's holder
// adds up every verifier a reload replaced.
func (m *Metrics) WatchSignatures(stats func() signature.Stats) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&signatureCollector{stats: stats})
}

var (
	sigVerificationsDesc = prometheus.NewDesc("dockgate_signature_verifications_total",
		"Image digests whose signatures were looked up in a registry (cache misses; concurrent lookups of one digest count once).", nil, nil)
	sigCacheHitsDesc = prometheus.NewDesc("dockgate_signature_cache_hits_total",
		"Signature verdicts answered from the cache.", nil, nil)
	sigFailuresDesc = prometheus.NewDesc("dockgate_signature_failures_total",
		"Signature lookups whose result was not signed, and tags of pulls that could not be resolved to a digest, by cause: unreachable, auth, timeout, not-found (the registry could not say: unverified), malformed, bad-signature, digest-mismatch, reference-mismatch (a signature was found and did not count: unsigned).", []string{"cause"}, nil)
)

// signatureCollector reads the counters at scrape time: they live in the
// verifier, which counts without knowing of Prometheus.
type signatureCollector struct {
	stats func() signature.Stats
}

func (c *signatureCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sigVerificationsDesc
	ch <- sigCacheHitsDesc
	ch <- sigFailuresDesc
}

func (c *signatureCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(sigVerificationsDesc, prometheus.CounterValue, float64(s.Verifications))
	ch <- prometheus.MustNewConstMetric(sigCacheHitsDesc, prometheus.CounterValue, float64(s.CacheHits))
	causes := make([]string, 0, len(s.Failures))
	for f := range s.Failures {
		causes = append(causes, string(f))
	}
	sort.Strings(causes)
	for _, f := range causes {
		ch <- prometheus.MustNewConstMetric(sigFailuresDesc, prometheus.CounterValue, float64(s.Failures[signature.Failure(f)]), f)
	}
}
