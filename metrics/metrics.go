// Package metrics is dockgate's operational view for Prometheus: counters
// of requests, bytes, sessions, reloads and refused connections (it is the
// proxy's Observer), and the /metrics, /healthz and /readyz endpoints, on a
// listener that is never a Docker API socket.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/proxy"
)

// Metrics are dockgate's Prometheus metrics. They implement proxy.Observer;
// a nil *Metrics records nothing.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	bytesIn     prometheus.Counter
	bytesOut    prometheus.Counter
	hijacked    prometheus.Gauge
	reloads     *prometheus.CounterVec
	upstreamEr  prometheus.Counter
	connRefused *prometheus.CounterVec
	silent      prometheus.Counter
}

// New makes the metrics, registered with a registry of their own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockgate_requests_total",
			Help: "Requests finished, by action (endpoint fact) and decision (allow, deny, error).",
		}, []string{"action", "decision"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dockgate_request_duration_seconds",
			Help:    "Time from a request's first byte to its end, by action; hijacked sessions are not included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"action"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dockgate_bytes_in_total",
			Help: "Bytes of request bodies and hijacked input forwarded from clients to dockerd.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dockgate_bytes_out_total",
			Help: "Bytes of response bodies and hijacked output forwarded from dockerd to clients.",
		}),
		hijacked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dockgate_hijacked_sessions",
			Help: "Hijacked sessions (attach, exec, upgraded connections) open now.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockgate_policy_reloads_total",
			Help: "Policy reloads (SIGHUP or a changed file), by outcome (success, failure).",
		}, []string{"outcome"}),
		upstreamEr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dockgate_upstream_errors_total",
			Help: "Requests answered 502 because dockerd could not be reached or answered wrongly.",
		}),
		connRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockgate_connections_refused_total",
			Help: "Connections answered 503 because their caller was at a limit, by limit (per_caller: --max-connections-per-caller; total: --max-connections).",
		}, []string{"limit"}),
		silent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dockgate_connections_silent_closed_total",
			Help: "Connections closed because they sent no request within --header-timeout of being accepted.",
		}),
	}
	m.connRefused.WithLabelValues(proxy.LimitPerCaller)
	m.connRefused.WithLabelValues(proxy.LimitTotal)
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.reg.MustRegister(m.requests, m.latency, m.bytesIn, m.bytesOut, m.hijacked, m.reloads, m.upstreamEr, m.connRefused, m.silent,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var _ proxy.Observer = (*Metrics)(nil)

// Finished counts a finished request.
func (m *Metrics) Finished(rec *audit.Record) {
	if m == nil {
		return
	}
	action := rec.Action
	if action == "" {
		action = "none" // refused before it was routed (caller unknown, busy)
	}
	m.requests.WithLabelValues(action, rec.Decision).Inc()
	if !rec.Hijacked {
		m.latency.WithLabelValues(action).Observe(rec.DurationMS / 1000)
	}
	m.bytesIn.Add(float64(max(rec.BytesIn, 0)))
	m.bytesOut.Add(float64(max(rec.BytesOut, 0)))
	if rec.Status == http.StatusBadGateway {
		m.upstreamEr.Inc()
	}
}

// HijackStarted counts a hijacked session that began.
func (m *Metrics) HijackStarted() {
	if m != nil {
		m.hijacked.Inc()
	}
}

// HijackEnded counts a hijacked session that ended.
func (m *Metrics) HijackEnded() {
	if m != nil {
		m.hijacked.Dec()
	}
}

// ConnRefused counts a connection refused at a limit.
func (m *Metrics) ConnRefused(limit string) {
	if m != nil {
		m.connRefused.WithLabelValues(limit).Inc()
	}
}

// SilentConnClosed counts a connection closed for sending nothing.
func (m *Metrics) SilentConnClosed() {
	if m != nil {
		m.silent.Inc()
	}
}

// WatchConns exports the number of admitted connections, as open tells
// it (the proxy server's AdmittedConns).
func (m *Metrics) WatchConns(open func() int) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dockgate_connections_open",
		Help: "Client connections open now and counted against their callers' shares (--max-connections, --max-connections-per-caller).",
	}, func() float64 { return float64(open()) }))
}

// PolicyReloaded counts a policy reload by its outcome.
func (m *Metrics) PolicyReloaded(err error) {
	if m == nil {
		return
	}
	outcome := "success"
	if err != nil {
		outcome = "failure"
	}
	m.reloads.WithLabelValues(outcome).Inc()
}

// Pinger is what /readyz asks dockerd (*dockerd.Client).
type Pinger interface {
	Ping(ctx context.Context, timeout time.Duration) error
}

// Handler serves /metrics, /healthz and /readyz; /readyz asks the dockerd
// at upstream through d.
func (m *Metrics) Handler(upstream string, d Pinger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := d.Ping(r.Context(), time.Second); err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: dockerd at %s: %v\n", upstream, err)
			return
		}
		io.WriteString(w, "ready\n")
	})
	return mux
}

// Listen opens --metrics-listen: host:port, tcp://host:port or
// unix:///path. It refuses the addresses of the Docker API sockets, the
// proxy's own and dockerd's: metrics are never served there.
func Listen(addr string, apiListen []string, up proxy.Upstream) (net.Listener, error) {
	network, address := "tcp", addr
	if strings.Contains(addr, "://") {
		var err error
		if network, address, err = proxy.ParseListenURL(addr); err != nil {
			return nil, err
		}
	}
	if network == "unix" {
		if up.Network == "unix" && sameFile(address, up.Address) {
			return nil, errors.New("that is dockerd's socket; metrics are never served on a Docker API socket")
		}
	}
	for _, l := range apiListen {
		n, a, err := proxy.ParseListenURL(l)
		if err == nil && n == network && (a == address || (n == "unix" && sameFile(a, address))) {
			return nil, fmt.Errorf("that is --listen %s; metrics are never served on a Docker API socket", l)
		}
	}
	if network == "unix" {
		return proxy.ListenUnix(address, 0o660, "")
	}
	return net.Listen("tcp", address)
}

func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
