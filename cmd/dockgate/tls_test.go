package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestServeRefusesATCPListenerWithoutAllTLSFlags(t *testing.T) {
	dir := t.TempDir()
	for _, extra := range [][]string{
		nil,
		{"--tls-cert", filepath.Join(dir, "c.pem"), "--tls-key", filepath.Join(dir, "k.pem")},
		{"--tls-cert", filepath.Join(dir, "c.pem"), "--tls-client-ca", filepath.Join(dir, "ca.pem")},
	} {
		args := append([]string{"serve", "--listen", "tcp://127.0.0.1:0", "--audit-log", filepath.Join(dir, "audit.log")}, extra...)
		code, _, stderr := runCmd(t, args...)
		if code != 1 || !strings.Contains(stderr, "a tcp:// listener needs --tls-cert, --tls-key and --tls-client-ca") {
			t.Errorf("%v: exit %d, want 1 naming the TLS flags:\n%s", extra, code, stderr)
		}
	}
}

func TestServeRefusesTLSFlagsWithoutATCPListener(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCmd(t, "serve", "--listen", "unix://"+filepath.Join(dir, "s.sock"), "--tls-cert", filepath.Join(dir, "c.pem"))
	if code != 2 || !strings.Contains(stderr, "no --listen tcp://HOST:PORT is given") {
		t.Errorf("exit %d, want 2 saying no tcp:// listener uses the TLS flags:\n%s", code, stderr)
	}
}
