package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestServeRefusesABadMaxBody(t *testing.T) {
	for _, v := range []string{"lots", "-1", "0"} {
		sock := filepath.Join(t.TempDir(), "dockgate.sock")
		code, _, stderr := runCmd(t, "serve", "--max-body", v, "--listen", "unix://"+sock, "--audit-log", filepath.Join(t.TempDir(), "audit.log"))
		if code != 1 || !strings.Contains(stderr, "--max-body") {
			t.Errorf("--max-body %s: exit %d, want 1 naming the flag\n%s", v, code, stderr)
		}
	}
}

func TestServeRefusesABadMaxSpool(t *testing.T) {
	for _, v := range []string{"lots", "-1", "0"} {
		sock := filepath.Join(t.TempDir(), "dockgate.sock")
		code, _, stderr := runCmd(t, "serve", "--max-spool", v, "--listen", "unix://"+sock, "--audit-log", filepath.Join(t.TempDir(), "audit.log"))
		if code != 1 || !strings.Contains(stderr, "--max-spool") {
			t.Errorf("--max-spool %s: exit %d, want 1 naming the flag\n%s", v, code, stderr)
		}
	}
}

func TestServeRefusesBadHeadLimits(t *testing.T) {
	for _, args := range [][]string{
		{"--max-header", "12"},
		{"--max-header", "1GiB"},
		{"--header-timeout", "0s"},
		{"--idle-timeout", "-1s"},
	} {
		sock := filepath.Join(t.TempDir(), "dockgate.sock")
		all := append([]string{"serve", "--listen", "unix://" + sock, "--audit-log", filepath.Join(t.TempDir(), "audit.log")}, args...)
		code, _, stderr := runCmd(t, all...)
		if code != 1 || !strings.Contains(stderr, strings.TrimPrefix(args[0], "--")) {
			t.Errorf("%v: exit %d, want 1 naming the flag\n%s", args, code, stderr)
		}
	}
}
