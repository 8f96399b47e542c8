package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
)

// BenchmarkPingRoundTrip measures one keep-alive GET /_ping through the
// proxy to a dockerd stand-in that answers at once: what dockgate adds to
// every request, with the default policy deciding.
func BenchmarkPingRoundTrip(b *testing.B) {
	dir, err := os.MkdirTemp("/tmp", "pb")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	upPath := filepath.Join(dir, "up.sock")
	ul, err := net.Listen("unix", upPath)
	if err != nil {
		b.Fatal(err)
	}
	defer ul.Close()
	go func() {
		for {
			c, err := ul.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nOK")
				}
			}()
		}
	}()
	pol, err := policy.Default()
	if err != nil {
		b.Fatal(err)
	}
	srv := New(Config{
		Upstream: Upstream{URL: "unix://" + upPath, Network: "unix", Address: upPath},
		Router:   authz.NewRouter(),
		Decider:  authz.NewPolicyDecider(pol),
		Audit:    audit.NewLogger(io.Discard),
		Log:      zerolog.Nop(),
		Identify: stubIdentify,
	})
	sock := filepath.Join(dir, "dg.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, l); close(done) }()
	defer func() { cancel(); <-done }()

	c, err := net.Dial("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: bench\r\n\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
