package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestHopByHopHeadersAreStrippedBothWays(t *testing.T) {
	dir := shortDir(t)
	heads := make(chan string, 1)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		head, err := readHeadRaw(br)
		if err != nil {
			return
		}
		heads <- head
		io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
			"Api-Version: 1.41\r\n"+
			"Content-Type: application/json\r\n"+
			"Docker-Experimental: false\r\n"+
			"Connection: X-Resp-Hop\r\n"+
			"X-Resp-Hop: internal\r\n"+
			"Keep-Alive: timeout=5\r\n"+
			"Proxy-Authenticate: Basic\r\n"+
			"Trailer: X-Sum\r\n"+
			"Upgrade: tcp\r\n"+
			"X-End: kept as sent\r\n"+
			"X-Multi: a\r\nX-Multi: b\r\n"+
			"Content-Length: 2\r\n\r\n{}")
	})
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	r := c.roundTrip("GET", "GET /v1.41/info HTTP/1.1\r\n"+
		"Host: docker\r\n"+
		"User-Agent: Docker-Client/28.0.0 (linux)\r\n"+
		"Connection: keep-alive, X-Hop\r\n"+
		"X-Hop: internal\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"Proxy-Authorization: Basic eDp5\r\n"+
		"TE: trailers\r\n"+
		"Trailer: X-Sum\r\n"+
		"Upgrade: tcp\r\n"+
		"X-Registry-Auth: e30=\r\n"+
		"X-End: kept as sent\r\n\r\n")
	head := <-heads
	want(t, "forwarded head", head, "GET /v1.41/info HTTP/1.1\r\n"+
		"Host: docker\r\n"+
		"User-Agent: Docker-Client/28.0.0 (linux)\r\n"+
		"X-Registry-Auth: e30=\r\n"+
		"X-End: kept as sent\r\n\r\n")

	if r.StatusCode != 200 || r.body != "{}" {
		t.Fatalf("answer %d %q", r.StatusCode, r.body)
	}
	for k, v := range map[string]string{"Api-Version": "1.41", "Content-Type": "application/json", "Docker-Experimental": "false", "X-End": "kept as sent"} {
		want(t, k, r.Header.Get(k), v)
	}
	want(t, "X-Multi", strings.Join(r.Header["X-Multi"], ","), "a,b")
	for _, k := range []string{"Connection", "X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade"} {
		if v, ok := r.Header[k]; ok {
			t.Errorf("hop-by-hop %s: %q reached the client", k, v)
		}
	}
}

func TestHeadPingReturnsHeadersWithoutABody(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	// HEAD then GET in one write: a body after the HEAD answer would be
	// read as the GET's answer.
	c.send("HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\nGET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	r := c.read("HEAD")
	if r.StatusCode != 200 || r.body != "" {
		t.Fatalf("HEAD: %d %q", r.StatusCode, r.body)
	}
	want(t, "Api-Version", r.Header.Get("Api-Version"), "1.41")
	want(t, "Ostype", r.Header.Get("Ostype"), "linux")
	want(t, "Content-Length", r.Header.Get("Content-Length"), "2")
	r = c.read("GET")
	if r.StatusCode != 200 || r.body != "OK" {
		t.Fatalf("GET after HEAD: %d %q", r.StatusCode, r.body)
	}
}

func TestHeadRefusalHasNoBody(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream())
	p.dec.setRefuse(refuseAction("system.ping"))
	c := p.dial()
	c.send("HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\nGET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	r := c.read("HEAD")
	if r.StatusCode != 403 || r.body != "" {
		t.Fatalf("HEAD refusal: %d %q", r.StatusCode, r.body)
	}
	wantDockerError(t, c.read("GET"), 403)
}

func TestHTTP10ClientGetsACloseDelimitedAnswer(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "" {
			http.Error(w, "missing Host", 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"part":1}`)
		w.(http.Flusher).Flush() // makes the answer chunked
		io.WriteString(w, `{"part":2}`)
	}))
	p := startProxy(t, dir, up.upstream())
	for _, tc := range []struct{ name, req string }{
		{"without Host", "GET /v1.41/events HTTP/1.0\r\n\r\n"},
		{"with Host", "GET /v1.41/events HTTP/1.0\r\nHost: docker\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := p.dial()
			c.send(tc.req)
			raw, err := io.ReadAll(c.br)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(raw))), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %q", resp.StatusCode, body)
			}
			if strings.Contains(strings.ToLower(string(raw)), "transfer-encoding") {
				t.Errorf("chunked answer to an HTTP/1.0 client: %q", raw)
			}
			want(t, "body", string(body), `{"part":1}{"part":2}`)
		})
	}
}

func TestHTTP10ClientWithContentLengthAnswerIsClosed(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	r := c.roundTrip("GET", "GET /_ping HTTP/1.0\r\n\r\n")
	if r.StatusCode != 200 || r.body != "OK" || !r.Close {
		t.Fatalf("answer %d %q close %v", r.StatusCode, r.body, r.Close)
	}
	c.expectEOF()
}
