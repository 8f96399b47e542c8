package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve answers on a Unix socket in a temp dir and returns its path.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func dgcall(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader("from stdin"), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestAnswerAnyStatusIsExitZero(t *testing.T) {
	sock := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/missing" {
			http.Error(w, `{"message":"no such thing"}`, http.StatusNotFound)
			return
		}
		io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Content-Type")+" "+r.Header.Get("X-A")+" "+string(b))
	})
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"-sock", sock, "GET", "/_ping"}, 0, "200\nGET /_ping   "},
		{[]string{"-sock", sock, "get", "/v1.41/containers/json?all=1"}, 0, "200\nGET /v1.41/containers/json?all=1   "},
		{[]string{"-sock", sock, "-H", "X-A: b", "POST", "/c", `{"x":1}`}, 0, "200\nPOST /c application/json b {\"x\":1}"},
		{[]string{"-sock", sock, "POST", "/c", "-"}, 0, "200\nPOST /c application/json  from stdin"},
		{[]string{"-sock", sock, "GET", "/missing"}, 0, "404\n{\"message\":\"no such thing\"}\n"},
	} {
		code, out, errOut := dgcall(t, tc.args...)
		if code != tc.code || out != tc.out {
			t.Errorf("dgcall %q: exit %d, %q (stderr %q); want exit %d, %q", tc.args, code, out, errOut, tc.code, tc.out)
		}
	}
}

func TestNoAnswerIsExitOne(t *testing.T) {
	code, out, errOut := dgcall(t, "-sock", filepath.Join(t.TempDir(), "none.sock"), "GET", "/_ping")
	if code != exitTransport || out != "" || !strings.Contains(errOut, "connect") {
		t.Errorf("no socket: exit %d, %q, %q", code, out, errOut)
	}
	if code, _, _ := dgcall(t, "GET"); code != exitUsage {
		t.Errorf("one argument: exit %d, want %d", code, exitUsage)
	}
}

// TestHoldBodySendsTheHeadFirst: the server has the head (and can answer
// from it) while the body is held back.
func TestHoldBodySendsTheHeadFirst(t *testing.T) {
	gotHead := make(chan time.Time, 1)
	sock := serve(t, func(w http.ResponseWriter, r *http.Request) {
		gotHead <- time.Now()
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, string(b))
	})
	start := time.Now()
	code, out, errOut := dgcall(t, "-sock", sock, "-hold-body", "0.5", "POST", "/c", "late")
	if code != 0 || out != "200\nlate" {
		t.Fatalf("exit %d, %q, %q", code, out, errOut)
	}
	if head := (<-gotHead).Sub(start); head > 300*time.Millisecond {
		t.Errorf("the head arrived after %v: it was held with the body", head)
	}
	if total := time.Since(start); total < 500*time.Millisecond {
		t.Errorf("the exchange took %v: the body was not held", total)
	}
}

func TestHoldWaitsBeforeTheRequestAndTimeoutEndsIt(t *testing.T) {
	sock := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") })
	start := time.Now()
	if code, out, _ := dgcall(t, "-sock", sock, "-hold", "0.3", "GET", "/_ping"); code != 0 || out != "200\nOK" || time.Since(start) < 300*time.Millisecond {
		t.Errorf("hold: exit %d, %q after %v", code, out, time.Since(start))
	}
	if code, _, errOut := dgcall(t, "-sock", sock, "-timeout", "200ms", "-hold", "5", "GET", "/_ping"); code != exitTransport {
		t.Errorf("a hold past the timeout: exit %d (%s), want %d", code, errOut, exitTransport)
	}
	// A stream that never ends is cut by the timeout: its head came.
	stream := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	if code, out, _ := dgcall(t, "-sock", stream, "-timeout", "300ms", "GET", "/events"); code != exitCutBody || out != "200\n" {
		t.Errorf("a stream past the timeout: exit %d, %q, want %d", code, out, exitCutBody)
	}
}
