package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// mixedLoad is the burst's and the soak's traffic: what a CI host sends a
// Docker socket, mostly cheap reads (ping, list, inspect, version, info)
// and now and then a container created and removed, over keep-alive
// connections to one socket.
type mixedLoad struct {
	tr  *http.Transport
	hc  *http.Client
	box string // the container the inspects name
}

// The mix: one op in mixedCreateEvery is a container created and
// removed, one in mixedSlowEvery an info and one a version, the rest cheap
// reads in turn ("" is the inspect of the box). Creates, infos and versions
// are rare: dockerd takes a third of a second over each on two busy cores
// (for version it runs runc and docker-init), and a burst of them measures
// dockerd, not dockgate.
const (
	mixedCreateEvery = 100
	mixedSlowEvery   = 60
)

var mixedReads = []string{"/_ping", "", "/v1.41/containers/json?all=1"}

func newMixedLoad(socket string, conns int, box string) *mixedLoad {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
	}
	return &mixedLoad{tr: tr, hc: &http.Client{Transport: tr}, box: box}
}

// close drops the connections, so that the gate's fds can be counted
// without the client's.
func (m *mixedLoad) close() { m.tr.CloseIdleConnections() }

// op sends the i-th op of the mix and returns how many requests it made.
func (m *mixedLoad) op(ctx context.Context, i int) (int, error) {
	if i%mixedCreateEvery == mixedCreateEvery-1 {
		return 2, m.createRemove(ctx)
	}
	path := mixedReads[i%len(mixedReads)]
	switch {
	case i%mixedSlowEvery == mixedSlowEvery-1:
		path = "/v1.41/info"
	case i%mixedSlowEvery == mixedSlowEvery/2-1:
		path = "/v1.41/version"
	case path == "":
		path = "/v1.41/containers/" + m.box + "/json"
	}
	_, err := m.call(ctx, http.MethodGet, path, nil, http.StatusOK)
	return 1, err
}

func (m *mixedLoad) createRemove(ctx context.Context) error {
	body := fmt.Sprintf(`{"Image":%q,"Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}`, image)
	out, err := m.call(ctx, http.MethodPost, "/v1.41/containers/create", []byte(body), http.StatusCreated)
	if err != nil {
		return err
	}
	var created struct{ ID string }
	if err := json.Unmarshal(out, &created); err != nil || created.ID == "" {
		return fmt.Errorf("container create answered %q", out)
	}
	_, err = m.call(ctx, http.MethodDelete, "/v1.41/containers/"+created.ID+"?force=1", nil, http.StatusNoContent)
	return err
}

// call sends one request and wants status back; it returns the body.
func (m *mixedLoad) call(ctx context.Context, method, path string, body []byte, status int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != status {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(out)))
	}
	return out, nil
}
