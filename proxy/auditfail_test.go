package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
)

// breakableSink is an audit sink that fails with err while broken.
type breakableSink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	broken bool
	err    error
	failed int // writes refused while broken
}

func (w *breakableSink) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken {
		w.failed++
		return 0, w.err
	}
	return w.buf.Write(p)
}

func (w *breakableSink) set(broken bool) {
	w.mu.Lock()
	w.broken = broken
	w.mu.Unlock()
}

func (w *breakableSink) failures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

func (w *breakableSink) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func withAudit(l *audit.Logger) proxyOption {
	return func(c *Config) { c.Audit = l }
}

// failureLog collects what the Logger reports of its sink.
type failureLog struct {
	mu   sync.Mutex
	errs []error
	lost []uint64
}

func (f *failureLog) options(failOpen bool) audit.Options {
	return audit.Options{FailOpen: failOpen,
		OnError:   func(err error) { f.mu.Lock(); f.errs = append(f.errs, err); f.mu.Unlock() },
		OnRecover: func(n uint64) { f.mu.Lock(); f.lost = append(f.lost, n); f.mu.Unlock() },
	}
}

func (f *failureLog) counts() (int, []uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errs), append([]uint64(nil), f.lost...)
}

const pingReq = "GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n"

// With --audit-fail closed, once a record could not be written dockgate
// answers 503 and forwards nothing, until the sink works again.
func TestAuditFailClosedRefusesAndRecovers(t *testing.T) {
	for _, sinkErr := range []error{
		errors.New("input/output error"),
		&os.PathError{Op: "write", Path: "/var/log/dockgate/audit.log", Err: syscall.ENOSPC},
	} {
		t.Run(sinkErr.Error(), func(t *testing.T) {
			dir := shortDir(t)
			up := newHTTPDockerd(t, dir, pingHandler())
			sink := &breakableSink{err: sinkErr}
			var fl failureLog
			l := audit.NewLogger(sink, fl.options(false))
			p := startProxy(t, dir, up.upstream(), withAudit(l))
			c := p.dial()
			want(t, "ping", c.roundTrip("GET", pingReq).body, "OK")
			// An allowed request's record is written just after its
			// answer: wait for it before breaking the sink.
			eventually(t, "the first record", func() bool { return strings.Contains(sink.String(), `"status":200`) })

			sink.set(true)
			// The sink fails with this request's record: it was served
			// already, and is lost (the recovery header counts it).
			want(t, "ping while the sink breaks", c.roundTrip("GET", pingReq).body, "OK")
			eventually(t, "the failure report", func() bool { n, _ := fl.counts(); return n == 1 })
			seen := up.bytesIn.Load()
			for range 3 {
				r := c.roundTrip("GET", pingReq)
				wantDockerError(t, r, http.StatusServiceUnavailable, "audit log unavailable", sinkErr.Error())
			}
			create := `{"Image":"busybox"}`
			r := c.roundTrip("POST", "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: "+fmt.Sprint(len(create))+"\r\n\r\n"+create)
			wantDockerError(t, r, http.StatusServiceUnavailable, "audit log unavailable")
			// A new connection is refused too.
			wantDockerError(t, p.dial().roundTrip("GET", pingReq), http.StatusServiceUnavailable, "audit log unavailable")
			if n := up.bytesIn.Load(); n != seen {
				t.Fatalf("dockerd received %d bytes while the audit sink was broken", n-seen)
			}
			if n, _ := fl.counts(); n != 1 {
				t.Fatalf("the failure was reported %d times, want once", n)
			}

			sink.set(false)
			want(t, "ping after recovery", c.roundTrip("GET", pingReq).body, "OK")
			eventually(t, "the recovery report", func() bool { _, lost := fl.counts(); return len(lost) > 0 })
			// Lost: the record of the request served as the sink broke,
			// and those of the five refusals (tried, and failed).
			if _, lost := fl.counts(); len(lost) != 1 || lost[0] != 6 {
				t.Fatalf("recovery reported %v lost records, want [6]", lost)
			}
			p.shutdown()
			// The trail verifies and says how many records were lost.
			path := filepath.Join(t.TempDir(), "audit.log")
			os.WriteFile(path, []byte(sink.String()), 0o600)
			res, err := audit.VerifyFiles([]string{path}, audit.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Lost != 6 || res.Records != 2 {
				t.Fatalf("verify: %+v", res)
			}
			var statuses []string
			for _, line := range strings.Split(strings.TrimSpace(sink.String()), "\n") {
				if i := strings.Index(line, `"status":`); i > 0 {
					statuses = append(statuses, line[i+9:i+12])
				}
			}
			// The first ping, the probe's header has no status, then
			// the ping after recovery.
			if strings.Join(statuses, ",") != "200,200" {
				t.Fatalf("statuses on record %v\n%s", statuses, sink.String())
			}
		})
	}
}

// With --audit-fail open, requests are served on, and the failure is
// reported.
func TestAuditFailOpenServesAndReports(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	sink := &breakableSink{err: errors.New("input/output error")}
	var fl failureLog
	p := startProxy(t, dir, up.upstream(), withAudit(audit.NewLogger(sink, fl.options(true))))
	c := p.dial()
	sink.set(true)
	for range 3 {
		want(t, "ping", c.roundTrip("GET", pingReq).body, "OK")
	}
	eventually(t, "three failed records", func() bool { return sink.failures() >= 3 })
	if n, _ := fl.counts(); n != 1 {
		t.Fatalf("the failure was reported %d times, want once", n)
	}
	sink.set(false)
	want(t, "ping", c.roundTrip("GET", pingReq).body, "OK")
	// An allowed request's record is written after its answer, so the
	// recovery it reports may come a moment after the reply.
	eventually(t, "the recovery report", func() bool { _, lost := fl.counts(); return len(lost) > 0 })
	if _, lost := fl.counts(); len(lost) != 1 || lost[0] != 3 {
		t.Fatalf("recovery reported %v lost records, want [3]", lost)
	}
}

// A real full disk: the audit log on a 64 KiB tmpfs.
func TestAuditFailClosedOnAFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := shortDir(t)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })

	up := newHTTPDockerd(t, dir, pingHandler())
	var fl failureLog
	logPath := filepath.Join(mnt, "audit.log")
	l, err := audit.Open(logPath, fl.options(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := startProxy(t, dir, up.upstream(), withAudit(l))
	c := p.dial()
	want(t, "ping", c.roundTrip("GET", pingReq).body, "OK")

	// Fill the disk.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	f.Close()
	// Requests are served until a record does not fit; then 503.
	var refused bool
	for range 200 {
		r := c.roundTrip("GET", pingReq)
		if r.StatusCode == http.StatusServiceUnavailable {
			wantDockerError(t, r, http.StatusServiceUnavailable, "audit log unavailable", "no space left on device")
			refused = true
			break
		}
	}
	if !refused {
		t.Fatal("never refused on a full disk")
	}
	seen := up.bytesIn.Load()
	wantDockerError(t, c.roundTrip("GET", pingReq), http.StatusServiceUnavailable, "audit log unavailable")
	if up.bytesIn.Load() != seen {
		t.Fatal("a request was forwarded while the audit log was full")
	}

	os.Remove(filler)
	want(t, "ping after space was freed", c.roundTrip("GET", pingReq).body, "OK")
	p.shutdown()
	l.Close()
	res, err := audit.VerifyFiles([]string{logPath}, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("the trail after a full disk does not verify: %v", err)
	}
	if res.Lost < 2 || len(res.Warnings) != 0 {
		t.Fatalf("verify: %+v", res)
	}
}

// eventually waits up to five seconds for cond: records of allowed requests
// are written just after their answers, so tests that look at the sink
// right after a reply must wait for them.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
