package dockerd

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockerd/dockerdtest"
)

func TestPing(t *testing.T) {
	up, err := New(dockerdtest.Serve(t, &dockerdtest.Objects{}))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if err := up.Ping(context.Background(), 5*time.Second); err != nil {
		t.Fatalf("ping: %v", err)
	}

	broken, err := New(dockerdtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer broken.Close()
	if err := broken.Ping(context.Background(), 5*time.Second); err == nil || err.Error() != "/_ping answered 500 Internal Server Error" {
		t.Fatalf("ping of a failing dockerd: %v", err)
	}

	slow, err := New(dockerdtest.Serve(t, &dockerdtest.Objects{Delay: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if err := slow.Ping(context.Background(), 100*time.Millisecond); err == nil || err.Error() != "no answer to /_ping within 100ms" {
		t.Fatalf("ping of a dockerd that does not answer: %v", err)
	}

	sock := filepath.Join(t.TempDir(), "missing.sock")
	down, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if err := down.Ping(context.Background(), 5*time.Second); err == nil || !strings.HasPrefix(err.Error(), "dial unix "+sock+": ") {
		t.Fatalf("ping without dockerd: %v, want the dial error alone", err)
	}
}
