package dockerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockerd/dockerdtest"
)

func TestClientTimesOut(t *testing.T) {
	fake := &dockerdtest.Objects{Delay: 2 * time.Second}
	in, err := New(dockerdtest.Serve(t, fake))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	in.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, _, _, err = in.VolumeOptions(context.Background(), "bindvol")
	if err == nil {
		t.Fatal("no error from a daemon that does not answer")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline") && !strings.Contains(err.Error(), "timeout") {
		t.Logf("error: %v", err)
	}
}

// The retry-once rule, against a dockerd that misbehaves on the first
// requests for a path: a question dockerd never answered is asked again
// once; an answer, even an error, is final.
func TestClientRetriesOnce(t *testing.T) {
	path := "/containers/" + idA + "/json"
	reset := func(w http.ResponseWriter) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	for _, c := range []struct {
		name      string
		misbehave func(n int, w http.ResponseWriter, r *http.Request) bool
		wantFound bool
		wantErr   bool
		wantAsked int
	}{
		{"connection closed unanswered once, then answered", func(n int, w http.ResponseWriter, _ *http.Request) bool {
			if n == 1 {
				reset(w)
			}
			return n == 1
		}, true, false, 2},
		{"connection closed unanswered twice is an error", func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			reset(w)
			return true
		}, false, true, 2},
		{"an attempt that gets no answer in its half of the time, then answered", func(n int, _ http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				<-r.Context().Done()
			}
			return n == 1
		}, true, false, 2},
		{"a 500 is an answer: not asked again", func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"message":"daemon on fire"}`))
			return true
		}, false, true, 1},
		{"a 404 is an answer: not found, not asked again", func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"message":"No such container"}`))
			return true
		}, false, false, 1},
		{"a 409 is an answer: not asked again", func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(409)
			_, _ = w.Write([]byte(`{"message":"conflict"}`))
			return true
		}, false, true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newOwnerFake()
			f.misbehave = func(p string, n int, w http.ResponseWriter, r *http.Request) bool {
				return p == path && c.misbehave(n, w, r)
			}
			in, err := New(dockerdtest.Serve(t, f))
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			// The deadline whose first half the first attempt gets: long
			// enough for a loaded machine, short enough to wait out.
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			id, labels, found, err := in.ObjectOwner(ctx, ObjectContainer, idA)
			if (err != nil) != c.wantErr || found != c.wantFound {
				t.Fatalf("got %q %v found=%v err=%v", id, labels, found, err)
			}
			if found && labels[ownerLabel] != "user:alice" {
				t.Fatalf("labels %v", labels)
			}
			if n := f.count(path); n != c.wantAsked {
				t.Fatalf("dockerd asked %d times, want %d", n, c.wantAsked)
			}
		})
	}
}

// The lookup is bounded by the request's own context, however long the
// client's upper bound.
func TestClientDeadlineFromRequest(t *testing.T) {
	f := newOwnerFake()
	ended := make(chan struct{}, 2)
	f.misbehave = func(_ string, _ int, _ http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		ended <- struct{}{}
		return true
	}
	in, err := New(dockerdtest.Serve(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	in.Timeout = time.Hour
	for _, c := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"the request's deadline passes", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, context.DeadlineExceeded},
		{"the request is cancelled (client gone, dockgate stopping)", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := c.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, _, _, err := in.ObjectOwner(ctx, ObjectContainer, "job-a")
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
			case <-time.After(time.Minute):
				t.Fatal("the lookup outlived the request's context (hang)")
			}
			select {
			case <-ended:
			case <-time.After(time.Minute):
				t.Fatal("dockerd's side of the lookup never ended")
			}
		})
	}
}

// Errors the retry rule sees from the SDK, by what happened on the wire.
func TestTransient(t *testing.T) {
	refused, err := New("unix://" + filepath.Join(t.TempDir(), "missing.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	_, refusedErr := refused.sdk.Ping(context.Background())
	for _, c := range []struct {
		name     string
		err      error
		timedOut bool
		want     bool
	}{
		{"connection refused", refusedErr, false, true},
		{"connection reset", fmt.Errorf("read: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}), false, true},
		{"EOF before the answer", fmt.Errorf("get: %w", io.EOF), false, true},
		{"the attempt's own deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), true, true},
		{"the request's deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), false, false},
		{"the request ended", context.Canceled, false, false},
		{"an answer: no such object", errors.New("Error response from daemon: No such container"), false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.err == nil {
				t.Fatal("no error to classify")
			}
			if got := transient(c.err, c.timedOut); got != c.want {
				t.Fatalf("transient(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}
