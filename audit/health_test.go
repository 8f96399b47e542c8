package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// switchWriter is a sink that fails with err while broken is set; with
// partial > 0 the first failing write first writes that many bytes (a
// full disk takes the start of a line, then nothing).
type switchWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	broken  bool
	partial int
	err     error
}

func (w *switchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.broken {
		return w.buf.Write(p)
	}
	n := min(w.partial, len(p))
	w.buf.Write(p[:n])
	w.partial = 0
	return n, w.err
}

func (w *switchWriter) set(broken bool) {
	w.mu.Lock()
	w.broken = broken
	w.mu.Unlock()
}

func TestFailClosedRefusesUntilTheSinkRecovers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		partial int
	}{
		{"write error", errors.New("input/output error"), 0},
		{"disk full mid-line", &os.PathError{Op: "write", Path: "/var/log/dockgate/audit.log", Err: syscall.ENOSPC}, 37},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &switchWriter{err: tc.err, partial: tc.partial}
			var errs []error
			var recovered []uint64
			l := NewLogger(w, Options{
				OnError:   func(err error) { errs = append(errs, err) },
				OnRecover: func(lost uint64) { recovered = append(recovered, lost) },
			})
			l.Write(fullRecord())
			if err := l.Check(); err != nil || !l.Healthy() {
				t.Fatalf("healthy sink: Check %v", err)
			}
			w.set(true)
			l.Write(fullRecord()) // lost
			l.Write(fullRecord()) // lost
			if l.Healthy() || !errors.Is(l.Err(), tc.err) {
				t.Fatalf("after a failed write: healthy %v, Err %v", l.Healthy(), l.Err())
			}
			for range 3 {
				if err := l.Check(); !errors.Is(err, tc.err) {
					t.Fatalf("Check on a broken sink: %v, want %v", err, tc.err)
				}
			}
			if len(errs) != 1 {
				t.Fatalf("OnError called %d times, want once: %v", len(errs), errs)
			}
			if tc.err == syscall.ENOSPC || tc.partial > 0 {
				if !errors.Is(l.Err(), syscall.ENOSPC) {
					t.Fatalf("Err %v does not say ENOSPC", l.Err())
				}
			}
			w.set(false)
			if err := l.Check(); err != nil || !l.Healthy() {
				t.Fatalf("Check after the sink works again: %v", err)
			}
			if len(recovered) != 1 || recovered[0] != 2 {
				t.Fatalf("OnRecover %v, want [2]", recovered)
			}
			l.Write(fullRecord())
			lines := strings.Split(strings.TrimSpace(w.buf.String()), "\n")
			hdr := lines[len(lines)-2]
			if !strings.Contains(hdr, `"reason":"write-error"`) || !strings.Contains(hdr, `"lost":2,`) {
				t.Fatalf("recovery header %s", hdr)
			}
			if (tc.partial > 0) != strings.Contains(hdr, `"torn":true`) {
				t.Fatalf("recovery header %s (partial write %d)", hdr, tc.partial)
			}
			path := filepath.Join(t.TempDir(), "a.log")
			os.WriteFile(path, w.buf.Bytes(), 0o600)
			res := mustVerify(t, VerifyOptions{}, path)
			if res.Records != 2 || res.LastSeq != 2 || res.Lost != 2 {
				t.Fatalf("%+v\n%s", res, w.buf.Bytes())
			}
		})
	}
}

func TestFailOpenNeverRefuses(t *testing.T) {
	w := &switchWriter{err: errors.New("broken pipe")}
	var errs []error
	var recovered []uint64
	l := NewLogger(w, Options{FailOpen: true,
		OnError:   func(err error) { errs = append(errs, err) },
		OnRecover: func(lost uint64) { recovered = append(recovered, lost) },
	})
	w.set(true)
	l.Write(fullRecord())
	if err := l.Check(); err != nil {
		t.Fatalf("fail open: Check %v", err)
	}
	if l.Healthy() || len(errs) != 1 {
		t.Fatalf("the failure is not reported: healthy %v, OnError %v", l.Healthy(), errs)
	}
	l.Write(fullRecord())
	w.set(false)
	l.Write(fullRecord())
	if !l.Healthy() || len(recovered) != 1 || recovered[0] != 2 {
		t.Fatalf("healthy %v, OnRecover %v", l.Healthy(), recovered)
	}
	path := filepath.Join(t.TempDir(), "a.log")
	os.WriteFile(path, w.buf.Bytes(), 0o600)
	if res := mustVerify(t, VerifyOptions{}, path); res.Records != 1 || res.Lost != 2 {
		t.Fatalf("%+v", res)
	}
}

// A file sink on a full filesystem: simulated by /dev/full, which fails
// every write with ENOSPC.
func TestFailClosedOnDevFull(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	defer f.Close()
	l := NewLogger(f)
	l.Write(fullRecord())
	if err := l.Check(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Check: %v, want ENOSPC", err)
	}
}
