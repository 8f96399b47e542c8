package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/metrics"
	"github.com/dockgate/dockgate/proxy"
)

// startFakeDockerdAt serves /_ping and /containers/json on path until the
// returned stop is called.
func startFakeDockerdAt(t *testing.T, path string) (stop func()) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			io.WriteString(w, "OK")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[]`)
	})}
	go srv.Serve(l)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			srv.Close()
			os.Remove(path)
		}
	}
	t.Cleanup(stop)
	return stop
}

func get(t *testing.T, sock, path string) (int, string) {
	t.Helper()
	c := unixClient(sock)
	c.Timeout = 10 * time.Second
	// Every call is its own connection, closed once answered: an idle
	// one left open would count against the caller's connection share.
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://docker" + path)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, sock, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue finds one sample in the text exposition format.
func metricValue(t *testing.T, text, name string, labels ...string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return v
	}
	return 0
}

func TestMetricsAndReadiness(t *testing.T) {
	dir := shortTempDir(t)
	upPath := filepath.Join(dir, "up.sock")
	policy := filepath.Join(dir, "policy")
	os.Mkdir(policy, 0o755)
	os.WriteFile(filepath.Join(policy, "a.csv"), []byte("p, *, endpoint, system.ping, allow\n"), 0o644)
	sock := filepath.Join(dir, "dg.sock")
	msock := filepath.Join(dir, "metrics.sock")
	// dockerd is not there yet: dockgate starts anyway.
	p := startDockgate(t, sock, "--listen", "unix://"+sock, "--upstream", "unix://"+upPath, "--policy", policy,
		"--audit-log", filepath.Join(dir, "audit.log"), "--metrics-listen", "unix://"+msock)
	if s, body := get(t, msock, "/healthz"); s != 200 {
		t.Errorf("/healthz: %d %s", s, body)
	}
	if s, body := get(t, msock, "/readyz"); s != 503 || !strings.Contains(body, "not ready: dockerd at unix://"+upPath) {
		t.Errorf("/readyz without dockerd: %d %q, want 503 with the reason", s, body)
	}
	if s, _ := get(t, sock, "/_ping"); s != http.StatusBadGateway {
		t.Errorf("ping without dockerd: %d, want 502", s)
	}

	// dockerd appears: ready, and requests go through without a restart.
	stop := startFakeDockerdAt(t, upPath)
	if s, body := get(t, msock, "/readyz"); s != 200 {
		t.Errorf("/readyz with dockerd: %d %q", s, body)
	}
	for range 2 {
		if s, _ := get(t, sock, "/_ping"); s != 200 {
			t.Errorf("ping: %d", s)
		}
	}
	if s, _ := get(t, sock, "/v1.41/containers/json"); s != http.StatusForbidden {
		t.Errorf("container list: %d, want 403", s)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)

	// dockerd goes away: not ready, 502.
	stop()
	if s, body := get(t, msock, "/readyz"); s != 503 || !strings.Contains(body, "not ready") {
		t.Errorf("/readyz after dockerd stopped: %d %q", s, body)
	}
	if s, _ := get(t, sock, "/_ping"); s != http.StatusBadGateway {
		t.Errorf("ping after dockerd stopped: %d, want 502", s)
	}

	var text string
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, text = get(t, msock, "/metrics")
		if metricValue(t, text, "dockgate_policy_reloads_total", `outcome="success"`) >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"dockgate_requests_total", []string{`action="system.ping"`, `decision="allow"`}, 2},
		{"dockgate_requests_total", []string{`action="system.ping"`, `decision="error"`}, 2},
		{"dockgate_requests_total", []string{`action="container.list"`, `decision="deny"`}, 1},
		{"dockgate_request_duration_seconds_count", []string{`action="system.ping"`}, 4},
		{"dockgate_upstream_errors_total", nil, 2},
		{"dockgate_policy_reloads_total", []string{`outcome="success"`}, 1},
		{"dockgate_policy_reloads_total", []string{`outcome="failure"`}, 0},
		{"dockgate_hijacked_sessions", nil, 0},
	} {
		if got := metricValue(t, text, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := metricValue(t, text, "dockgate_bytes_out_total"); got < 4 {
		t.Errorf("dockgate_bytes_out_total = %v, want the bodies of the answers", got)
	}
	if !regexp.MustCompile(`(?m)^process_open_fds `).MatchString(text) {
		t.Errorf("no process metrics")
	}
}

func TestMetricsNeverOnTheDockerSocket(t *testing.T) {
	dir := shortTempDir(t)
	up, _ := proxy.ParseUpstream("unix://" + filepath.Join(dir, "up.sock"))
	os.WriteFile(filepath.Join(dir, "up.sock"), nil, 0o600)
	for _, addr := range []string{"unix://" + filepath.Join(dir, "dg.sock"), "unix://" + filepath.Join(dir, "up.sock"), "unix://" + dir + "/./up.sock"} {
		l, err := metrics.Listen(addr, []string{"unix://" + filepath.Join(dir, "dg.sock")}, up)
		if err == nil {
			l.Close()
			t.Errorf("--metrics-listen %s was accepted", addr)
		} else if !strings.Contains(err.Error(), "never served on a Docker API socket") {
			t.Errorf("--metrics-listen %s: %v", addr, err)
		}
	}
	l, err := metrics.Listen("127.0.0.1:0", nil, up)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// A caller at its connection share is refused and counted by the limit
// that refused it; a connection that never sends a request is closed by
// the header timeout and counted too.
func TestMetricsCountConnectionsRefusedAndSilent(t *testing.T) {
	dir := shortTempDir(t)
	upPath := filepath.Join(dir, "up.sock")
	startFakeDockerdAt(t, upPath)
	sock := filepath.Join(dir, "dg.sock")
	msock := filepath.Join(dir, "metrics.sock")
	startDockgate(t, sock, "--listen", "unix://"+sock, "--upstream", "unix://"+upPath,
		"--audit-log", filepath.Join(dir, "audit.log"), "--metrics-listen", "unix://"+msock,
		// The held connection must still be open when the second one
		// comes, after the metrics poll below: on a loaded machine that
		// took more than the 3 s this once was.
		"--max-connections-per-caller", "1", "--header-timeout", "8s")

	// startDockgate's own probe connection holds this caller's one slot
	// until dockgate has seen it close; on a loaded machine that can come
	// after the held connection below is accepted, which would then be
	// the one refused. A ping answered 200 was counted after the probe
	// was released; the gauge back at 0 then means the ping's connection
	// is gone too, and nothing else is in flight.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, body := get(t, sock, "/_ping")
		if s == http.StatusOK {
			break
		}
		if s != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("first ping: %d %q", s, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitForMetric(t, msock, "dockgate_connections_open", 0, "once the start probe and the first ping closed")
	held, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	waitForMetric(t, msock, "dockgate_connections_open", 1, "with one connection held")
	// Until the held connection is closed for its silence, this caller
	// (the test's uid) has no slot left.
	if status, body := get(t, sock, "/_ping"); status != http.StatusServiceUnavailable || !strings.Contains(body, "has 1 connections open, the limit per caller") {
		t.Fatalf("a second connection: %d %q, want 503 naming the limit per caller", status, body)
	}
	held.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := held.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: read %d, %v; want EOF from the header timeout", n, err)
	}
	// Its slot is free once dockgate has closed its end, just after the
	// client saw EOF.
	gone := time.Now().Add(30 * time.Second)
	for s := 0; s != 200; {
		if s, _ = get(t, sock, "/_ping"); s != 200 && time.Now().After(gone) {
			t.Fatalf("ping once the silent connection is gone: %d", s)
		}
	}
	_, text := get(t, msock, "/metrics")
	if got := metricValue(t, text, "dockgate_connections_refused_total", `limit="per_caller"`); got < 1 {
		t.Errorf("dockgate_connections_refused_total{limit=per_caller} = %v, want 1 or more", got)
	}
	if got := metricValue(t, text, "dockgate_connections_refused_total", `limit="total"`); got != 0 {
		t.Errorf("dockgate_connections_refused_total{limit=total} = %v, want 0", got)
	}
	if got := metricValue(t, text, "dockgate_connections_silent_closed_total"); got < 1 {
		t.Errorf("dockgate_connections_silent_closed_total = %v, want 1 or more", got)
	}
}

// waitForMetric polls the metrics until the sample name is want; dockgate
// counts a connection's end a moment after the client saw it.
func waitForMetric(t *testing.T, msock, name string, want float64, when string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, text := get(t, msock, "/metrics")
		if metricValue(t, text, name) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never %v %s:\n%s", name, want, when, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
