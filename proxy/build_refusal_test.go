package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/pkg/jsonmessage"
)

// clientError is what the docker CLI makes of a build's progress stream:
// the error that ends it, "" when none does.
func clientError(t *testing.T, stream []byte) string {
	t.Helper()
	err := jsonmessage.DisplayJSONMessagesStream(bytes.NewReader(stream), io.Discard, 0, false, func(jsonmessage.JSONMessage) {})
	var jerr *jsonmessage.JSONError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &jerr):
		return jerr.Message
	}
	t.Fatalf("the client could not read the stream: %v\n%s", err, stream)
	return ""
}

func TestBuildRefusalEndsTheProgressStream(t *testing.T) {
	const (
		trace     = `{"id":"moby.buildkit.trace","aux":"CgsKCXN0ZXAgb25l"}` + "\r\n"
		dockerErr = `{"errorDetail":{"message":"failed to read dockerfile: context canceled"},"error":"failed to read dockerfile: context canceled"}` + "\r\n"
	)
	refusal := errors.New(`dockgate: uid:1000 may not build from image docker.io/library/evil:latest: no rule allows it`)
	cases := []struct {
		name    string
		pieces  []string // as dockerd's reads return them
		refuse  int      // refused before piece refuse; -1 never
		want    string   // the error the client shows
		wantOut []string // lines that must reach the client
	}{
		{name: "an allowed build's stream passes whole", pieces: []string{trace, trace}, refuse: -1, want: "", wantOut: []string{trace + trace}},
		{name: "an allowed build's failure is dockerd's", pieces: []string{trace, dockerErr}, refuse: -1, want: "failed to read dockerfile: context canceled"},
		{name: "a refused Dockerfile replaces dockerd's context canceled", pieces: []string{trace, dockerErr}, refuse: 1, want: refusal.Error(), wantOut: []string{trace}},
		{name: "a refusal before any progress", pieces: []string{dockerErr}, refuse: 0, want: refusal.Error()},
		{name: "dockerd ends without an error of its own", pieces: []string{trace}, refuse: 1, want: refusal.Error()},
		{name: "a message split across reads waits for its end", pieces: []string{trace[:10], trace[10:30], trace[30:] + dockerErr[:5], dockerErr[5:]}, refuse: 2, want: refusal.Error(), wantOut: []string{trace}},
		{name: "a line dockerd never ended", pieces: []string{trace, trace[:20]}, refuse: 1, want: refusal.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := new(buildRefusal)
			var out []byte
			for i, p := range tc.pieces {
				if i == tc.refuse {
					b.refuse(refusal)
				}
				// pass may keep what it is given: dockerd's buffer is
				// reused for the next read.
				buf := []byte(p)
				out = append(out, b.pass(buf)...)
				for j := range buf {
					buf[j] = 'x'
				}
			}
			if tc.refuse == len(tc.pieces) {
				b.refuse(refusal)
			}
			tail, reason, _ := b.finish(context.Background(), nil)
			out = append(out, tail...)
			if (tc.refuse >= 0) != strings.HasPrefix(reason, "the build's Dockerfile was refused on its session: ") {
				t.Errorf("the record's reason is %q", reason)
			}
			if got := clientError(t, out); got != tc.want {
				t.Errorf("the client shows %q, want %q\nstream: %s", got, tc.want, out)
			}
			for _, w := range tc.wantOut {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("the stream lost %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestBuildRefusalEndsAStreamDockerdKeepsOpen(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	b := &buildRefusal{grace: 50 * time.Millisecond}
	b.attach(server)
	b.refuse(errors.New("dockgate: refused"))
	// dockerd says nothing more: the read ends at the deadline.
	done := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 1))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read ended with %v, want the deadline", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the read from dockerd was never cut after the refusal")
	}
	tail, _, absorbed := b.finish(context.Background(), os.ErrDeadlineExceeded)
	if !strings.Contains(string(tail), "dockgate: refused") || !absorbed {
		t.Fatalf("finish wrote %q, absorbing the cut: %v", tail, absorbed)
	}
	// The connection's deadline is cleared for whatever it carries next.
	go client.Write([]byte("y"))
	if _, err := server.Read(make([]byte, 1)); err != nil {
		t.Fatalf("the deadline outlived the build: %v", err)
	}
	// A refusal after the stream ended changes nothing.
	b.refuse(errors.New("late"))
	go client.Write([]byte("z"))
	if _, err := server.Read(make([]byte, 1)); err != nil {
		t.Fatalf("a late refusal cut the connection: %v", err)
	}
}
