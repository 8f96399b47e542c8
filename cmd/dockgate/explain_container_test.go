package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/dockerd/dockerdtest"
)

// containerDockerd answers what explain --container asks: a container by
// name and by full ID, and its image.
type containerDockerd struct {
	id, name string
	labels   map[string]string
}

func (f containerDockerd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := dockerdtest.VersionPrefix.ReplaceAllString(r.URL.Path, "")
	w.Header().Set("Content-Type", "application/json")
	switch p {
	case "/_ping":
		w.Write([]byte("OK"))
	case "/containers/" + f.name + "/json", "/containers/" + f.id + "/json":
		json.NewEncoder(w).Encode(map[string]any{"Id": f.id, "Name": "/" + f.name, "Image": "sha256:" + strings.Repeat("e", 64),
			"Config": map[string]any{"Image": "traefik:v3.1", "Labels": f.labels}})
	case "/images/sha256:" + strings.Repeat("e", 64) + "/json":
		json.NewEncoder(w).Encode(map[string]any{"Id": "sha256:" + strings.Repeat("e", 64), "Config": map[string]any{}})
	default:
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"message": "No such object: " + p})
	}
}

// TestExplainContainer: explain --container asks dockerd who the
// container is and judges the request as a caller in it would be: by its
// name, image and labels, its host identity only by a row, and a tenant's
// container as its tenant.
func TestExplainContainer(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.csv"), []byte(`p, uid:0, *, **, allow
p, container:traefik, endpoint, container.list, allow
p, image:docker.io/library/traefik, host-identity, user:root, allow
p, uid:1000, tenant, uid, allow
p, uid:1000, endpoint, system.ping, allow
`), 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		args   []string
		code   int
		stdout []string
	}{
		{"a container's rows", nil, []string{"GET", "/v1.41/containers/json"}, 0, []string{
			`(?m)^caller: +container:traefik \(subjects: container:traefik, image:docker\.io/library/traefik, user:root, \*\)$`,
			`(?m)^container: +` + id + `$`,
			`(?m)^host identity: +user:root, granted by p\.csv:3: p, image:docker\.io/library/traefik, host-identity, user:root, allow$`,
			`(?m)^allowed$`}},
		{"never host root's", nil, []string{"POST", "/v1.41/containers/create", "-"}, 1, []string{
			`(?m)^refused \(403\): dockgate: container:traefik may not endpoint container\.create: no rule allows it`}},
		{"a tenant's container is its tenant", map[string]string{"io.dockgate.owner": "uid:1000", "io.dockgate.creator": `{"id":"0123456789abcdef","owner":"uid:1000","creators":[["uid:1000","*"]]}`},
			[]string{"GET", "/v1.41/containers/json"}, 1, []string{
				`(?m)^caller: +container:traefik \(for uid:1000\) \(subjects: uid:1000, \*\)$`,
				`(?m)^acts for: +uid:1000, the tenant that created it`,
				`(?m)^refused \(403\): dockgate: container:traefik \(for uid:1000\) may not endpoint container\.list`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := dockerdtest.Serve(t, containerDockerd{id: id, name: "traefik", labels: tc.labels})
			args := append([]string{"--policy", dir, "--container", "traefik", "--upstream", host}, tc.args...)
			var out, errOut bytes.Buffer
			code := explain(args, strings.NewReader(`{"Image":"busybox"}`), &out, &errOut)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errOut.String())
			}
			for _, re := range tc.stdout {
				if !regexp.MustCompile(re).MatchString(out.String()) {
					t.Errorf("stdout does not match %q:\n%s", re, out.String())
				}
			}
		})
	}

	var out, errOut bytes.Buffer
	host := dockerdtest.Serve(t, containerDockerd{id: id, name: "traefik"})
	if code := explain([]string{"--container", "nosuch", "--upstream", host, "GET", "/_ping"}, nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "dockerd has no such container") {
		t.Errorf("no such container: exit %d, %s", code, errOut.String())
	}
	if code := explain([]string{"--container", "traefik", "--as", "uid:0", "--upstream", host, "GET", "/_ping"}, nil, &out, &errOut); code != 2 {
		t.Errorf("--as with --container: exit %d", code)
	}
}
