package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/dockgate/dockgate/test/testbed"
)

// h2cDo sends one request with HTTP/2 prior knowledge (h2c) over a Unix
// socket, as an HTTP/2 or gRPC client of dockerd 29's socket does.
func h2cDo(t *testing.T, sock, method, path, contentType, body string) (*http.Response, []byte, error) {
	t.Helper()
	c := &http.Client{Timeout: cmdTimeout, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(method, "http://docker"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// TestHTTP2SideDoorIsClosed: Engine 29 serves every endpoint over h2c on
// its socket, gRPC included (Debian's 20.10 does not), so an HTTP/2 client
// could reach dockerd past a proxy that only parses HTTP/1.1. dockgate
// answers such a client in HTTP/2 with a refusal that names the caller and
// the request; a gRPC client gets PERMISSION_DENIED with the message. No
// create reaches dockerd, and each refusal is on record.
func TestHTTP2SideDoorIsClosed(t *testing.T) {
	env := testbed.Shared(t)
	direct := strings.TrimPrefix(env.DirectHost(), "unix://")
	resp, _, err := h2cDo(t, direct, "GET", "/_ping", "", "")
	switch {
	case env.Engine == testbed.EngineCurrent && (err != nil || resp.StatusCode != 200):
		t.Errorf("dockerd %s directly over h2c: %v %v; want 200 (the door this test closes)", env.Dockerd.Version, resp, err)
	case env.Engine == testbed.EngineDebian && err == nil:
		t.Logf("dockerd %s answers h2c: %d", env.Dockerd.Version, resp.StatusCode)
	}

	c := azDirect(t, env)
	// root keeps its allow-everything row: HTTP/2 is refused whatever
	// the policy.
	g := azStartGate(t, env, azPolicy(t, false))
	before := azContainers(t, c)
	const create = "/v1.44/containers/create"
	resp, body, err := h2cDo(t, g.Socket, "POST", create, "application/json", `{"Image":"`+env.Image+`","HostConfig":{"Privileged":true},"Labels":{"e2e.authz":"h2c"}}`)
	if err != nil {
		t.Fatalf("h2c create through dockgate: %v", err)
	}
	want := "dockgate: " + azWireCaller + " may not POST " + create + " over HTTP/2"
	var e struct{ Message string }
	if resp.StatusCode != 403 || json.Unmarshal(body, &e) != nil || !strings.HasPrefix(e.Message, want) {
		t.Errorf("h2c create through dockgate: %d %q; want 403 %q", resp.StatusCode, body, want)
	}
	if created := azNewContainers(t, c, before); len(created) != 0 {
		t.Errorf("BYPASS: dockerd created %v from an h2c request", created)
		azRemoveNew(t, c, before)
	}

	const solve = "/moby.buildkit.v1.Control/Solve"
	resp, _, err = h2cDo(t, g.Socket, "POST", solve, "application/grpc", "")
	if err != nil {
		t.Fatalf("gRPC call through dockgate: %v", err)
	}
	if resp.Header.Get("Grpc-Status") != "7" || !strings.HasPrefix(resp.Header.Get("Grpc-Message"), "dockgate: "+azWireCaller+" may not POST "+solve+" over HTTP/2") {
		t.Errorf("gRPC call through dockgate: %d grpc-status %q grpc-message %q; want 7 (PERMISSION_DENIED) with the refusal", resp.StatusCode, resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message"))
	}
	for _, path := range []string{create, solve} {
		g.azRecord(t, "the h2c refusal of "+path, func(rec map[string]any) bool {
			return rec["path"] == path && rec["status"] == float64(403) && strings.Contains(rec["reason"].(string), "over HTTP/2")
		})
	}
}
