package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/syncbuf"
	"github.com/rs/zerolog"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCheck(t *testing.T) {
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "ci.csv"), []byte("# CI\ng, user:jenkins, role:ci\np, role:ci, capabilty, SYS_ADMIN, allow\np, role:ci, endpoint, *, alow\n"), 0o644)
	// A uid no host names, made a tenant owning by user name: it loads,
	// and check warns that its every create will be refused.
	unnamed := t.TempDir()
	os.WriteFile(filepath.Join(unnamed, "ci.csv"), []byte("p, role:ci, endpoint, *, allow\np, role:ci, tenant, user, allow\ng, uid:4294967000, role:ci\n"), 0o644)
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string // regexps
	}{
		{"the embedded default policy checks", []string{"check"}, 0,
			`^ok: \d+ rules, 0 roles, sha256:[0-9a-f]{64}\n$`, `^$`},
		{"the CI example checks", []string{"check", "--policy", "../../policies/ci"}, 0,
			`^ok: \d+ rules, 1 roles, sha256:[0-9a-f]{64}\n$`, `^$`},
		{"the monitoring example checks", []string{"check", "--policy", "../../policies/read-only-monitoring"}, 0,
			`^ok: \d+ rules, 1 roles, sha256:`, `^$`},
		{"unknown kind is a check error with file and line", []string{"check", "--policy", broken}, 1,
			`^$`, `^` + regexp.QuoteMeta(broken) + `/ci.csv:3: unknown fact kind "capabilty" .*\n` + regexp.QuoteMeta(broken) + `/ci.csv:4: unknown effect "alow".*\ndockgate check: policy not loaded: 2 problems\n$`},
		{"a tenant that can own nothing is a warning", []string{"check", "--policy", unnamed}, 0,
			`^ok: 2 rules, 1 roles, `, `^ci.csv:3: warning: uid:4294967000: .*has no name in the host.s user database`},
		{"a missing directory is an error", []string{"check", "--policy", filepath.Join(broken, "nope")}, 1,
			`^$`, `nope: .*no such file`},
		{"arguments are a usage error", []string{"check", "extra"}, 2, `^$`, `unexpected argument`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !regexp.MustCompile(tt.stdout).MatchString(stdout) {
				t.Errorf("stdout %q does not match %q", stdout, tt.stdout)
			}
			if !regexp.MustCompile(tt.stderr).MatchString(stderr) {
				t.Errorf("stderr %q does not match %q", stderr, tt.stderr)
			}
		})
	}
}

func TestCheckHashIsTheServedHash(t *testing.T) {
	_, stdout, _ := runCmd(t, "check", "--policy", "../../policies/ci")
	p, err := loadPolicy("../../policies/ci")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, p.Hash) {
		t.Fatalf("check prints %q, the loaded policy's hash is %s", stdout, p.Hash)
	}
}

func TestServeRefusesToStartWithABrokenPolicy(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ci.csv"), []byte("p, *, endpoint, *, allow\np, *, bind, /srv/***, allow\n"), 0o644)
	sock := filepath.Join(t.TempDir(), "dockgate.sock")
	code, _, stderr := runCmd(t, "serve", "--policy", dir, "--listen", "unix://"+sock, "--audit-log", filepath.Join(t.TempDir(), "audit.log"))
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "ci.csv:2:") || !strings.Contains(stderr, "three or more") {
		t.Fatalf("startup error does not name the file and line:\n%s", stderr)
	}
	if _, err := os.Stat(sock); err == nil {
		t.Fatal("the socket was created before the policy loaded")
	}
}

func TestServeReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("p, *, endpoint, system.ping, allow\n"), 0o644)
	p, err := loadPolicy(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o, err := parseServe([]string{"--config", "", "--policy", dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := newConfigReloader(ctx, o, p, zerolog.New(&logs), nil, nil, nil, nil)
	r.watchSIGHUP(ctx)
	d := r.decider

	waitLog := func(want string) string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if s := logs.String(); strings.Contains(s, want) {
				return s
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no log line with %q:\n%s", want, logs.String())
		return ""
	}

	// A broken policy: logged with file and line, the old one stays.
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("p, *, endpoint, *, alow\n"), 0o644)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	out := waitLog("reload failed")
	if !strings.Contains(out, "a.csv:1: unknown effect") || !strings.Contains(out, p.Hash) {
		t.Fatalf("failed reload log does not name the file and line and the hash kept:\n%s", out)
	}
	if d.Policy() != p {
		t.Fatal("a failed reload replaced the policy")
	}

	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("p, *, endpoint, *, allow\n"), 0o644)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog("config and policy reloaded")
	if d.Policy() == p || !strings.Contains(logs.String(), d.Policy().Hash) {
		t.Fatalf("reload not in force or its hash not logged:\n%s", logs.String())
	}
}
