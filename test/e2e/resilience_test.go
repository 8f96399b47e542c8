package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

// resilienceTimeout bounds every request of the load: a request that takes
// longer while dockerd is gone is a hang, not a 502.
const resilienceTimeout = 5 * time.Second

// unixGet does one GET on a fresh connection to a Unix socket.
func unixGet(ctx context.Context, sock, path string) (int, string, error) {
	c := &http.Client{Timeout: resilienceTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// loadResult is what one request of the load got.
type loadResult struct {
	at     time.Time
	status int
	err    error
	took   time.Duration
}

// TestDockgateStartsWithoutDockerdAndRidesOutItsRestartUnderLoad starts
// dockgate before "dockerd" (a relay in front of the bed's dockerd) exists,
// then restarts that relay while clients list containers concurrently.
// While it is gone every request gets a 502 quickly, /readyz says 503;
// once it is back requests succeed again, all without restarting dockgate.
func TestDockgateStartsWithoutDockerdAndRidesOutItsRestartUnderLoad(t *testing.T) {
	env := sharedWithDockgate(t)
	dir, err := os.MkdirTemp("/tmp", "dg")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	upstream := filepath.Join(dir, "dockerd.sock")
	metrics := filepath.Join(dir, "metrics.sock")
	gdir := filepath.Join(dir, "g")
	sock := filepath.Join(gdir, "docker.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 2*cmdTimeout)
	defer cancel()

	// dockgate starts with no dockerd: StartDockgate returns once a ping
	// gets through, which is after the relay appears below.
	type started struct {
		g   *testbed.Dockgate
		err error
	}
	startedc := make(chan started, 1)
	go func() {
		g, err := testbed.StartDockgate(ctx, env.Bin, gdir, "unix://"+upstream, "--metrics-listen", "unix://"+metrics)
		startedc <- started{g, err}
	}()
	// The metrics socket opens just before the API socket: wait until
	// both accept.
	accepts := func(path string) bool {
		c, err := net.Dial("unix", path)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if accepts(metrics) && accepts(sock) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockgate did not start without dockerd")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, body, err := unixGet(ctx, sock, "/v1.41/containers/json"); err != nil || status != http.StatusBadGateway {
		t.Errorf("before dockerd exists: %d %q %v, want 502", status, body, err)
	}
	if status, body, err := unixGet(ctx, metrics, "/readyz"); err != nil || status != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
		t.Errorf("/readyz before dockerd exists: %d %q %v, want 503", status, body, err)
	}
	rl := startRelay(t, upstream, env.Dockerd.Socket)
	st := <-startedc
	if st.err != nil {
		rl.stop()
		t.Fatalf("dockgate did not come up once dockerd appeared: %v", st.err)
	}
	g := st.g
	defer func() {
		if err := g.Stop(); err != nil {
			t.Errorf("dockgate did not stop cleanly on SIGTERM: %v", err)
		}
		for _, p := range g.Problems() {
			t.Errorf("dockgate's stderr reports: %s", p)
		}
	}()
	if status, body, err := unixGet(ctx, metrics, "/readyz"); err != nil || status != http.StatusOK {
		t.Errorf("/readyz with dockerd: %d %q %v, want 200", status, body, err)
	}

	// Load: clients listing containers, as "docker ps" does, until told.
	const workers = 6
	var (
		mu      sync.Mutex
		results [workers][]loadResult
		wg      sync.WaitGroup
	)
	stopLoad := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				start := time.Now()
				status, _, err := unixGet(ctx, sock, "/v1.41/containers/json?all=1")
				mu.Lock()
				results[w] = append(results[w], loadResult{at: start, status: status, err: err, took: time.Since(start)})
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	gone := time.Now()
	rl.stop()
	time.Sleep(1500 * time.Millisecond)
	if status, body, err := unixGet(ctx, metrics, "/readyz"); err != nil || status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with dockerd gone: %d %q %v, want 503", status, body, err)
	}
	rl = startRelay(t, upstream, env.Dockerd.Socket)
	defer rl.stop()
	back := time.Now()
	time.Sleep(1500 * time.Millisecond)
	close(stopLoad)
	wg.Wait()

	pid := g.Pid
	if !g.Running() || g.Pid != pid {
		t.Fatalf("dockgate is not the same running process")
	}
	var ok, bad, during502, after200 int
	for w := range workers {
		rs := results[w]
		for _, r := range rs {
			switch {
			case r.err != nil:
				bad++
				var ne net.Error
				if errors.As(r.err, &ne) && ne.Timeout() {
					t.Errorf("worker %d: a request hung for %v while dockerd restarted: %v", w, r.took, r.err)
				} else {
					t.Errorf("worker %d: a request failed without an answer: %v", w, r.err)
				}
			case r.status == http.StatusOK:
				ok++
				if r.at.After(back) {
					after200++
				}
			case r.status == http.StatusBadGateway:
				if r.at.After(gone) && r.at.Before(back) {
					during502++
				}
				if r.at.After(back.Add(500 * time.Millisecond)) {
					t.Errorf("worker %d: 502 at %v, %v after dockerd came back", w, r.at.Format(time.StampMilli), r.at.Sub(back))
				}
			default:
				bad++
				t.Errorf("worker %d: status %d, want 200 or 502", w, r.status)
			}
			if r.took > resilienceTimeout/2 {
				t.Errorf("worker %d: a request took %v", w, r.took)
			}
		}
		if n := len(rs); n == 0 {
			t.Errorf("worker %d made no request", w)
		} else if rs[n-1].status != http.StatusOK {
			t.Errorf("worker %d: the last request did not succeed: %+v", w, rs[n-1])
		}
	}
	t.Logf("%d ok, %d 502 while dockerd was gone, %d ok after it came back, %d bad", ok, during502, after200, bad)
	if during502 == 0 {
		t.Errorf("no 502 while dockerd was gone")
	}
	if after200 == 0 {
		t.Errorf("no success after dockerd came back")
	}
	if status, body, err := unixGet(ctx, metrics, "/readyz"); err != nil || status != http.StatusOK {
		t.Errorf("/readyz after dockerd came back: %d %q %v, want 200", status, body, err)
	}
	_, text, err := unixGet(ctx, metrics, "/metrics")
	if err != nil || !strings.Contains(text, "dockgate_upstream_errors_total ") || strings.Contains(text, "dockgate_upstream_errors_total 0\n") {
		t.Errorf("metrics do not count the upstream errors (%v)", err)
	}
}
