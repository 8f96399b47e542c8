package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The idle deadline stays armed through simple requests (deadline.go):
// these are the ways that could go wrong. idle is short, so that every
// flow below outlasts it several times over.
func TestIdleDeadlineKeptThroughRequests(t *testing.T) {
	const idle = 300 * time.Millisecond
	const outlast = 4 * idle
	const ping = "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
	dir := shortDir(t)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		for {
			req, _, err := readRequestRaw(br)
			if err != nil {
				return
			}
			switch {
			case strings.HasSuffix(req.URL.Path, "/logs"):
				// A logs -f that goes quiet after its first line, until
				// dockgate cuts it or much later.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nline\n\r\n")
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				io.Copy(io.Discard, br)
				return
			case strings.HasSuffix(req.URL.Path, "/attach"):
				// An attach without Upgrade: raw from here, echoing
				// stdin until its end.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n")
				io.Copy(c, br)
				c.(interface{ CloseWrite() error }).CloseWrite()
				return
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
			}
		}
	})
	p := startProxy(t, dir, up.upstream(), func(c *Config) { c.IdleTimeout = idle })

	t.Run("a silent keep-alive connection closes after the idle timeout", func(t *testing.T) {
		c := p.dial()
		if r := c.roundTrip("GET", ping); r.body != "OK" {
			t.Fatalf("ping: %d %q", r.StatusCode, r.body)
		}
		start := time.Now()
		c.expectEOF()
		if waited := time.Since(start); waited < idle-idleSlack(idle) {
			t.Errorf("closed after %v of silence, before the idle timeout of %v", waited, idle)
		}
	})
	t.Run("a connection that keeps asking is never closed as idle", func(t *testing.T) {
		c := p.dial()
		for end := time.Now().Add(outlast); time.Now().Before(end); time.Sleep(idle / 3) {
			if r := c.roundTrip("GET", ping); r.body != "OK" {
				t.Fatalf("ping: %d %q", r.StatusCode, r.body)
			}
		}
	})
	t.Run("a quiet stream after a ping is still watched for its client leaving", func(t *testing.T) {
		c := p.dial()
		c.roundTrip("GET", ping)
		c.send("GET /containers/x/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
		resp := c.readHead("GET")
		line := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, line); err != nil || string(line) != "line\n" {
			t.Fatalf("first log line %q: %v", line, err)
		}
		time.Sleep(outlast)
		c.c.Close()
		// dockgate notices within a hangup poll and ends the stream; a
		// watcher stopped by an idle deadline would wait for dockerd,
		// which stays quiet for 30 s.
		waitFor(t, "the stream's record", 15*time.Second, func() bool {
			for _, r := range finals(p.records()) {
				if strings.HasSuffix(r.Path, "follow=1&stdout=1") {
					return true
				}
			}
			return false
		})
	})
	t.Run("a session after a ping reads stdin long after the idle timeout", func(t *testing.T) {
		c := p.dial()
		c.roundTrip("GET", ping)
		c.send("POST /containers/x/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
		if resp := c.readHead("POST"); resp.StatusCode != http.StatusOK {
			t.Fatalf("attach: %d", resp.StatusCode)
		}
		time.Sleep(outlast)
		c.send("late input\n")
		c.c.CloseWrite()
		out, err := io.ReadAll(c.br)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != "late input\n" {
			t.Fatalf("session output %q", out)
		}
	})
	for _, r := range finals(p.finalRecords()) {
		if r.Status != http.StatusOK || r.Decision != "allow" {
			t.Errorf("record of %s: status %d outcome %q reason %q", r.Path, r.Status, r.Outcome, r.Reason)
		}
	}
}
