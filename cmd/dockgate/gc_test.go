package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGCCommandUsage(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"neither owner nor expired", []string{"--upstream", sock}, "want --owner SUBJECT or --expired"},
		{"both", []string{"--upstream", sock, "--owner", "user:a", "--expired"}, "give one"},
		{"a bare name", []string{"--upstream", sock, "--owner", "nobody"}, `--owner "nobody"`},
		{"a group is no owner", []string{"--upstream", sock, "--owner", "group:ci"}, `--owner "group:ci"`},
		{"a role is no owner", []string{"--upstream", sock, "--owner", "role:ci"}, `--owner "role:ci"`},
		{"the prefix alone", []string{"--upstream", sock, "--owner", "user:"}, `--owner "user:"`},
		{"negative age", []string{"--upstream", sock, "--expired", "--older-than", "-1h"}, "--older-than"},
		{"bad age", []string{"--upstream", sock, "--expired", "--older-than", "a while"}, "older-than"},
		{"an argument", []string{"--upstream", sock, "--expired", "now"}, `unexpected argument "now"`},
		{"bad upstream", []string{"--config", "", "--upstream", "/var/run/docker.sock", "--expired"}, "upstream"},
		{"missing config", []string{"--config", filepath.Join(t.TempDir(), "none.yaml"), "--expired"}, "--config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, append([]string{"gc"}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want 2 with %q\nstdout: %s\nstderr: %s", code, tc.want, stdout, stderr)
			}
		})
	}
}

func TestGCCommandUnreachableDockerdExits1(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	for _, owner := range []string{"user:nobody", "uid:65533", "unit:ci-job-7.service", "container:runner", "cert:ci.example.com"} {
		code, stdout, stderr := runCmd(t, "gc", "--config", "", "--upstream", sock, "--owner", owner)
		if code != 1 || !strings.Contains(stderr, "list containers") || !strings.Contains(stdout, "3 failed") {
			t.Errorf("--owner %s: exit %d, want 1 naming the failed lists\nstdout: %s\nstderr: %s", owner, code, stdout, stderr)
		}
	}
}

func TestGCCommandReadsTheConfigsUpstream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "from-config.sock")
	file := writeConfig(t, "upstream: unix://"+sock+"\n")
	code, _, stderr := runCmd(t, "gc", "--config", file, "--expired")
	if code != 1 || !strings.Contains(stderr, sock) {
		t.Errorf("exit %d, want 1 naming the config's upstream %s\n%s", code, sock, stderr)
	}
	bad := writeConfig(t, "mode: audit\nupstream: /x.sock\n")
	code, _, stderr = runCmd(t, "gc", "--config", bad, "--expired")
	if code != 2 || !strings.Contains(stderr, bad+":2:") {
		t.Errorf("bad config: exit %d, want 2 naming %s:2\n%s", code, bad, stderr)
	}
}

func TestServeGCIntervalFlag(t *testing.T) {
	o, err := parseServe([]string{"--config", ""}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.gcInterval != time.Minute {
		t.Errorf("default --gc-interval %v, want 1m", o.gcInterval)
	}
	if _, err := parseServe([]string{"--config", "", "--gc-interval", "-1s"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--gc-interval") {
		t.Errorf("--gc-interval -1s: %v, want an error naming the flag", err)
	}
}
