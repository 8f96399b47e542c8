package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	// A dockgate installed on the test machine must not change the tests.
	defaultConfigPath = filepath.Join(os.TempDir(), "dockgate-test-no-such-dir", "dockgate.yaml")
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "dockgate.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestConfigFileGood(t *testing.T) {
	file := writeConfig(t, `# every key
listen:
  - unix:///run/dg/a.sock
  - unix:///run/dg/b.sock
socket_mode: 0640
socket_group: docker
upstream: unix:///run/docker-private.sock
policy: policies/ci
mode: audit
shutdown_grace: 45s
gc_interval: 5m
audit:
  log: /var/log/dockgate/audit.log
  fail: open
  hmac_key: ""
  max_size: 100MiB
  max_age: 24h
  compress: true
  syslog: unix:///dev/log
  journald: false
limits:
  max_connections: 64
  max_connections_per_caller: 16
  max_body: 2MiB
  max_spool: 1GiB
  spool_dir: /var/tmp
  max_header: 64KiB
  header_timeout: 10s
  idle_timeout: 5m
tls:
  cert: ""
  key: ""
  client_ca: ""
signatures:
  docker_config: registry/config.json
  ca_files: [/etc/ssl/registry-ca.pem, ca/other.pem]
  timeout: 3s
  insecure_registries: registry.lan:5000
  cache_size: 0
`)
	o, err := parseServe([]string{"--config", file}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(file)
	want := serveOptions{
		config: file, listen: listFlag{"unix:///run/dg/a.sock", "unix:///run/dg/b.sock"},
		socketMode: "0640", socketGroup: "docker", upstream: "unix:///run/docker-private.sock",
		policy: filepath.Join(dir, "policies/ci"), auditLog: "/var/log/dockgate/audit.log", mode: "audit",
		maxConns: 64, maxConnsPerCaller: 16, maxBody: "2MiB", maxSpool: "1GiB", spoolDir: "/var/tmp", shutdownGrace: 45 * time.Second, gcInterval: 5 * time.Minute,
		maxHeader: "64KiB", headerTimeout: 10 * time.Second, idleTimeout: 5 * time.Minute,
		audit: auditServeOptions{fail: "open", maxSize: "100MiB", maxAge: 24 * time.Hour, compress: true, syslog: "unix:///dev/log"},
		signatures: signatureOptions{dockerConfig: filepath.Join(dir, "registry/config.json"), caFiles: listFlag{"/etc/ssl/registry-ca.pem", filepath.Join(dir, "ca/other.pem")},
			timeout: 3 * time.Second, insecure: listFlag{"registry.lan:5000"}, cacheSize: 0},
	}
	if got := *o; !equalOptions(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func equalOptions(a, b serveOptions) bool {
	return a.config == b.config && strings.Join(a.listen, ",") == strings.Join(b.listen, ",") &&
		a.socketMode == b.socketMode && a.socketGroup == b.socketGroup && a.upstream == b.upstream &&
		a.policy == b.policy && a.auditLog == b.auditLog && a.mode == b.mode && a.maxConns == b.maxConns && a.maxConnsPerCaller == b.maxConnsPerCaller &&
		a.maxBody == b.maxBody && a.maxSpool == b.maxSpool && a.spoolDir == b.spoolDir &&
		a.tlsCert == b.tlsCert && a.tlsKey == b.tlsKey && a.tlsClientCA == b.tlsClientCA &&
		a.shutdownGrace == b.shutdownGrace && a.gcInterval == b.gcInterval && a.audit == b.audit &&
		reflect.DeepEqual(a.signatures, b.signatures)
}

func TestConfigFileBad(t *testing.T) {
	tests := []struct {
		name, text string
		want       string // regexp; FILE stands for the file's path
	}{
		{"unknown key", "upstream: unix:///x.sock\nlisten_on: unix:///y.sock\n", `FILE:2: unknown key "listen_on"`},
		{"unknown nested key", "audit:\n  log: \"-\"\n  rotate: yes\n", `FILE:3: unknown key "rotate"`},
		{"misplaced key", "limits:\n  mode: audit\n", `FILE:2: unknown key "mode"`},
		{"duplicate key", "mode: audit\nmode: enforce\n", `FILE:2: .*already defined`},
		{"syntax", "mode: audit\npolicy: a: b\n", `FILE:2: mapping values are not allowed`},
		{"tab", "mode: audit\n\tpolicy: /x\n", `FILE:2: found a tab`},
		{"section not a mapping", "audit: /var/log/a.log\n", `FILE:1: cannot unmarshal`},
		{"bad mode", "\n\nmode: enforcing\n", `FILE:3: mode: "enforcing": want enforce or audit`},
		{"bad socket mode", "socket_mode: rw-rw----\n", `FILE:1: socket_mode: "rw-rw----": want an octal mode`},
		{"socket mode too large", "socket_mode: 7777\n", `FILE:1: socket_mode: "7777"`},
		{"bad upstream", "upstream: /var/run/docker.sock\n", `FILE:1: upstream: .*want unix:///path or tcp://host:port`},
		{"bad duration", "shutdown_grace: 30\n", `FILE:1: shutdown_grace: "30": want a duration`},
		{"negative duration", "audit:\n  max_age: -1h\n", `FILE:2: audit.max_age: "-1h": want a duration`},
		{"bad gc interval", "mode: audit\ngc_interval: often\n", `FILE:2: gc_interval: "often": want a duration`},
		{"negative gc interval", "gc_interval: -1m\n", `FILE:1: gc_interval: "-1m": want a duration`},
		{"bad size", "limits:\n  max_body: lots\n", `FILE:2: limits.max_body: "lots": want a size`},
		{"zero size", "limits:\n  max_spool: 0\n", `FILE:2: limits.max_spool: "0": want a size`},
		{"bad int", "limits:\n  max_connections: many\n", `FILE:2: limits.max_connections: "many": want a whole number`},
		{"bad bool", "audit:\n  compress: yes\n", `FILE:2: audit.compress: "yes": want true or false`},
		{"bad fail", "audit:\n  fail: maybe\n", `FILE:2: audit.fail: "maybe": want closed or open`},
		{"list where one value", "upstream:\n  - unix:///a.sock\n", `FILE:2: upstream: want a single value`},
		{"mapping in list", "listen:\n  - {a: b}\n", `FILE:2: listen: line 2: want a string`},
		{"empty value", "policy:\n", `FILE:1: policy: no value`},
		{"zero signature timeout", "signatures:\n  timeout: 0s\n", `FILE:2: signatures.timeout: "0s": want a positive duration`},
		{"negative signature cache", "signatures:\n  cache_size: -1\n", `FILE:2: signatures.cache_size: "-1": want a whole number of 0 or more`},
		{"misspelt signatures key", "signatures:\n  dockerconfig: /root/.docker/config.json\n", `FILE:2: unknown key "dockerconfig"`},
		{"two documents", "mode: audit\n---\nmode: enforce\n", `FILE:2: a second YAML document`},
		{"two problems", "mode: x\nlimits:\n  max_body: y\n", `FILE:1: mode: .*\nFILE:3: limits.max_body: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeConfig(t, tt.text)
			_, err := parseServe([]string{"--config", file}, io.Discard)
			if err == nil {
				t.Fatalf("no error for\n%s", tt.text)
			}
			re := regexp.MustCompile(strings.ReplaceAll(tt.want, "FILE", regexp.QuoteMeta(file)))
			if !re.MatchString(err.Error()) {
				t.Errorf("error\n%v\ndoes not match %s", err, re)
			}
		})
	}
}

func TestConfigFlagsOverride(t *testing.T) {
	file := writeConfig(t, "listen: [unix:///from/file.sock]\nmode: audit\nupstream: unix:///file-upstream.sock\nlimits:\n  max_body: 2MiB\naudit:\n  compress: true\n  log: /tmp/a.log\n")
	o, err := parseServe([]string{"--config", file, "--listen", "unix:///from/flag.sock", "--mode", "enforce", "--audit-compress=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.listen, ",") != "unix:///from/flag.sock" || o.mode != "enforce" || o.audit.compress {
		t.Errorf("flags did not override the file: listen %v mode %s compress %v", o.listen, o.mode, o.audit.compress)
	}
	if o.upstream != "unix:///file-upstream.sock" || o.maxBody != "2MiB" || o.auditLog != "/tmp/a.log" {
		t.Errorf("file settings lost: upstream %s max-body %s audit-log %s", o.upstream, o.maxBody, o.auditLog)
	}
	// A bad value in the file is still an error when a flag overrides it:
	// the file is wrong whatever the command line says.
	bad := writeConfig(t, "mode: x\n")
	if _, err := parseServe([]string{"--config", bad, "--mode", "audit"}, io.Discard); err == nil || !strings.Contains(err.Error(), bad+":1: mode") {
		t.Errorf("a bad value overridden by a flag: %v, want an error naming %s:1", err, bad)
	}
}

func TestConfigDefaultPath(t *testing.T) {
	old := defaultConfigPath
	t.Cleanup(func() { defaultConfigPath = old })
	// Absent: no config, defaults.
	defaultConfigPath = filepath.Join(t.TempDir(), "dockgate.yaml")
	o, err := parseServe(nil, io.Discard)
	if err != nil || o.config != "" || o.mode != "enforce" {
		t.Fatalf("absent default config: %+v, %v", o, err)
	}
	// Present: read.
	os.WriteFile(defaultConfigPath, []byte("mode: audit\n"), 0o644)
	o, err = parseServe(nil, io.Discard)
	if err != nil || o.config != defaultConfigPath || o.mode != "audit" {
		t.Fatalf("present default config: %+v, %v", o, err)
	}
	// check reads it too.
	if code, stdout, _ := runCmd(t, "check"); code != 0 || !strings.Contains(stdout, "ok: config "+defaultConfigPath) {
		t.Errorf("check with a default config: exit %d\n%s", code, stdout)
	}
	os.WriteFile(defaultConfigPath, []byte("mode: audit\nmodes: x\n"), 0o644)
	if code, _, stderr := runCmd(t, "check"); code != 1 || !strings.Contains(stderr, defaultConfigPath+":2: unknown key") {
		t.Errorf("check with a bad default config: exit %d\n%s", code, stderr)
	}
	// --config "" reads none.
	o, err = parseServe([]string{"--config", ""}, io.Discard)
	if err != nil || o.config != "" || o.mode != "enforce" {
		t.Fatalf("--config \"\": %+v, %v", o, err)
	}
	// A given file that is missing is an error.
	if _, err := parseServe([]string{"--config", filepath.Join(t.TempDir(), "nope.yaml")}, io.Discard); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("missing --config file: %v", err)
	}
}

func TestServeMissingConfigExits2(t *testing.T) {
	code, _, stderr := runCmd(t, "serve", "--config", filepath.Join(t.TempDir(), "nope.yaml"))
	if code != 2 || !strings.Contains(stderr, "no such file") {
		t.Errorf("exit %d, want 2 saying the file is missing\n%s", code, stderr)
	}
}

func TestCheckConfig(t *testing.T) {
	brokenPolicy := t.TempDir()
	os.WriteFile(filepath.Join(brokenPolicy, "ci.csv"), []byte("p, role:ci, endpoint, *, alow\n"), 0o644)
	good := writeConfig(t, "policy: "+absPath(t, "../../policies/ci")+"\nmode: audit\n")
	badKey := writeConfig(t, "mode: audit\npolicies: /etc/dockgate/policy\n")
	badPolicy := writeConfig(t, "policy: "+brokenPolicy+"\n")
	badUpstreamTLS := writeConfig(t, "listen: [tcp://127.0.0.1:2376]\n")
	badHMAC := writeConfig(t, "audit:\n  log: /tmp/x.log\n  hmac_key: /nonexistent/key\n")
	relPolicy := writeConfig(t, "policy: nope\n")
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string // regexps
	}{
		{"good config", []string{"check", "--config", good}, 0, `^ok: config .*\nok: \d+ rules, 1 roles, sha256:`, `^$`},
		{"--policy overrides the config's", []string{"check", "--config", good, "--policy", brokenPolicy}, 1, `^$`, `ci.csv:1: .*alow`},
		{"unknown key", []string{"check", "--config", badKey}, 1, `^$`, regexp.QuoteMeta(badKey) + `:2: unknown key "policies"\ndockgate check: config not valid`},
		{"the config's policy is checked", []string{"check", "--config", badPolicy}, 1, `^$`, `ci.csv:1: .*alow`},
		{"tcp listener without TLS", []string{"check", "--config", badUpstreamTLS}, 1, `^$`, `needs --tls-cert`},
		{"missing hmac key", []string{"check", "--config", badHMAC}, 1, `^$`, `--audit-hmac-key`},
		{"relative policy is relative to the config", []string{"check", "--config", relPolicy}, 1, `^$`, regexp.QuoteMeta(filepath.Join(filepath.Dir(relPolicy), "nope"))},
		{"missing config", []string{"check", "--config", "/nonexistent/dockgate.yaml"}, 1, `^$`, `--config: .*no such file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tt.args...)
			if code != tt.code || !regexp.MustCompile(tt.stdout).MatchString(stdout) || !regexp.MustCompile(tt.stderr).MatchString(stderr) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
		})
	}
}

func absPath(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestServeFromConfigFileReloadsItsPolicy starts serve with nothing but
// --config, and SIGHUP reloads the policy the file names.
func TestServeFromConfigFileReloadsItsPolicy(t *testing.T) {
	dir := shortTempDir(t)
	up := fakeDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[]`)
	}))
	policy := filepath.Join(dir, "policy")
	os.Mkdir(policy, 0o755)
	os.WriteFile(filepath.Join(policy, "a.csv"), []byte("p, *, endpoint, system.ping, allow\n"), 0o644)
	sock := filepath.Join(dir, "dg.sock")
	cfg := filepath.Join(dir, "dockgate.yaml")
	os.WriteFile(cfg, []byte("listen: unix://"+sock+"\nupstream: unix://"+up+"\npolicy: policy\naudit:\n  log: audit.log\n"), 0o644)
	p := startDockgate(t, sock, "--config", cfg)
	status := func(path string) int {
		resp, err := unixClient(sock).Get("http://docker" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status("/v1.41/containers/json"); s != http.StatusForbidden {
		t.Fatalf("container list before the reload: %d, want 403", s)
	}
	os.WriteFile(filepath.Join(policy, "a.csv"), []byte("p, *, endpoint, system.ping, allow\np, *, endpoint, container.list, allow\n"), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for status("/v1.41/containers/json") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("the config's policy was not reloaded:\n%s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "audit.log")); err != nil || !strings.Contains(string(b), "container.list") {
		t.Errorf("audit.log (relative to the config) not written: %v", err)
	}
}
