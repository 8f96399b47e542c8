package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// testLimits are small, so that the limit cases stay small. The bad-input
// table below is written against them, and the socket tests serve with them.
var testLimits = Limits{MaxRequestLine: 256, MaxHeaderBytes: 1024, MaxBodyBytes: 64 << 10}

// parseHead reads one head from raw through a small bufio.Reader, so that
// long lines cross buffer boundaries as they do on a socket.
func parseHead(raw string, lim Limits) (*requestHead, *bufio.Reader, error) {
	br := bufio.NewReaderSize(strings.NewReader(raw), 64)
	h, err := readRequestHead(br, lim)
	return h, br, err
}

// statusOf is the status a parse error is answered with; 0 when the error
// is not a refusal (the input ended, say).
func statusOf(err error) int {
	var we *wireError
	if errors.As(err, &we) {
		return we.Status
	}
	return 0
}

// badHead is one request head dockgate must refuse without forwarding.
type badHead struct {
	name   string
	raw    string
	status int
	msg    string // part of the refusal message
	// cut: the input ends before the head does; on a socket the client
	// half-closes after it.
	cut bool
}

const okHost = "Host: docker\r\n"

// badHeads is the bad-input table, shared with the socket test
// (TestBadInputIsRefusedAndNeverForwarded).
var badHeads = []badHead{
	// Garbage.
	{name: "garbage bytes", raw: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", status: 400, msg: "malformed request line"},
	{name: "garbage words", raw: "hello dockerd, let me in\r\n\r\n", status: 400, msg: "malformed request line"},
	{name: "garbage with no line end before the client stops", raw: "\x00\x01\x02\x03garbage", status: 400, cut: true},
	{name: "request head cut short before its blank line", raw: "GET /_ping HTTP/1.1\r\n" + okHost, status: 400, cut: true},
	{name: "empty request line", raw: "\r\n" + okHost + "\r\n", status: 400, msg: "malformed request line"},

	// Limits.
	{name: "request line over the limit is 414", raw: "GET /" + strings.Repeat("a", 300) + " HTTP/1.1\r\n" + okHost + "\r\n", status: 414, msg: "request line longer than 256 bytes"},
	// Longer than the proxy's 32 KiB read buffer: a line under that size
	// with no line end is refused only when the head timeout strikes.
	{name: "request line over the limit without a line end is 414", raw: "GET /" + strings.Repeat("a", 40<<10), status: 414},
	{name: "headers over the limit are 431", raw: "GET /_ping HTTP/1.1\r\n" + okHost + strings.Repeat("X-Filler: "+strings.Repeat("f", 90)+"\r\n", 11) + "\r\n", status: 431, msg: "request head larger than 1024 bytes"},
	{name: "one header over the limit is 431", raw: "GET /_ping HTTP/1.1\r\n" + okHost + "X-Big: " + strings.Repeat("b", 2000) + "\r\n\r\n", status: 431},
	{name: "headers that never end are 431", raw: "GET /_ping HTTP/1.1\r\n" + okHost + strings.Repeat("X: y\r\n", 400), status: 431},

	// Content-Length.
	{name: "Content-Length with a plus sign", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: +5\r\n\r\nhello", status: 400, msg: "invalid Content-Length"},
	{name: "Content-Length with a minus sign", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: -1\r\n\r\n", status: 400, msg: "invalid Content-Length"},
	{name: "Content-Length with a space inside", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 1 0\r\n\r\n", status: 400, msg: "invalid Content-Length"},
	{name: "Content-Length in hex", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 0x10\r\n\r\n", status: 400, msg: "invalid Content-Length"},
	{name: "Content-Length in exponent form", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 1e3\r\n\r\n", status: 400, msg: "invalid Content-Length"},
	{name: "Content-Length as a list of equal values", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 5, 5\r\n\r\nhello", status: 400, msg: "invalid Content-Length"},
	{name: "Content-Length as a list without space", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 5,5\r\n\r\nhello", status: 400, msg: "invalid Content-Length"},
	{name: "Content-Length huge", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 99999999999999999999\r\n\r\n", status: 400, msg: "invalid Content-Length"},
	{name: "Content-Length of 19 digits", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 1000000000000000000\r\n\r\n", status: 400, msg: "invalid Content-Length"},
	{name: "Content-Length empty", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length:\r\n\r\n", status: 400, msg: "invalid Content-Length"},
	{name: "Content-Length twice with the same value", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", status: 400, msg: "more than one Content-Length"},
	{name: "Content-Length twice with different values", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 0\r\ncontent-length: 5\r\n\r\nhello", status: 400, msg: "more than one Content-Length"},

	// Transfer-Encoding.
	{name: "Transfer-Encoding together with Content-Length", raw: "POST /build HTTP/1.1\r\n" + okHost + "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 400, msg: "both Transfer-Encoding and Content-Length"},
	{name: "Content-Length together with Transfer-Encoding (CL first)", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 400, msg: "both Transfer-Encoding and Content-Length"},
	{name: "unknown transfer coding gzip", raw: "POST /build HTTP/1.1\r\n" + okHost + "Transfer-Encoding: gzip\r\n\r\n", status: 400, msg: "unsupported transfer coding"},
	{name: "transfer codings chunked, gzip", raw: "POST /build HTTP/1.1\r\n" + okHost + "Transfer-Encoding: chunked, gzip\r\n\r\n", status: 400, msg: "unsupported transfer coding"},
	{name: "transfer codings gzip, chunked", raw: "POST /build HTTP/1.1\r\n" + okHost + "Transfer-Encoding: gzip, chunked\r\n\r\n", status: 400, msg: "unsupported transfer coding"},
	{name: "transfer coding identity", raw: "POST /build HTTP/1.1\r\n" + okHost + "Transfer-Encoding: identity\r\n\r\n", status: 400, msg: "unsupported transfer coding"},
	{name: "transfer coding with a parameter", raw: "POST /build HTTP/1.1\r\n" + okHost + "Transfer-Encoding: chunked;q=1\r\n\r\n", status: 400, msg: "unsupported transfer coding"},
	{name: "two Transfer-Encoding headers", raw: "POST /build HTTP/1.1\r\n" + okHost + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400, msg: "unsupported transfer coding"},
	{name: "Transfer-Encoding on HTTP/1.0", raw: "POST /build HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400, msg: "not allowed in HTTP/1.0"},

	// Line ends and header syntax.
	{name: "bare LF ends the request line", raw: "GET /_ping HTTP/1.1\n" + okHost + "\r\n", status: 400, msg: "bare LF"},
	{name: "bare LF ends a header line", raw: "GET /_ping HTTP/1.1\r\nHost: docker\n\r\n", status: 400, msg: "bare LF"},
	{name: "bare LF as the blank line", raw: "GET /_ping HTTP/1.1\r\n" + okHost + "\n", status: 400, msg: "bare LF"},
	{name: "bare LF smuggles a second header line", raw: "GET /_ping HTTP/1.1\r\nX-A: a\nTransfer-Encoding: chunked\r\n" + okHost + "\r\n", status: 400, msg: "bare LF"},
	{name: "bare CR inside the request line", raw: "GET /_ping\rX HTTP/1.1\r\n" + okHost + "\r\n", status: 400, msg: "not allowed in a URI"},
	{name: "obs-fold continuation line", raw: "GET /_ping HTTP/1.1\r\n" + okHost + "X-A: a\r\n b\r\n\r\n", status: 400, msg: "folding"},
	{name: "obs-fold with a tab", raw: "GET /_ping HTTP/1.1\r\n" + okHost + "X-A: a\r\n\tb\r\n\r\n", status: 400, msg: "folding"},
	{name: "whitespace before the first header", raw: "GET /_ping HTTP/1.1\r\n " + okHost + "\r\n", status: 400, msg: "folding"},
	{name: "header name with space before colon", raw: "POST /build HTTP/1.1\r\n" + okHost + "Content-Length : 5\r\n\r\nhello", status: 400, msg: "malformed header name"},
	{name: "Transfer-Encoding with space before colon", raw: "POST /build HTTP/1.1\r\n" + okHost + "Transfer-Encoding : chunked\r\n\r\n", status: 400, msg: "malformed header name"},
	{name: "header without a colon", raw: "GET /_ping HTTP/1.1\r\n" + okHost + "X-No-Colon\r\n\r\n", status: 400, msg: "malformed header line"},
	{name: "header with an empty name", raw: "GET /_ping HTTP/1.1\r\n" + okHost + ": value\r\n\r\n", status: 400, msg: "malformed header line"},
	{name: "header name with a separator", raw: "GET /_ping HTTP/1.1\r\n" + okHost + "X(a): 1\r\n\r\n", status: 400, msg: "malformed header name"},
	{name: "header name with a high byte", raw: "GET /_ping HTTP/1.1\r\n" + okHost + "X-\xc3\xa9: 1\r\n\r\n", status: 400, msg: "malformed header name"},
	{name: "NUL in a header value", raw: "GET /_ping HTTP/1.1\r\n" + okHost + "X-A: a\x00b\r\n\r\n", status: 400, msg: "control byte"},
	{name: "bare CR in a header value", raw: "GET /_ping HTTP/1.1\r\n" + okHost + "X-A: a\rTransfer-Encoding: chunked\r\n\r\n", status: 400, msg: "control byte"},
	{name: "DEL in a header value", raw: "GET /_ping HTTP/1.1\r\n" + okHost + "X-A: a\x7f\r\n\r\n", status: 400, msg: "control byte"},
	{name: "escape byte in a header value", raw: "GET /_ping HTTP/1.1\r\n" + okHost + "X-A: \x1b[31m\r\n\r\n", status: 400, msg: "control byte"},

	// Request targets.
	{name: "absolute-form target", raw: "GET http://x/_ping HTTP/1.1\r\n" + okHost + "\r\n", status: 400, msg: "not an absolute path"},
	{name: "absolute-form target naming another path", raw: "POST http://docker/v1.41/containers/create HTTP/1.1\r\n" + okHost + "Content-Length: 2\r\n\r\n{}", status: 400, msg: "not an absolute path"},
	{name: "authority-form target", raw: "CONNECT dockerd:2375 HTTP/1.1\r\nHost: dockerd:2375\r\n\r\n", status: 400, msg: "not an absolute path"},
	{name: "asterisk target", raw: "OPTIONS * HTTP/1.1\r\n" + okHost + "\r\n", status: 400, msg: "not an absolute path"},
	{name: "HTTP/2 prior knowledge", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 400, msg: "HTTP/2 is not supported"},
	{name: "target with a fragment", raw: "GET /_ping#frag HTTP/1.1\r\n" + okHost + "\r\n", status: 400, msg: "not allowed in a URI"},
	{name: "target with a raw high byte", raw: "GET /containers/caf\xc3\xa9/json HTTP/1.1\r\n" + okHost + "\r\n", status: 400, msg: "not allowed in a URI"},
	{name: "target with a tab", raw: "GET /_ping\t HTTP/1.1\r\n" + okHost + "\r\n", status: 400},
	{name: "target with a bad escape", raw: "GET /containers/%zz/json HTTP/1.1\r\n" + okHost + "\r\n", status: 400, msg: "malformed request target"},
	{name: "empty target", raw: "GET  HTTP/1.1\r\n" + okHost + "\r\n", status: 400},

	// Versions and request-line shape.
	{name: "HTTP/0.9 request line", raw: "GET /_ping\r\n\r\n", status: 400, msg: "malformed request line"},
	{name: "HTTP/2.0 version", raw: "GET /_ping HTTP/2.0\r\n" + okHost + "\r\n", status: 400, msg: "unsupported protocol"},
	{name: "HTTP/1.2 version", raw: "GET /_ping HTTP/1.2\r\n" + okHost + "\r\n", status: 400, msg: "unsupported protocol"},
	{name: "lower-case protocol name", raw: "GET /_ping http/1.1\r\n" + okHost + "\r\n", status: 400, msg: "unsupported protocol"},
	{name: "two spaces after the method", raw: "GET  /_ping HTTP/1.1\r\n" + okHost + "\r\n", status: 400},
	{name: "trailing space after the version", raw: "GET /_ping HTTP/1.1 \r\n" + okHost + "\r\n", status: 400, msg: "malformed request line"},
	{name: "method with a separator", raw: "G(T /_ping HTTP/1.1\r\n" + okHost + "\r\n", status: 400, msg: "malformed method"},

	// Host.
	{name: "missing Host on HTTP/1.1", raw: "GET /_ping HTTP/1.1\r\n\r\n", status: 400, msg: "exactly one Host"},
	{name: "duplicate Host on HTTP/1.1", raw: "GET /_ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400, msg: "exactly one Host"},
	{name: "duplicate Host on HTTP/1.0", raw: "GET /_ping HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", status: 400, msg: "exactly one Host"},

	// Expect.
	{name: "Expect other than 100-continue is 417", raw: "POST /build HTTP/1.1\r\n" + okHost + "Expect: 200-ok\r\nContent-Length: 5\r\n\r\nhello", status: 417, msg: "unsupported Expect"},
	{name: "Expect listing 100-continue with more is 417", raw: "POST /build HTTP/1.1\r\n" + okHost + "Expect: 100-continue, x\r\nContent-Length: 5\r\n\r\nhello", status: 417, msg: "unsupported Expect"},
	{name: "two Expect headers are 417", raw: "POST /build HTTP/1.1\r\n" + okHost + "Expect: 100-continue\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", status: 417, msg: "unsupported Expect"},
}

func TestReadRequestHeadRefusesBadInput(t *testing.T) {
	for _, tc := range badHeads {
		t.Run(tc.name, func(t *testing.T) {
			h, _, err := parseHead(tc.raw, testLimits)
			if err == nil {
				t.Fatalf("accepted %+v; want a refusal with %d", h, tc.status)
			}
			if tc.cut {
				// The input ends inside the head: a plain read error here,
				// answered 400 by the connection loop.
				if statusOf(err) != 0 && statusOf(err) != tc.status {
					t.Fatalf("error %v (status %d), want end of input or %d", err, statusOf(err), tc.status)
				}
				if statusOf(err) == 0 && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %v, want end of input", err)
				}
				return
			}
			if got := statusOf(err); got != tc.status {
				t.Fatalf("error %q with status %d, want %d", err, got, tc.status)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not say %q", err, tc.msg)
			}
		})
	}
}

func TestReadRequestHeadAccepts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		raw   string
		lim   Limits
		check func(t *testing.T, h *requestHead)
	}{
		{
			name: "plain GET has no body and keeps the connection",
			raw:  "GET /v1.41/containers/json?all=1 HTTP/1.1\r\n" + okHost + "User-Agent: Docker-Client/28.0\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "method", h.Method, "GET")
				want(t, "target", h.Target, "/v1.41/containers/json?all=1")
				want(t, "path", h.URL.Path, "/v1.41/containers/json")
				want(t, "query", h.URL.RawQuery, "all=1")
				want(t, "minor", h.Minor, 1)
				want(t, "content length", h.ContentLength, int64(0))
				want(t, "has body", h.hasBody(), false)
				want(t, "close", h.Close, false)
				want(t, "upgrade", h.Upgrade, false)
			},
		},
		{
			name: "Content-Length body",
			raw:  "POST /containers/create HTTP/1.1\r\n" + okHost + "Content-Length: 17\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "content length", h.ContentLength, int64(17))
				want(t, "has content length", h.HasContentLength, true)
				want(t, "chunked", h.chunked(), false)
			},
		},
		{
			name: "Content-Length 0 is no body but is still a Content-Length",
			raw:  "POST /containers/create HTTP/1.1\r\n" + okHost + "Content-Length: 0\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "content length", h.ContentLength, int64(0))
				want(t, "has content length", h.HasContentLength, true)
				want(t, "has body", h.hasBody(), false)
			},
		},
		{
			name: "Content-Length with leading zeros is decimal",
			raw:  "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 010\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "content length", h.ContentLength, int64(10))
			},
		},
		{
			name: "Content-Length of 18 digits",
			raw:  "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 999999999999999999\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "content length", h.ContentLength, int64(999999999999999999))
			},
		},
		{
			name: "Content-Length with surrounding blanks",
			raw:  "POST /build HTTP/1.1\r\n" + okHost + "Content-Length: \t5 \r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "content length", h.ContentLength, int64(5))
			},
		},
		{
			name: "chunked body",
			raw:  "POST /build HTTP/1.1\r\n" + okHost + "Transfer-Encoding: chunked\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "content length", h.ContentLength, int64(-1))
				want(t, "chunked", h.chunked(), true)
				want(t, "has body", h.hasBody(), true)
				want(t, "has content length", h.HasContentLength, false)
			},
		},
		{
			name: "chunked in another case",
			raw:  "POST /build HTTP/1.1\r\n" + okHost + "transfer-encoding: Chunked\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "chunked", h.chunked(), true)
			},
		},
		{
			name: "HTTP/1.0 without Host closes by default",
			raw:  "GET /_ping HTTP/1.0\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "minor", h.Minor, 0)
				want(t, "close", h.Close, true)
			},
		},
		{
			name: "HTTP/1.0 keep-alive stays open",
			raw:  "GET /_ping HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "close", h.Close, false)
			},
		},
		{
			name: "Connection close",
			raw:  "GET /_ping HTTP/1.1\r\n" + okHost + "Connection: close\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "close", h.Close, true)
			},
		},
		{
			name: "Connection close among other tokens, any case",
			raw:  "GET /_ping HTTP/1.1\r\n" + okHost + "Connection: keep-alive\r\nConnection: X-Foo, CLOSE\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "close", h.Close, true)
			},
		},
		{
			name: "Connection keep-alive on HTTP/1.1",
			raw:  "GET /_ping HTTP/1.1\r\n" + okHost + "Connection: keep-alive\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "close", h.Close, false)
			},
		},
		{
			name: "Connection upgrade with an Upgrade header asks to switch",
			raw:  "POST /containers/x/attach?stream=1 HTTP/1.1\r\n" + okHost + "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "upgrade", h.Upgrade, true)
			},
		},
		{
			name: "Connection upgrade in a token list",
			raw:  "POST /session HTTP/1.1\r\n" + okHost + "Connection: keep-alive, UPGRADE\r\nUpgrade: h2c\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "upgrade", h.Upgrade, true)
			},
		},
		{
			name: "Connection upgrade without an Upgrade header does not switch",
			raw:  "POST /containers/x/attach HTTP/1.1\r\n" + okHost + "Connection: Upgrade\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "upgrade", h.Upgrade, false)
			},
		},
		{
			name: "Upgrade header without Connection upgrade does not switch",
			raw:  "POST /containers/x/attach HTTP/1.1\r\n" + okHost + "Upgrade: tcp\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "upgrade", h.Upgrade, false)
			},
		},
		{
			name: "Expect 100-continue",
			raw:  "PUT /containers/x/archive?path=/ HTTP/1.1\r\n" + okHost + "Expect: 100-Continue\r\nContent-Length: 5\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "expect continue", h.ExpectContinue, true)
			},
		},
		{
			name: "header values keep their spelling and order",
			raw:  "GET /_ping HTTP/1.1\r\nhost: docker\r\nx-custom:   a b\t\r\nX-Custom: c\r\nX-Obs-Text: caf\xc3\xa9\r\nX-Tab: a\tb\r\n\r\n",
			check: func(t *testing.T, h *requestHead) {
				wantFields := []headerField{{"host", "docker", "Host"}, {"x-custom", "a b", "X-Custom"}, {"X-Custom", "c", "X-Custom"}, {"X-Obs-Text", "caf\xc3\xa9", "X-Obs-Text"}, {"X-Tab", "a\tb", "X-Tab"}}
				if len(h.Fields) != len(wantFields) {
					t.Fatalf("fields %q, want %q", h.Fields, wantFields)
				}
				for i := range wantFields {
					want(t, "field", h.Fields[i], wantFields[i])
				}
				want(t, "X-Custom values", strings.Join(h.Header["X-Custom"], "|"), "a b|c")
			},
		},
		{
			name: "lower-case method is a token like any other",
			raw:  "get /_ping HTTP/1.1\r\n" + okHost + "\r\n",
			check: func(t *testing.T, h *requestHead) {
				want(t, "method", h.Method, "get")
			},
		},
		{
			name: "request line exactly at the limit",
			raw:  "GET /" + strings.Repeat("a", 256-len("GET / HTTP/1.1\r\n")) + " HTTP/1.1\r\n" + okHost + "\r\n",
			lim:  testLimits,
			check: func(t *testing.T, h *requestHead) {
				want(t, "target length", len(h.Target), 256-len("GET  HTTP/1.1\r\n"))
			},
		},
		{
			name: "head exactly at the limit",
			raw:  "GET /_ping HTTP/1.1\r\n" + okHost + "X-Fill: " + strings.Repeat("f", 1024-len("GET /_ping HTTP/1.1\r\n"+okHost+"X-Fill: \r\n\r\n")) + "\r\n\r\n",
			lim:  testLimits,
			check: func(t *testing.T, h *requestHead) {
				want(t, "size", h.Size, 1024)
			},
		},
		{
			name: "default limits take a long filter query",
			raw:  "GET /containers/json?filters=" + strings.Repeat("%7B", 20000) + " HTTP/1.1\r\n" + okHost + "\r\n",
			lim:  DefaultLimits(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim := tc.lim
			if lim == (Limits{}) {
				lim = testLimits
			}
			h, br, err := parseHead(tc.raw, lim)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			// The head ends exactly where the body (or next request) begins.
			rest, _ := io.ReadAll(br)
			if h.Size+len(rest) != len(tc.raw) {
				t.Errorf("head size %d + %d bytes left = %d, want %d", h.Size, len(rest), h.Size+len(rest), len(tc.raw))
			}
			if tc.check != nil {
				tc.check(t, h)
			}
		})
	}
}

func TestReadRequestHeadRequestLineLimitIsTheHeadLimitWhenSmaller(t *testing.T) {
	lim := Limits{MaxRequestLine: 4096, MaxHeaderBytes: 100}
	_, _, err := parseHead("GET /"+strings.Repeat("a", 200)+" HTTP/1.1\r\n"+okHost+"\r\n", lim)
	if statusOf(err) != http.StatusRequestURITooLong {
		t.Fatalf("error %v, want 414", err)
	}
}

func TestReadRequestHeadReadsOnePipelinedRequestAtATime(t *testing.T) {
	raw := "GET /_ping HTTP/1.1\r\n" + okHost + "\r\n" +
		"POST /build HTTP/1.1\r\n" + okHost + "Content-Length: 5\r\n\r\nhello" +
		"GET /info HTTP/1.1\r\n" + okHost + "\r\n"
	br := bufio.NewReaderSize(strings.NewReader(raw), 16)
	var got []string
	for {
		h, err := readRequestHead(br, testLimits)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Method+" "+h.Target)
		if h.ContentLength > 0 {
			body := make([]byte, h.ContentLength)
			if _, err := io.ReadFull(br, body); err != nil || string(body) != "hello" {
				t.Fatalf("body %q, %v", body, err)
			}
		}
	}
	want(t, "requests", strings.Join(got, ","), "GET /_ping,POST /build,GET /info")
}

func TestParseFraming(t *testing.T) {
	for _, tc := range []struct {
		name    string
		minor   int
		header  http.Header
		status  int
		length  int64
		close   bool
		upgrade bool
		expect  bool
	}{
		{name: "no framing headers: no body", minor: 1, header: http.Header{"Host": {"d"}}},
		{name: "Content-Length", minor: 1, header: http.Header{"Host": {"d"}, "Content-Length": {"42"}}, length: 42},
		{name: "chunked", minor: 1, header: http.Header{"Host": {"d"}, "Transfer-Encoding": {"chunked"}}, length: -1},
		{name: "TE and CL together", minor: 1, header: http.Header{"Host": {"d"}, "Transfer-Encoding": {"chunked"}, "Content-Length": {"3"}}, status: 400},
		{name: "two TE values", minor: 1, header: http.Header{"Host": {"d"}, "Transfer-Encoding": {"chunked", "chunked"}}, status: 400},
		{name: "TE gzip", minor: 1, header: http.Header{"Host": {"d"}, "Transfer-Encoding": {"gzip"}}, status: 400},
		{name: "TE chunked, gzip", minor: 1, header: http.Header{"Host": {"d"}, "Transfer-Encoding": {"chunked, gzip"}}, status: 400},
		{name: "TE identity", minor: 1, header: http.Header{"Host": {"d"}, "Transfer-Encoding": {"identity"}}, status: 400},
		{name: "TE on HTTP/1.0", minor: 0, header: http.Header{"Transfer-Encoding": {"chunked"}}, status: 400},
		{name: "two CL values", minor: 1, header: http.Header{"Host": {"d"}, "Content-Length": {"1", "1"}}, status: 400},
		{name: "CL with sign", minor: 1, header: http.Header{"Host": {"d"}, "Content-Length": {"+1"}}, status: 400},
		{name: "CL empty", minor: 1, header: http.Header{"Host": {"d"}, "Content-Length": {""}}, status: 400},
		{name: "missing Host on 1.1", minor: 1, header: http.Header{}, status: 400},
		{name: "missing Host on 1.0 is fine", minor: 0, header: http.Header{}, close: true},
		{name: "two Hosts", minor: 1, header: http.Header{"Host": {"a", "b"}}, status: 400},
		{name: "close", minor: 1, header: http.Header{"Host": {"d"}, "Connection": {"close"}}, close: true},
		{name: "1.0 keep-alive", minor: 0, header: http.Header{"Connection": {"keep-alive"}}},
		{name: "upgrade", minor: 1, header: http.Header{"Host": {"d"}, "Connection": {"Upgrade"}, "Upgrade": {"tcp"}}, upgrade: true},
		{name: "upgrade and close", minor: 1, header: http.Header{"Host": {"d"}, "Connection": {"upgrade, close"}, "Upgrade": {"tcp"}}, upgrade: true, close: true},
		{name: "Expect 100-continue", minor: 1, header: http.Header{"Host": {"d"}, "Expect": {"100-continue"}, "Content-Length": {"1"}}, length: 1, expect: true},
		{name: "Expect other is 417", minor: 1, header: http.Header{"Host": {"d"}, "Expect": {"something"}}, status: 417},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &requestHead{Minor: tc.minor, Header: tc.header}
			err := h.parseFraming()
			if tc.status != 0 {
				if statusOf(err) != tc.status {
					t.Fatalf("error %v, want status %d", err, tc.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want(t, "content length", h.ContentLength, tc.length)
			want(t, "close", h.Close, tc.close)
			want(t, "upgrade", h.Upgrade, tc.upgrade)
			want(t, "expect", h.ExpectContinue, tc.expect)
		})
	}
}

func TestWriteUpstreamHead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		raw     string
		bodyLen int64 // -2: the head's own framing
		want    string
	}{
		{
			name:    "hop-by-hop headers are dropped, end-to-end ones kept as spelled",
			raw:     "PUT /v1.41/containers/x/archive?path=%2Ftmp HTTP/1.1\r\nHost: docker\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nProxy-Authenticate: Basic\r\nTE: trailers\r\nTrailer: X-Sum\r\nX-Hop: secret\r\nUpgrade: tcp\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nx-registry-auth: abc\r\nContent-Type: application/x-tar\r\nContent-Length: 5\r\n\r\n",
			bodyLen: -2,
			want:    "PUT /v1.41/containers/x/archive?path=%2Ftmp HTTP/1.1\r\nHost: docker\r\nx-registry-auth: abc\r\nContent-Type: application/x-tar\r\nContent-Length: 5\r\n\r\n",
		},
		{
			name:    "every header named in Connection is dropped",
			raw:     "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: X-A,x-b , X-C\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\n\r\n",
			bodyLen: -2,
			want:    "GET /_ping HTTP/1.1\r\nHost: docker\r\nX-D: 4\r\n\r\n",
		},
		{
			name:    "Upgrade is kept for an upgrade request",
			raw:     "POST /v1.41/containers/x/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
			bodyLen: -2,
			want:    "POST /v1.41/containers/x/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n",
		},
		{
			name:    "h2c upgrade keeps Upgrade",
			raw:     "POST /session HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nX-Docker-Expose-Session-Uuid: u1\r\n\r\n",
			bodyLen: -2,
			want:    "POST /session HTTP/1.1\r\nHost: docker\r\nUpgrade: h2c\r\nX-Docker-Expose-Session-Uuid: u1\r\nConnection: Upgrade\r\n\r\n",
		},
		{
			name:    "Upgrade without Connection upgrade is dropped",
			raw:     "POST /containers/x/attach HTTP/1.1\r\nHost: docker\r\nUpgrade: tcp\r\n\r\n",
			bodyLen: -2,
			want:    "POST /containers/x/attach HTTP/1.1\r\nHost: docker\r\n\r\n",
		},
		{
			name:    "chunked in is chunked out",
			raw:     "POST /build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-tar\r\n\r\n",
			bodyLen: -2,
			want:    "POST /build HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n",
		},
		{
			name:    "chunked in, read whole to be judged: Content-Length out",
			raw:     "POST /containers/create HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n",
			bodyLen: 7,
			want:    "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n",
		},
		{
			name:    "empty chunked body read whole: Content-Length 0 out",
			raw:     "POST /containers/create HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n",
			bodyLen: 0,
			want:    "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n",
		},
		{
			name:    "Content-Length is rewritten from the parsed length",
			raw:     "POST /containers/create HTTP/1.1\r\nHost: docker\r\ncontent-length: 0017\r\n\r\n",
			bodyLen: -2,
			want:    "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 17\r\n\r\n",
		},
		{
			name:    "Content-Length 0 stays",
			raw:     "POST /containers/x/start HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n",
			bodyLen: -2,
			want:    "POST /containers/x/start HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n",
		},
		{
			name:    "no body, no framing header",
			raw:     "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n",
			bodyLen: -2,
			want:    "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n",
		},
		{
			name:    "Expect is answered by dockgate, not forwarded",
			raw:     "PUT /containers/x/archive HTTP/1.1\r\nHost: docker\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
			bodyLen: -2,
			want:    "PUT /containers/x/archive HTTP/1.1\r\nHost: docker\r\nContent-Length: 3\r\n\r\n",
		},
		{
			name:    "HTTP/1.0 request goes out as HTTP/1.1 with a Host",
			raw:     "GET /_ping HTTP/1.0\r\nUser-Agent: old\r\n\r\n",
			bodyLen: -2,
			want:    "GET /_ping HTTP/1.1\r\nUser-Agent: old\r\nHost: docker\r\n\r\n",
		},
		{
			name:    "a Host named in Connection is replaced",
			raw:     "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: Host\r\n\r\n",
			bodyLen: -2,
			want:    "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, err := parseHead(tc.raw, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			bodyLen := tc.bodyLen
			if bodyLen == -2 {
				bodyLen = h.ContentLength
			}
			var b bytes.Buffer
			w := bufio.NewWriter(&b)
			writeUpstreamHead(w, h, bodyLen)
			w.Flush()
			if b.String() != tc.want {
				t.Errorf("wrote\n%q\nwant\n%q", b.String(), tc.want)
			}
			// What dockerd reads back must parse under the same rules.
			if _, _, err := parseHead(b.String(), DefaultLimits()); err != nil {
				t.Errorf("forwarded head does not parse: %v", err)
			}
		})
	}
}

// A header the client names in Connection is not forwarded, so it must not
// be judged either: the decision has to see what dockerd will see.
func TestHeaderNamedInConnectionIsNotJudged(t *testing.T) {
	h, _, err := parseHead("POST /images/create?fromSrc=- HTTP/1.1\r\nHost: docker\r\nConnection: Content-Type, keep-alive\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n", DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if ct, ok := h.Header["Content-Type"]; ok {
		t.Errorf("decision sees Content-Type %q, which is not forwarded", ct)
	}
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	writeUpstreamHead(w, h, h.ContentLength)
	w.Flush()
	if strings.Contains(strings.ToLower(b.String()), "content-type") {
		t.Errorf("Content-Type forwarded: %q", b.String())
	}
}

// want reports got != expected with a name.
func want[T comparable](t *testing.T, what string, got, expected T) {
	t.Helper()
	if got != expected {
		t.Errorf("%s = %#v, want %#v", what, got, expected)
	}
}

// headDiff says how two parsed heads differ in what dockgate judges and
// forwards; "" when they do not.
func headDiff(a, b *requestHead) string {
	switch {
	case a.Method != b.Method || a.Target != b.Target || a.Minor != b.Minor:
		return fmt.Sprintf("request line %s %s 1.%d, then %s %s 1.%d", a.Method, a.Target, a.Minor, b.Method, b.Target, b.Minor)
	case a.URL.String() != b.URL.String() || a.URL.Path != b.URL.Path || a.URL.RawQuery != b.URL.RawQuery:
		return fmt.Sprintf("URL %v, then %v", a.URL, b.URL)
	case !slices.Equal(a.Fields, b.Fields):
		return fmt.Sprintf("fields %q, then %q", a.Fields, b.Fields)
	case !maps.EqualFunc(a.Header, b.Header, slices.Equal):
		return fmt.Sprintf("header %q, then %q", a.Header, b.Header)
	case a.ContentLength != b.ContentLength || a.HasContentLength != b.HasContentLength || a.Close != b.Close || a.Upgrade != b.Upgrade || a.ExpectContinue != b.ExpectContinue || a.Size != b.Size:
		return fmt.Sprintf("framing %+v, then %+v", [6]any{a.ContentLength, a.HasContentLength, a.Close, a.Upgrade, a.ExpectContinue, a.Size}, [6]any{b.ContentLength, b.HasContentLength, b.Close, b.Upgrade, b.ExpectContinue, b.Size})
	}
	return ""
}

// A connection's heads reuse the strings and parsed target of the head
// before them where their lines are the same, and only there.
func TestRequestHeadReusesTheLinesOfTheOneBefore(t *testing.T) {
	const ping = "GET /v1.47/_ping HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Docker-Client/29.0.0 (linux)\r\n\r\n"
	heads := []string{
		ping,
		ping,
		"GET /v1.47/_ping HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Go-http-client/1.1\r\n\r\n",
		"GET /v1.47/containers/json?all=1 HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Go-http-client/1.1\r\nConnection: close\r\n\r\n",
		"HEAD /v1.47/containers/json?all=1 HTTP/1.0\r\nUser-Agent: Go-http-client/1.1\r\n\r\n",
		ping,
	}
	var prev headCache
	// What the head before had: the head itself is the same storage.
	var lastURL *url.URL
	var lastValue *byte
	for i, raw := range heads {
		fresh, err := readRequestHead(bufio.NewReader(strings.NewReader(raw)), testLimits)
		if err != nil {
			t.Fatalf("head %d: %v", i, err)
		}
		got, err := readNextRequestHead(bufio.NewReader(strings.NewReader(raw)), testLimits, &prev)
		if err != nil {
			t.Fatalf("head %d with the one before kept: %v", i, err)
		}
		if diff := headDiff(fresh, got); diff != "" {
			t.Fatalf("head %d: alone and after the one before: %s", i, diff)
		}
		if i > 0 && raw == heads[i-1] && (got.URL != lastURL || unsafe.StringData(got.Fields[1].Value) != lastValue) {
			t.Errorf("head %d, the same as the one before, does not share its target and lines", i)
		}
		lastURL, lastValue = got.URL, nil
		if len(got.Fields) > 1 {
			lastValue = unsafe.StringData(got.Fields[1].Value)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := readNextRequestHead(bufio.NewReader(strings.NewReader(ping)), testLimits, &prev); err != nil {
			t.Fatal(err)
		}
	})
	// All three are the test's readers and buffer: the head, its header
	// map and its strings are the connection's.
	if allocs > 3 {
		t.Errorf("%.0f allocations to read a head the same as the one before, want at most 3", allocs)
	}
}

// A head read into the storage of the one before has nothing of it: not
// its headers, nor what serving it set (a spool, a filter, a line guard).
func TestRequestHeadReusedStorageStartsEmpty(t *testing.T) {
	var prev headCache
	first, err := readNextRequestHead(bufio.NewReader(strings.NewReader(
		"POST /v1.47/build HTTP/1.1\r\nHost: docker\r\nX-Registry-Config: e30=\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")), testLimits, &prev)
	if err != nil {
		t.Fatal(err)
	}
	first.bodyRead, first.spool, first.spoolSize = true, os.Stdin, 3
	first.filter = func(b []byte) ([]byte, error) { return b, nil }
	first.verify = func(context.Context, int, []byte) error { return nil }
	first.lines = &pullTag{}
	const next = "GET /_ping HTTP/1.0\r\nUser-Agent: x\r\n\r\n"
	got, err := readNextRequestHead(bufio.NewReader(strings.NewReader(next)), testLimits, &prev)
	if err != nil {
		t.Fatal(err)
	}
	if got != first {
		t.Fatal("the next head is not read into the same storage")
	}
	fresh, err := readRequestHead(bufio.NewReader(strings.NewReader(next)), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if diff := headDiff(fresh, got); diff != "" {
		t.Fatalf("alone and into the storage of another head: %s", diff)
	}
	if got.bodyRead || got.spool != nil || got.spoolSize != 0 || got.filter != nil || got.verify != nil || got.lines != nil || len(got.values) != 1 {
		t.Errorf("the head kept what serving the one before set: bodyRead %v, spool %v (%d), filter %v, verify %v, lines %v, values %q",
			got.bodyRead, got.spool, got.spoolSize, got.filter != nil, got.verify != nil, got.lines, got.values)
	}
}

// What a connection keeps between requests stays small, whatever the
// size of the head its client sent last: long lines are not kept.
func TestRequestHeadKeepsOnlyShortLines(t *testing.T) {
	lim := DefaultLimits()
	long := strings.Repeat("a", 64<<10)
	raw := "GET /v1.47/containers/json?filters=" + long + " HTTP/1.1\r\nHost: docker\r\nX-Registry-Auth: " + long + "\r\nUser-Agent: Docker-Client/29.0.0 (linux)\r\n\r\n"
	var prev headCache
	for range 2 {
		h, err := readNextRequestHead(bufio.NewReader(strings.NewReader(raw)), lim, &prev)
		if err != nil {
			t.Fatal(err)
		}
		if h.Header.Get("X-Registry-Auth") != long || h.URL.RawQuery != "filters="+long {
			t.Fatal("a long line was not read whole")
		}
	}
	kept := len(prev.line)
	for _, l := range prev.fields {
		kept += len(l)
	}
	if kept > 2*maxKeptLine {
		t.Errorf("%d bytes of the head kept for the next one", kept)
	}
	if prev.url != nil || len(prev.fields) != 3 || prev.fields[2] != "User-Agent: Docker-Client/29.0.0 (linux)" {
		t.Errorf("kept %q, URL %v; want the short lines only", prev.fields, prev.url)
	}
}
