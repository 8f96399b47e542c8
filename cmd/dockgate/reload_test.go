package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// oneShotClient opens a new connection for every request: connections
// keep the limits they were accepted with, and a reload's new limits are
// for new connections.
func oneShotClient(sock string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

// TestSIGHUPReloadsTheConfigFile changes the mode, the body limit and the
// policy in the config file, then breaks it, then changes the listener,
// with a SIGHUP after each change.
func TestSIGHUPReloadsTheConfigFile(t *testing.T) {
	dir := shortTempDir(t)
	up := fakeDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"Id":"abc","Warnings":[]}`)
			return
		}
		io.WriteString(w, `[]`)
	}))
	policy := filepath.Join(dir, "policy")
	os.Mkdir(policy, 0o755)
	writePolicy := func(rows string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(policy, "a.csv"), []byte(rows), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy("p, *, endpoint, system.ping, allow\np, *, endpoint, container.create, allow\np, *, image, **, allow\n")
	sock := filepath.Join(dir, "dg.sock")
	cfg := filepath.Join(dir, "dockgate.yaml")
	base := "listen: unix://" + sock + "\nupstream: unix://" + up + "\npolicy: policy\naudit:\n  log: audit.log\n"
	writeConfig := func(extra string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(base+extra), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("mode: enforce\nlimits:\n  max_body: 64KiB\n")
	p := startDockgate(t, sock, "--config", cfg)

	do := func(method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://docker"+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := oneShotClient(sock).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, p.stderr.String())
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	hup := func(want string, n int) string {
		t.Helper()
		p.cmd.Process.Signal(syscall.SIGHUP)
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(p.stderr.String(), want) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %d log lines with %q after SIGHUP:\n%s", n, want, p.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return p.stderr.String()
	}
	big := `{"Image":"busybox","Env":["X=` + strings.Repeat("a", 2000) + `"]}`

	if s := do("GET", "/v1.41/containers/json", ""); s != http.StatusForbidden {
		t.Fatalf("container list before the reload: %d, want 403", s)
	}
	if s := do("GET", "/v1.41/images/json", ""); s != http.StatusForbidden {
		t.Fatalf("image list before the reload: %d, want 403", s)
	}
	if s := do("POST", "/v1.41/containers/create", big); s == http.StatusRequestEntityTooLarge {
		t.Fatalf("a 2 KB create under a 64 KiB limit: %d\n%s", s, p.stderr.String())
	}

	// Mode, body limit and policy change together.
	writePolicy("p, *, endpoint, system.ping, allow\np, *, endpoint, container.create, allow\np, *, image, **, allow\np, *, endpoint, container.list, allow\n")
	writeConfig("mode: audit\nlimits:\n  max_body: 1KiB\n")
	out := hup("config and policy reloaded", 1)
	if !strings.Contains(out, `"mode":"audit"`) || !strings.Contains(out, `"max_body":1024`) || !strings.Contains(out, `"hash":"sha256:`) {
		t.Fatalf("the reload log does not say what is in force:\n%s", out)
	}
	if s := do("GET", "/v1.41/containers/json", ""); s != http.StatusOK {
		t.Fatalf("container list after the policy allows it: %d, want 200", s)
	}
	if s := do("POST", "/v1.41/containers/create", big); s != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 2 KB create under the new 1 KiB limit: %d, want 413", s)
	}
	// Audit mode: what the policy refuses is forwarded and recorded.
	if s := do("GET", "/v1.41/images/json", ""); s != http.StatusOK {
		t.Fatalf("image list in audit mode: %d, want 200", s)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
		if strings.Contains(string(b), `"would_deny":true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit mode did not record a would-deny:\n%s", b)
		}
	}

	// A broken config: everything in force stays, the log names the line.
	os.WriteFile(cfg, []byte(base+"mode: audit\nlimits:\n  max_body: 1KiB\n  max_boddy: 2KiB\n"), 0o644)
	out = hup("reload failed", 1)
	if !strings.Contains(out, cfg+":9: unknown key") {
		t.Fatalf("the failed reload does not name the file and line:\n%s", out)
	}
	// A broken policy the config names: the same.
	writeConfig("mode: enforce\nlimits:\n  max_body: 64KiB\n")
	writePolicy("p, *, endpoint, *, alow\n")
	out = hup("reload failed", 2)
	if !strings.Contains(out, "a.csv:1: unknown effect") {
		t.Fatalf("the failed policy reload does not name the file and line:\n%s", out)
	}
	if s := do("POST", "/v1.41/containers/create", big); s != http.StatusRequestEntityTooLarge {
		t.Fatalf("after failed reloads the 1 KiB limit must stay: %d, want 413", s)
	}
	if s := do("GET", "/v1.41/images/json", ""); s != http.StatusOK {
		t.Fatalf("after failed reloads audit mode must stay: %d, want 200", s)
	}

	// A changed listener needs a restart: warned, the old one serves on.
	writePolicy("p, *, endpoint, system.ping, allow\np, *, endpoint, container.list, allow\n")
	other := filepath.Join(dir, "other.sock")
	os.WriteFile(cfg, []byte(strings.Replace(base, sock, other, 1)+"mode: enforce\n"), 0o644)
	out = hup("config and policy reloaded", 2)
	if !strings.Contains(out, `"setting":"listen"`) || !strings.Contains(out, "needs a restart to take effect") {
		t.Fatalf("no restart warning for the changed listener:\n%s", out)
	}
	if s := do("GET", "/v1.41/containers/json", ""); s != http.StatusOK {
		t.Fatalf("the old listener after the reload: %d, want 200", s)
	}
	if s := do("GET", "/v1.41/images/json", ""); s != http.StatusForbidden {
		t.Fatalf("image list back in enforce mode: %d, want 403", s)
	}
	if _, err := os.Stat(other); err == nil {
		t.Fatalf("the new listener was opened without a restart")
	}
}
