package authz

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// parseTarget parses a request target the way Go's HTTP server (and so
// dockerd) does.
func parseTarget(t testing.TB, target string) *url.URL {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("ParseRequestURI(%q): %v", target, err)
	}
	return u
}

func TestRouteNamesRequestsLikeDockerd(t *testing.T) {
	r := NewRouter()
	tests := []struct {
		name    string
		method  string
		target  string
		action  string
		version string
		vars    map[string]string
		stream  bool
		body    bool
	}{
		{name: "container create with version prefix", method: "POST", target: "/v1.41/containers/create?name=web", action: "container.create", version: "1.41", body: true},
		{name: "unprefixed path", method: "POST", target: "/containers/create", action: "container.create", body: true},
		{name: "version with trailing dot", method: "GET", target: "/v1.41./containers/json", action: "container.list", version: "1.41."},
		{name: "leading zero version", method: "GET", target: "/v01.41/containers/json", action: "container.list", version: "01.41"},
		{name: "version of dots only", method: "GET", target: "/v./info", action: "system.info", version: "."},
		{name: "version with doubled dot", method: "GET", target: "/v1..4/version", action: "system.version", version: "1..4"},
		{name: "containers/json is list not inspect", method: "GET", target: "/containers/json", action: "container.list"},
		{name: "containers/json/json inspects the container named json", method: "GET", target: "/containers/json/json", action: "container.inspect", vars: map[string]string{"name": "json"}},
		{name: "name with slashes routes by last segment", method: "GET", target: "/containers/a/b/json", action: "container.inspect", vars: map[string]string{"name": "a/b"}},
		{name: "inspect-looking name still routes by last segment", method: "GET", target: "/containers/x/json/logs", action: "container.logs", vars: map[string]string{"name": "x/json"}, stream: true},
		{name: "percent-decoded path is routed", method: "GET", target: "/containers/%61bc/json", action: "container.inspect", vars: map[string]string{"name": "abc"}},
		{name: "encoded suffix is the suffix", method: "POST", target: "/containers/abc/%65xec", action: "container.exec", vars: map[string]string{"name": "abc"}, body: true},
		{name: "raw brace in a name routes like any byte", method: "GET", target: "/containers/{x}/json", action: "container.inspect", vars: map[string]string{"name": "{x}"}},
		{name: "raw brace next to an escape routes", method: "GET", target: "/containers/{x}/%6Ason", action: "container.inspect", vars: map[string]string{"name": "{x}"}},
		{name: "HEAD ping", method: "HEAD", target: "/_ping", action: "system.ping"},
		{name: "GET ping with version", method: "GET", target: "/v1.24/_ping", action: "system.ping", version: "1.24"},
		{name: "attach hijacks and streams", method: "POST", target: "/v1.41/containers/abc/attach?stream=1&stdin=1", action: "container.attach", version: "1.41", vars: map[string]string{"name": "abc"}, stream: true},
		{name: "websocket attach on GET", method: "GET", target: "/containers/abc/attach/ws", action: "container.attach.ws", vars: map[string]string{"name": "abc"}, stream: true},
		{name: "exec create is container.exec", method: "POST", target: "/containers/abc/exec", action: "container.exec", vars: map[string]string{"name": "abc"}, body: true},
		{name: "exec start", method: "POST", target: "/exec/0123abcd/start", action: "exec.start", vars: map[string]string{"name": "0123abcd"}, stream: true},
		{name: "exec inspect", method: "GET", target: "/exec/0123abcd/json", action: "exec.inspect", vars: map[string]string{"id": "0123abcd"}},
		{name: "archive HEAD", method: "HEAD", target: "/containers/abc/archive?path=/etc", action: "container.archive.head", vars: map[string]string{"name": "abc"}},
		{name: "archive GET", method: "GET", target: "/containers/abc/archive?path=/etc", action: "container.archive.get", vars: map[string]string{"name": "abc"}},
		{name: "archive PUT", method: "PUT", target: "/containers/abc/archive?path=/etc", action: "container.archive.put", vars: map[string]string{"name": "abc"}},
		{name: "old copy endpoint reads files too", method: "POST", target: "/v1.23/containers/abc/copy", action: "container.archive.copy", version: "1.23", vars: map[string]string{"name": "abc"}, body: true},
		{name: "start reads its body for old HostConfig", method: "POST", target: "/v1.23/containers/abc/start", action: "container.start", version: "1.23", vars: map[string]string{"name": "abc"}, body: true},
		{name: "container delete", method: "DELETE", target: "/containers/abc?force=1", action: "container.delete", vars: map[string]string{"name": "abc"}},
		{name: "checkpoint delete wins over container delete", method: "DELETE", target: "/containers/abc/checkpoints/cp1", action: "container.checkpoint.delete", vars: map[string]string{"name": "abc", "checkpoint": "cp1"}},
		{name: "container prune", method: "POST", target: "/containers/prune", action: "container.prune"},
		{name: "commit is an image action", method: "POST", target: "/commit?container=abc", action: "image.commit", body: true},
		{name: "image pull by fromImage", method: "POST", target: "/images/create?fromImage=busybox&tag=latest", action: "image.pull", stream: true},
		{name: "image import without fromImage", method: "POST", target: "/images/create?fromSrc=-&repo=test/busybox", action: "image.import", stream: true},
		{name: "fromImage wins over fromSrc", method: "POST", target: "/images/create?fromSrc=-&fromImage=busybox", action: "image.pull", stream: true},
		{name: "empty first fromImage is an import as dockerd reads it", method: "POST", target: "/images/create?fromImage=&fromImage=busybox", action: "image.import", stream: true},
		{name: "image save of many", method: "GET", target: "/images/get?names=a&names=b", action: "image.save"},
		{name: "image save of one", method: "GET", target: "/images/busybox:1/get", action: "image.save", vars: map[string]string{"name": "busybox:1"}},
		{name: "image inspect of a name with a registry path", method: "GET", target: "/images/registry.example.com:5000/team/app:1/json", action: "image.inspect", vars: map[string]string{"name": "registry.example.com:5000/team/app:1"}},
		{name: "image history", method: "GET", target: "/images/busybox/history", action: "image.history", vars: map[string]string{"name": "busybox"}},
		{name: "image delete", method: "DELETE", target: "/images/busybox:1", action: "image.delete", vars: map[string]string{"name": "busybox:1"}},
		{name: "build", method: "POST", target: "/v1.41/build?t=app:1", action: "build.run", version: "1.41", stream: true},
		{name: "build prune", method: "POST", target: "/build/prune", action: "build.prune"},
		{name: "build cancel", method: "POST", target: "/build/cancel?id=x", action: "build.cancel"},
		{name: "buildkit session", method: "POST", target: "/session", action: "session.start", stream: true},
		{name: "buildkit grpc", method: "POST", target: "/grpc", action: "grpc.start", stream: true},
		{name: "events stream", method: "GET", target: "/events?since=0", action: "system.events", stream: true},
		{name: "disk usage", method: "GET", target: "/system/df", action: "system.df"},
		{name: "CORS preflight on any path", method: "OPTIONS", target: "/containers/json", action: "system.options", vars: map[string]string{"anyroute": "containers/json"}},
		{name: "network list with trailing slash", method: "GET", target: "/networks/", action: "network.list"},
		{name: "network connect", method: "POST", target: "/networks/n1/connect", action: "network.connect", vars: map[string]string{"id": "n1"}, body: true},
		{name: "volume create", method: "POST", target: "/volumes/create", action: "volume.create", body: true},
		{name: "volume inspect", method: "GET", target: "/volumes/data", action: "volume.inspect", vars: map[string]string{"name": "data"}},
		{name: "plugin pull is plugin.install", method: "POST", target: "/plugins/pull?remote=vieux/sshfs", action: "plugin.install", stream: true, body: true},
		{name: "plugin privileges is not inspect", method: "GET", target: "/plugins/privileges?remote=x", action: "plugin.privileges"},
		{name: "swarm unlock", method: "POST", target: "/swarm/unlock", action: "swarm.unlock"},
		{name: "service logs", method: "GET", target: "/services/s1/logs?follow=1", action: "service.logs", vars: map[string]string{"id": "s1"}, stream: true},
		{name: "distribution inspect", method: "GET", target: "/distribution/docker.io/library/busybox:latest/json", action: "distribution.inspect", vars: map[string]string{"name": "docker.io/library/busybox:latest"}},
		{name: "pprof index", method: "GET", target: "/debug/pprof/", action: "debug.pprof"},
		{name: "pprof profile by name", method: "GET", target: "/v1.41/debug/pprof/heap", action: "debug.pprof", version: "1.41", vars: map[string]string{"name": "heap"}},
		{name: "unknown path is unknown", method: "GET", target: "/containers/abc/secrets", action: ActionUnknown},
		{name: "unknown versioned path keeps its version", method: "GET", target: "/v1.41/nothing/here", action: ActionUnknown, version: "1.41"},
		{name: "wrong method is unknown", method: "POST", target: "/containers/abc/logs", action: ActionUnknown},
		{name: "container delete takes the whole rest of the path", method: "DELETE", target: "/containers/abc/logs", action: "container.delete", vars: map[string]string{"name": "abc/logs"}},
		{name: "wrong method with version is unknown", method: "PUT", target: "/v1.41/containers/create", action: ActionUnknown, version: "1.41"},
		{name: "GET on a HEAD-only route is unknown", method: "PATCH", target: "/_ping", action: ActionUnknown},
		{name: "lower-case method is unknown", method: "get", target: "/containers/json", action: ActionUnknown},
		{name: "routes are case-sensitive", method: "GET", target: "/Containers/json", action: ActionUnknown},
		{name: "trailing slash is another path", method: "GET", target: "/containers/json/", action: ActionUnknown},
		{name: "version without path is unknown", method: "GET", target: "/v1.41", action: ActionUnknown},
		{name: "nested version prefix is unknown", method: "GET", target: "/v1.41/v1.41/containers/json", action: ActionUnknown, version: "1.41"},
		{name: "version letters are not a version", method: "GET", target: "/v1.41a/containers/json", action: ActionUnknown},
		{name: "root is unknown", method: "GET", target: "/", action: ActionUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := r.Route(tt.method, parseTarget(t, tt.target))
			if err != nil {
				t.Fatalf("Route(%s %s): unexpected error %v", tt.method, tt.target, err)
			}
			if m.Action != tt.action {
				t.Errorf("action = %q, want %q", m.Action, tt.action)
			}
			if m.APIVersion != tt.version {
				t.Errorf("APIVersion = %q, want %q", m.APIVersion, tt.version)
			}
			if !maps.Equal(m.Vars, tt.vars) {
				t.Errorf("vars = %v, want %v", m.Vars, tt.vars)
			}
			if m.Stream != tt.stream {
				t.Errorf("Stream = %v, want %v", m.Stream, tt.stream)
			}
			if m.NeedsBody != tt.body {
				t.Errorf("NeedsBody = %v, want %v", m.NeedsBody, tt.body)
			}
		})
	}
}

func TestRouteRefusesAmbiguousTargets(t *testing.T) {
	r := NewRouter()
	tests := []struct {
		name   string
		method string
		target string
		// url builds targets that ParseRequestURI cannot express.
		url *url.URL
	}{
		{name: "double slash refused", method: "GET", target: "//containers/json"},
		{name: "double slash inside refused", method: "GET", target: "/v1.41/containers//json"},
		{name: "double slash in a name refused", method: "POST", target: "/containers/a//b/exec"},
		{name: "dot segment refused", method: "GET", target: "/containers/./json"},
		{name: "dot-dot segment refused", method: "POST", target: "/v1.41/images/x/../../containers/create"},
		{name: "trailing dot-dot refused", method: "GET", target: "/containers/abc/.."},
		{name: "encoded dot segment refused", method: "GET", target: "/containers/%2e/json"},
		{name: "encoded dot-dot segment refused", method: "POST", target: "/images/%2E%2E/containers/create"},
		{name: "half-encoded dot-dot refused", method: "POST", target: "/images/.%2e/containers/create"},
		{name: "encoded slash refused", method: "GET", target: "/containers/a%2Fb/json"},
		{name: "encoded slash beside a raw brace refused", method: "GET", target: "/containers/{a%2Fb}/json"},
		{name: "lower-case encoded slash refused", method: "POST", target: "/containers%2fcreate"},
		{name: "encoded backslash refused", method: "GET", target: "/containers/a%5cb/json"},
		{name: "raw backslash refused", method: "GET", target: `/containers/a\b/json`},
		{name: "encoded NUL refused", method: "GET", target: "/containers/abc%00/json"},
		{name: "encoded newline refused", method: "GET", target: "/containers/abc%0a/json"},
		{name: "encoded DEL refused", method: "GET", target: "/containers/abc%7f/json"},
		{name: "absolute-form target refused", method: "GET", target: "http://docker/containers/json"},
		{name: "absolute-form unix target refused", method: "POST", target: "unix:///containers/create"},
		{name: "asterisk target refused", method: "OPTIONS", target: "*"},
		{name: "missing leading slash refused", method: "GET", url: &url.URL{Path: "containers/json"}},
		{name: "empty path refused", method: "GET", url: &url.URL{}},
		{name: "opaque target refused", method: "GET", url: &url.URL{Opaque: "/containers/json"}},
		{name: "authority-form target refused", method: "CONNECT", url: &url.URL{Host: "docker:2375"}},
		{name: "fragment refused", method: "GET", url: &url.URL{Path: "/containers/json", Fragment: "x"}},
		{name: "raw path that does not encode the path refused", method: "GET", url: &url.URL{Path: "/containers/json", RawPath: "/containers/%63reate"}},
		{name: "nil target refused", method: "GET"},
		{name: "semicolon query on a query-named route refused", method: "POST", target: "/images/create?fromSrc=-;fromImage=evil"},
		{name: "bad escape in query on a query-named route refused", method: "POST", target: "/images/create?fromImage=%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.url
			if tt.target != "" {
				u = parseTarget(t, tt.target)
			}
			m, err := r.Route(tt.method, u)
			var re *RouteError
			if !errors.As(err, &re) {
				t.Fatalf("Route(%s %v) = %+v, %v; want *RouteError", tt.method, u, m, err)
			}
			if re.Status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", re.Status)
			}
			if m != nil {
				t.Errorf("match = %+v alongside an error", m)
			}
		})
	}
}

// TestBriefActionsExist pins the action names BRIEF §4 promises to policy
// authors.
func TestBriefActionsExist(t *testing.T) {
	promised := []string{
		"system.ping", "system.version", "system.info", "system.events", "system.df",
		"container.list", "container.create", "container.inspect", "container.start",
		"container.stop", "container.kill", "container.wait", "container.delete",
		"container.logs", "container.attach", "container.exec", "container.archive.get",
		"container.archive.put", "container.export", "container.update",
		"exec.start", "exec.inspect",
		"image.list", "image.pull", "image.import", "image.push", "image.tag", "image.load",
		"image.save", "image.delete", "image.inspect", "image.commit",
		"build.run", "volume.create", "network.create", "network.connect",
		"plugin.install", "session.start", "grpc.start",
	}
	have := map[string]bool{}
	for _, rt := range NewRouter().Routes() {
		have[rt.Action] = true
	}
	for _, a := range promised {
		t.Run(a, func(t *testing.T) {
			if !have[a] {
				t.Errorf("no route has action %q", a)
			}
		})
	}
}

// TestRouteTableIsWellFormed checks what the table's readers rely on:
// names from the BRIEF §4 resources, every row reachable, unique rows.
func TestRouteTableIsWellFormed(t *testing.T) {
	resources := []string{"system", "container", "exec", "image", "build", "volume", "network", "plugin", "swarm", "node", "service", "task", "secret", "config", "distribution", "session", "grpc", "debug"}
	r := NewRouter()
	seen := map[string]bool{}
	for _, rt := range r.Routes() {
		res, _, ok := strings.Cut(rt.Action, ".")
		if !ok || !slices.Contains(resources, res) || rt.Action != strings.ToLower(rt.Action) {
			t.Errorf("%s %s: action %q is not <resource>.<verb>", rt.Method, rt.Path, rt.Action)
		}
		key := rt.Method + " " + rt.Path + " " + rt.Query
		if seen[key] {
			t.Errorf("duplicate row %s", key)
		}
		seen[key] = true
	}
	// Each row must be what a request for its own template routes to,
	// prefixed and bare: an earlier route masking it would show here.
	for _, rt := range r.Routes() {
		target := exampleTarget(rt)
		for _, prefix := range []string{"", "/v1.41"} {
			m, err := r.Route(rt.Method, parseTarget(t, prefix+target))
			if err != nil {
				t.Errorf("%s %s: %v", rt.Method, prefix+target, err)
				continue
			}
			if m.Action != rt.Action {
				t.Errorf("%s %s routes to %q, want %q", rt.Method, prefix+target, m.Action, rt.Action)
			}
		}
	}
}

// exampleTarget fills a route template with plain values.
func exampleTarget(rt Route) string {
	var b strings.Builder
	tpl := rt.Path
	for {
		i := strings.IndexByte(tpl, '{')
		if i < 0 {
			b.WriteString(tpl)
			break
		}
		j := strings.IndexByte(tpl[i:], '}')
		b.WriteString(tpl[:i])
		b.WriteString("x1")
		tpl = tpl[i+j+1:]
	}
	if rt.Query != "" {
		b.WriteString("?" + rt.Query + "=v")
	}
	return b.String()
}

func TestRoutesReturnsACopy(t *testing.T) {
	r := NewRouter()
	rs := r.Routes()
	rs[0].Action = "changed"
	if r.Routes()[0].Action == "changed" {
		t.Fatal("Routes exposes the router's table")
	}
}

// noopHandler is never called: the reference mux only matches.
type noopHandler struct{}

func (noopHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// dockerdMux is a reference built the way dockerd's CreateMux builds its
// mux: one gorilla/mux router, every route versioned then bare, in table
// order, with the version catch-all last. Router splits routes by method;
// the fuzz target checks that this changes no answer.
type dockerdMux struct {
	mux  *mux.Router
	rows map[*mux.Route][]Route
}

func newDockerdMux(routes []Route) *dockerdMux {
	d := &dockerdMux{mux: mux.NewRouter(), rows: map[*mux.Route][]Route{}}
	first := map[string][]*mux.Route{}
	for _, rt := range routes {
		k := rt.Method + " " + rt.Path
		if regs, ok := first[k]; ok {
			for _, reg := range regs {
				d.rows[reg] = append(d.rows[reg], rt)
			}
			continue
		}
		v := d.mux.Path("/v{version:[0-9.]+}" + rt.Path).Methods(rt.Method).Handler(noopHandler{})
		b := d.mux.Path(rt.Path).Methods(rt.Method).Handler(noopHandler{})
		first[k] = []*mux.Route{v, b}
		d.rows[v] = []Route{rt}
		d.rows[b] = []Route{rt}
	}
	d.mux.Path("/v{version:[0-9.]+}/{path:.*}").Handler(noopHandler{})
	return d
}

// actions returns the actions the matched dockerd route may carry.
func (d *dockerdMux) actions(method, path string) (actions []string, version string) {
	var rm mux.RouteMatch
	if !d.mux.Match(&http.Request{Method: method, URL: &url.URL{Path: path}}, &rm) || rm.MatchErr != nil {
		return []string{ActionUnknown}, ""
	}
	rows := d.rows[rm.Route]
	if len(rows) == 0 {
		return []string{ActionUnknown}, rm.Vars["version"]
	}
	for _, rt := range rows {
		actions = append(actions, rt.Action)
	}
	return actions, rm.Vars["version"]
}

// TestRouteAgreesWithDockerdMux asks every method of every route's path,
// with and without odd version prefixes, of both Router and a mux built as
// dockerd builds it.
func TestRouteAgreesWithDockerdMux(t *testing.T) {
	r := NewRouter()
	ref := newDockerdMux(r.Routes())
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"}
	for _, rt := range r.Routes() {
		for _, prefix := range []string{"", "/v1.41", "/v1.41.", "/v.", "/v1.41/v1.41"} {
			for _, method := range methods {
				target := prefix + exampleTarget(rt)
				m, err := r.Route(method, parseTarget(t, target))
				if err != nil {
					t.Fatalf("%s %s: %v", method, target, err)
				}
				want, version := ref.actions(method, parseTarget(t, target).Path)
				if !slices.Contains(want, m.Action) || m.APIVersion != version {
					t.Errorf("%s %s = %q (version %q); dockerd's mux says %v (version %q)", method, target, m.Action, m.APIVersion, want, version)
				}
			}
		}
	}
}

func FuzzRoute(f *testing.F) {
	for _, s := range []string{
		"/containers/json", "/v1.41/containers/create", "/containers/a/b/json",
		"/v1.41./_ping", "/containers/../json", "//containers/json",
		"/containers/%2e%2e/json", "/images/create?fromImage=x", "/containers/a%2Fb/json",
		"/v./x", "/exec/x/start", "*", "http://h/containers/json",
		"/containers/a/checkpoints/b", "/_ping", "/networks/", "/debug/pprof/heap",
		"/v1.24/volumes/x", "/plugins/privileges", "/images/a/b/get",
	} {
		for _, m := range []string{"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"} {
			f.Add(m, s)
		}
	}
	r := NewRouter()
	ref := newDockerdMux(r.Routes())
	f.Fuzz(func(t *testing.T, method, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		m, err := r.Route(method, u)
		if err != nil {
			var re *RouteError
			if !errors.As(err, &re) || re.Status != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400 RouteError", err)
			}
			return
		}
		if m == nil {
			t.Fatal("nil match without error")
		}
		for _, p := range []string{u.Path, u.EscapedPath()} {
			segs := strings.Split(p, "/")
			if strings.Contains(p, "//") || slices.Contains(segs, "..") || slices.Contains(segs, ".") {
				t.Fatalf("%q routed to %q despite an unclean path", target, m.Action)
			}
		}
		if strings.Contains(strings.ToUpper(u.RawPath+u.EscapedPath()), "%2F") {
			t.Fatalf("%q routed to %q despite an encoded slash", target, m.Action)
		}
		want, version := ref.actions(method, u.Path)
		if !slices.Contains(want, m.Action) || m.APIVersion != version {
			t.Fatalf("%s %q = %q (version %q); dockerd's mux says %v (version %q)", method, target, m.Action, m.APIVersion, want, version)
		}
	})
}

// BenchmarkRoute routes one request per representative path: every
// request pays for it, /_ping included. "mixed" is the four requests the
// benchmark routed in turn before it had sub-benchmarks.
func BenchmarkRoute(b *testing.B) {
	r := NewRouter()
	cases := []struct {
		name, method, target, action string
	}{
		{"ping", "GET", "/_ping", "system.ping"},
		{"ping-head-versioned", "HEAD", "/v1.41/_ping", "system.ping"},
		{"containers-json", "GET", "/v1.41/containers/json?all=1", "container.list"},
		{"container-inspect", "GET", "/v1.41/containers/4c01db0b339c0f2b1d5b9d8a1c3f1e2a6b7c8d9e0f1a2b3c4d5e6f708192a3b4/json", "container.inspect"},
		{"exec-start", "POST", "/v1.41/exec/9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0/start", "exec.start"},
		{"network-connect", "POST", "/v1.41/networks/n1/connect", "network.connect"},
		{"grpc", "POST", "/grpc", "grpc.start"},
		{"unknown", "GET", "/v1.41/nothing/here", ActionUnknown},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			u := parseTarget(b, c.target)
			if m, err := r.Route(c.method, u); err != nil || m.Action != c.action {
				b.Fatalf("Route(%s %s) = %v, %v; want %s", c.method, c.target, m, err, c.action)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Route(c.method, u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("mixed", func(b *testing.B) {
		targets := []*url.URL{
			parseTarget(b, "/v1.41/containers/json"),
			parseTarget(b, "/v1.41/containers/abc/attach?stream=1"),
			parseTarget(b, "/v1.41/networks/n1/connect"),
			parseTarget(b, "/grpc"),
		}
		methods := []string{"GET", "POST", "POST", "POST"}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := r.Route(methods[i%4], targets[i%4]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// testMatch is the match of a request on the first row of action, as the
// router gives it, for tests that decide or read facts without a request
// target to route; ActionUnknown gets the unknown row.
func testMatch(action, apiVersion string) *Match {
	if action == ActionUnknown {
		return &Match{Route: unknownRoute, APIVersion: apiVersion}
	}
	for _, rt := range routeTable() {
		if rt.Action == action {
			return &Match{Route: &rt, APIVersion: apiVersion}
		}
	}
	panic("no route for " + action)
}
