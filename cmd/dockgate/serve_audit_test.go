package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/audit"
)

func auditFlags(t *testing.T, args ...string) *serveOptions {
	t.Helper()
	var stderr strings.Builder
	o, err := parseServe(args, &stderr)
	if err != nil {
		t.Fatalf("parseServe %q: %v %s", args, err, stderr.String())
	}
	return o
}

func record(i int) *audit.Record {
	return &audit.Record{Time: time.Unix(int64(i), 0), RequestID: "r-" + strings.Repeat("x", i%7), Method: "GET", Path: "/_ping", Action: "system.ping", Decision: audit.DecisionAllow, Status: 200}
}

// --audit-hmac-key makes the chain HMAC-SHA-256: verify needs the key.
func TestServeAuditHMACKey(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	logPath := filepath.Join(dir, "audit.log")
	o := auditFlags(t, "--audit-log", logPath, "--audit-hmac-key", keyFile)
	l, err := openAudit(o.auditLog, &o.audit, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	l.Write(record(1))
	l.Close()
	b, _ := os.ReadFile(logPath)
	if !strings.Contains(string(b), `"alg":"hmac-sha256"`) {
		t.Fatalf("the segment header does not name HMAC:\n%s", b)
	}
	code, out, _ := runCmd(t, "audit", "verify", "--hmac-key", keyFile, logPath)
	if code != 0 || !strings.Contains(out, "ok: 1 records") {
		t.Fatalf("verify with the key: exit %d\n%s", code, out)
	}
	if code, out, _ := runCmd(t, "audit", "verify", logPath); code != 1 || !strings.Contains(out, "--hmac-key") {
		t.Fatalf("verify without the key: exit %d\n%s", code, out)
	}

	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("guessable\n"), 0o600)
	for _, key := range []string{short, filepath.Join(dir, "missing")} {
		sock := filepath.Join(t.TempDir(), "dockgate.sock")
		code, _, stderr := runCmd(t, "serve", "--listen", "unix://"+sock, "--audit-log", filepath.Join(t.TempDir(), "audit.log"), "--audit-hmac-key", key)
		if code != 1 || !strings.Contains(stderr, "--audit-hmac-key") {
			t.Errorf("--audit-hmac-key %s: exit %d, want 1 naming the flag\n%s", key, code, stderr)
		}
	}
}

func TestServeAuditFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--audit-fail", "maybe"},
		{"--audit-max-size", "lots", "--audit-log", "x.log"},
		{"--audit-max-size", "0", "--audit-log", "x.log"},
		{"--audit-max-age", "-1h", "--audit-log", "x.log"},
		{"--audit-max-size", "1MiB"}, // stdout cannot rotate
		{"--audit-compress"},
	} {
		o := auditFlags(t, args...)
		if o.auditLog != "-" {
			o.auditLog = filepath.Join(t.TempDir(), o.auditLog)
		}
		if l, err := openAudit(o.auditLog, &o.audit, zerolog.Nop()); err == nil {
			l.Close()
			t.Errorf("%q: accepted", args)
		} else if !strings.Contains(err.Error(), "--audit-") {
			t.Errorf("%q: %v does not name the flag", args, err)
		}
	}
}

// The failure mode defaults to closed for a file and open for stdout.
func TestServeAuditFailDefaults(t *testing.T) {
	// /dev/full fails every write with ENOSPC: a Logger is made on it
	// through the same options as openAudit gives, minus the path.
	for _, tc := range []struct {
		args     []string
		failOpen bool
	}{
		{[]string{"--audit-log", "-"}, true},
		{[]string{"--audit-log", "-", "--audit-fail", "closed"}, false},
		{[]string{"--audit-log", "FILE"}, false},
		{[]string{"--audit-log", "FILE", "--audit-fail", "open"}, true},
	} {
		o := auditFlags(t, tc.args...)
		if o.auditLog == "FILE" {
			o.auditLog = filepath.Join(t.TempDir(), "audit.log")
		}
		var logged strings.Builder
		opts, err := auditOptions(o.auditLog, &o.audit, zerolog.New(&logged))
		if err != nil {
			t.Fatal(err)
		}
		if opts.FailOpen != tc.failOpen {
			t.Errorf("%q: fail open %v, want %v", tc.args, opts.FailOpen, tc.failOpen)
		}
		full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		if err != nil {
			t.Skip("no /dev/full")
		}
		l := audit.NewLogger(full, opts)
		l.Write(record(1))
		full.Close()
		if err := l.Check(); (err == nil) != tc.failOpen {
			t.Errorf("%q: Check on a full disk: %v", tc.args, err)
		}
		if !strings.Contains(logged.String(), "audit log unavailable") || !strings.Contains(logged.String(), "no space left on device") {
			t.Errorf("%q: the failure is not on the operational log: %s", tc.args, logged.String())
		}
	}
}

// --audit-max-size and --audit-compress rotate the file; "dockgate audit
// verify" and "query" read the rotated set in order.
func TestServeAuditRotation(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	o := auditFlags(t, "--audit-log", logPath, "--audit-max-size", "2KiB", "--audit-compress")
	var logged strings.Builder
	l, err := openAudit(o.auditLog, &o.audit, zerolog.New(&logged))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		l.Write(record(i))
	}
	l.Close()
	rotated, _ := filepath.Glob(logPath + ".*.gz")
	if len(rotated) < 3 || !strings.Contains(logged.String(), "audit log rotated") {
		t.Fatalf("rotated %v\n%s", rotated, logged.String())
	}
	files := append(rotated, logPath) // Glob sorts: the order they were written
	code, out, _ := runCmd(t, append([]string{"audit", "verify"}, files...)...)
	if code != 0 || !strings.Contains(out, "ok: 40 records, last seq 40") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, append([]string{"audit", "query", "--json"}, files...)...)
	if code != 0 || strings.Count(out, "\n") != 40 {
		t.Fatalf("query: exit %d, %d lines\n%s", code, strings.Count(out, "\n"), out)
	}
}

// --audit-syslog ships the lines of the chain; a bad target is refused.
func TestServeAuditSyslog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	o := auditFlags(t, "--audit-log", filepath.Join(t.TempDir(), "audit.log"), "--audit-syslog", "unix://"+sock)
	l, err := openAudit(o.auditLog, &o.audit, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	l.Write(record(1))
	l.Close()
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64<<10)
	for _, want := range []string{` dockgate `, `"type":"audit"`} { // the header, then the record
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(buf[:n]), "<86>1 ") || !strings.Contains(string(buf[:n]), want) {
			t.Fatalf("syslog message %q", buf[:n])
		}
	}
	o = auditFlags(t, "--audit-log", "-", "--audit-syslog", "udp://loghost:514")
	if _, err := openAudit(o.auditLog, &o.audit, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "--audit-syslog") {
		t.Fatalf("a bad --audit-syslog: %v", err)
	}
}

// --audit-journald opens the journal sink, or refuses to start where the
// journal's socket cannot be reached (then nothing would be shipped).
func TestServeAuditJournald(t *testing.T) {
	o := auditFlags(t, "--audit-log", filepath.Join(t.TempDir(), "audit.log"), "--audit-journald")
	if !o.audit.journald {
		t.Fatal("--audit-journald not parsed")
	}
	l, err := openAudit(o.auditLog, &o.audit, zerolog.Nop())
	if journal.Enabled() {
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		return
	}
	if err == nil || !strings.Contains(err.Error(), "--audit-journald") {
		t.Fatalf("no journal here, yet: %v", err)
	}
}
