// Command dgcall is the Docker API client the end-to-end tests run inside
// a container, to be a caller that dockgate knows by its container's cgroup
// rather than by a host uid. It is built static (CGO_ENABLED=0) so that it
// runs in the busybox image, and does one request per invocation:
//
//	dgcall [-sock PATH] [-H 'Key: value']... [-timeout D] [-hold S] [-hold-body S] METHOD PATH [BODY]
//
// It prints the status code on the first line, then the body. BODY "-"
// reads it from stdin. Exit status: 0 when an answer came (whatever its
// status code), 1 when none did (connect or transport failure), 2 on bad
// usage, 3 when the answer's head came but its body was cut off.
//
// -hold S opens the connection and waits S seconds before it sends
// anything; -hold-body S sends the head, waits, then sends the body. Both
// let a test change the world (remove the container) while a request is
// on its way. The request is written by hand, not by net/http, so that
// what is on the wire and when is exactly what the flags say.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

const (
	exitAnswer    = 0
	exitTransport = 1
	exitUsage     = 2
	exitCutBody   = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dgcall", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sock := fs.String("sock", "/var/run/docker.sock", "the Docker API's Unix socket")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up on the whole exchange after this long (holds included)")
	hold := fs.Float64("hold", 0, "seconds to wait after connecting, before sending the request")
	holdBody := fs.Float64("hold-body", 0, "seconds to wait between the request's head and its body")
	var hdrs headers
	fs.Var(&hdrs, "H", "an extra request header 'Key: value' (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dgcall [-sock PATH] [-H 'Key: value'] [-timeout D] [-hold S] [-hold-body S] METHOD PATH [BODY|-]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() < 2 || fs.NArg() > 3 {
		fs.Usage()
		return exitUsage
	}
	method, path := strings.ToUpper(fs.Arg(0)), fs.Arg(1)
	var body []byte
	if fs.NArg() == 3 {
		if fs.Arg(2) == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				fmt.Fprintf(stderr, "dgcall: read the body from stdin: %v\n", err)
				return exitUsage
			}
			body = b
		} else {
			body = []byte(fs.Arg(2))
		}
	}
	for _, h := range hdrs {
		if k, _, ok := strings.Cut(h, ":"); !ok || strings.TrimSpace(k) == "" {
			fmt.Fprintf(stderr, "dgcall: bad header %q: want 'Key: value'\n", h)
			return exitUsage
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	code, err := call(ctx, *sock, method, path, body, hdrs, seconds(*hold), seconds(*holdBody), stdout)
	if err != nil {
		fmt.Fprintf(stderr, "dgcall: %s %s on %s: %v\n", method, path, *sock, err)
	}
	return code
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// call does the exchange and returns the exit status.
func call(ctx context.Context, sock, method, path string, body []byte, hdrs []string, hold, holdBody time.Duration, out io.Writer) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return exitTransport, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A cancelled context (the timeout) must end a read blocked on a
	// stream that never ends, not only the holds.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if err := sleep(ctx, hold); err != nil {
		return exitTransport, fmt.Errorf("hold before the request: %w", err)
	}
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: docker\r\nUser-Agent: dgcall\r\nConnection: close\r\n", method, path)
	hasType := false
	for _, h := range hdrs {
		k, v, _ := strings.Cut(h, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		hasType = hasType || strings.EqualFold(k, "Content-Type")
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	if body != nil {
		if !hasType {
			head.WriteString("Content-Type: application/json\r\n")
		}
		fmt.Fprintf(&head, "Content-Length: %d\r\n", len(body))
	} else if method == http.MethodPost || method == http.MethodPut {
		head.WriteString("Content-Length: 0\r\n")
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		return exitTransport, fmt.Errorf("send the head: %w", err)
	}
	if len(body) > 0 {
		if err := sleep(ctx, holdBody); err != nil {
			return exitTransport, fmt.Errorf("hold before the body: %w", err)
		}
		if _, err := conn.Write(body); err != nil {
			return exitTransport, fmt.Errorf("send the body: %w", err)
		}
	}

	req, err := http.NewRequest(method, "http://docker"+path, nil)
	if err != nil { // only for reading the answer: ReadResponse wants its method
		return exitUsage, fmt.Errorf("bad request line: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return exitTransport, fmt.Errorf("read the answer: %w", err)
	}
	defer resp.Body.Close()
	if _, err := fmt.Fprintf(out, "%d\n", resp.StatusCode); err != nil {
		return exitTransport, err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		return exitCutBody, fmt.Errorf("answer %d, body cut off: %w", resp.StatusCode, err)
	}
	return exitAnswer, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
