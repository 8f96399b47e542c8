package dockermux

import (
	"maps"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// gorillaMux is the reference: gorilla/mux itself, loaded as dockerd's
// CreateMux loads it (every route versioned, then bare, in table order,
// the version catch-all last). Mux must answer as it does.
type gorillaMux struct {
	r    *mux.Router
	rows []Row
	// indices maps each registered route to the rows it stands for.
	indices map[*mux.Route][]int
}

type noopHandler struct{}

func (noopHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

func newGorillaMux(t testing.TB, rows []Row) *gorillaMux {
	g := &gorillaMux{r: mux.NewRouter(), rows: rows, indices: map[*mux.Route][]int{}}
	first := map[[2]string][]*mux.Route{}
	for i, rt := range rows {
		k := [2]string{rt.Method, rt.Path}
		if regs, ok := first[k]; ok {
			for _, reg := range regs {
				g.indices[reg] = append(g.indices[reg], i)
			}
			continue
		}
		v := g.r.Path("/v{version:[0-9.]+}" + rt.Path).Methods(rt.Method).Handler(noopHandler{})
		b := g.r.Path(rt.Path).Methods(rt.Method).Handler(noopHandler{})
		for _, reg := range []*mux.Route{v, b} {
			if err := reg.GetError(); err != nil {
				t.Fatalf("gorilla/mux refuses %s %s: %v", rt.Method, rt.Path, err)
			}
		}
		first[k] = []*mux.Route{v, b}
		g.indices[v] = []int{i}
		g.indices[b] = []int{i}
	}
	g.r.Path("/v{version:[0-9.]+}/{path:.*}").Handler(noopHandler{})
	return g
}

// match is Mux.Match's answer as gorilla/mux gives it, for a decoded
// path and a query.
func (g *gorillaMux) match(method, p, rawQuery string) (row int, version string, vars map[string]string) {
	var rm mux.RouteMatch
	req := &http.Request{Method: method, URL: &url.URL{Path: p}, Header: http.Header{}}
	if !g.r.Match(req, &rm) || rm.MatchErr != nil || rm.Route == nil {
		return -1, "", nil
	}
	version = rm.Vars["version"]
	for _, i := range g.indices[rm.Route] {
		if q := g.rows[i].Query; q != "" {
			v, _ := url.ParseQuery(rawQuery)
			if v.Get(q) == "" {
				continue
			}
		}
		for k, v := range rm.Vars {
			if k == "version" {
				continue
			}
			if vars == nil {
				vars = map[string]string{}
			}
			vars[k] = v
		}
		return i, version, vars
	}
	return -1, version, nil
}

// oddRows are templates of every shape the matcher handles, in an order
// where precedence matters: literal before variable, a variable first
// segment, a bare first segment that reads as a version, two variables,
// variables inside a segment, a query-narrowed row.
var oddRows = []Row{
	{Method: "GET", Path: "/things/json"},
	{Method: "GET", Path: "/things/{name:.*}/json"},
	{Method: "GET", Path: "/things/{name}/parts/{part}"},
	{Method: "GET", Path: "/things/{name:.*}"},
	{Method: "GET", Path: "/nets/"},
	{Method: "GET", Path: "/nets/{id:.+}"},
	{Method: "GET", Path: "/v1/legacy"},
	{Method: "GET", Path: "/pre{fix}/x"},
	{Method: "GET", Path: "/a/{x}-{y}/b"},
	{Method: "GET", Path: "/a/{x:.*}/mid/{y:.*}/end"},
	{Method: "GET", Path: "/_ping"},
	{Method: "HEAD", Path: "/_ping"},
	{Method: "POST", Path: "/things/create", Query: "from"},
	{Method: "POST", Path: "/things/create"},
	{Method: "POST", Path: "/things/{name:.*}/run"},
	{Method: "DELETE", Path: "/things/{name:.*}"},
	{Method: "DELETE", Path: "/things/{name}/parts/{part}"},
	{Method: "OPTIONS", Path: "/{anyroute:.*}"},
	{Method: "PUT", Path: "/"},
}

var oddPaths = []string{
	"/", "/things", "/things/", "/things/json", "/things/x/json", "/things/a/b/json",
	"/things/json/json", "/things/x/parts/p", "/things/x/y/parts/p", "/things/x/parts/",
	"/things/x", "/things/x/run", "/things/create", "/nets", "/nets/", "/nets/n1", "/nets/n1/x",
	"/v1/legacy", "/v1/v1/legacy", "/v1.41/v1/legacy", "/prefoo/x", "/pre/x", "/a/1-2/b",
	"/a/1-2-3/b", "/a/-/b", "/a/q/mid/r/end", "/a/q/mid/r/mid/s/end", "/a//mid//end",
	"/_ping", "/v1.41/_ping", "/v1.41./_ping", "/v./_ping", "/v/_ping", "/v1.41", "/v1.41/",
	"/v1.41/nothing", "/v1.41a/things/json", "/things/x\n/json", "/v1.41/x\ny",
	"/things/\xff/json", "/things/é/json", "/v1.41/things/json", "/V1.41/things/json",
}

// TestMatchAgreesWithGorillaMux asks every method of every odd path, with
// and without a version prefix and a query, of Mux and of gorilla/mux.
func TestMatchAgreesWithGorillaMux(t *testing.T) {
	m, g := New(oddRows), newGorillaMux(t, oddRows)
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"}
	for _, p := range oddPaths {
		for _, prefix := range []string{"", "/v1.41", "/v1..2."} {
			for _, q := range []string{"", "from=x", "from="} {
				for _, method := range methods {
					agree(t, m, g, method, prefix+p, q)
				}
			}
		}
	}
}

// agree checks one request; paths with bytes a request target cannot
// carry are matched directly, past routablePath.
func agree(t *testing.T, m *Mux, g *gorillaMux, method, p, rawQuery string) {
	t.Helper()
	wantRow, wantVersion, wantVars := g.match(method, p, rawQuery)
	var row int
	var version string
	var vars map[string]string
	if _, err := routablePath(&url.URL{Path: p}); err == nil {
		var err error
		row, version, vars, err = m.Match(method, &url.URL{Path: p, RawQuery: rawQuery})
		if err != nil {
			t.Fatalf("%s %q: %v", method, p, err)
		}
	} else {
		row, version, vars = m.matchPath(method, p, rawQuery)
	}
	if row != wantRow || version != wantVersion || !maps.Equal(vars, wantVars) {
		t.Errorf("%s %q?%s: row %d version %q vars %v; gorilla/mux: row %d version %q vars %v", method, p, rawQuery, row, version, vars, wantRow, wantVersion, wantVars)
	}
}

// matchPath is Match past routablePath, for paths it would refuse.
func (m *Mux) matchPath(method, p, rawQuery string) (int, string, map[string]string) {
	row, version, vars, err := m.matchIn(m.index(method), p, rawQuery)
	if err != nil {
		return -2, "", nil
	}
	return row, version, vars
}

func FuzzMatchAgreesWithGorillaMux(f *testing.F) {
	for _, p := range oddPaths {
		f.Add("GET", p, "")
		f.Add("DELETE", "/v1.41"+p, "")
	}
	f.Add("POST", "/things/create", "from=x")
	m, g := New(oddRows), newGorillaMux(f, oddRows)
	f.Fuzz(func(t *testing.T, method, p, rawQuery string) {
		if !strings.HasPrefix(p, "/") {
			return
		}
		if _, err := url.ParseQuery(rawQuery); err != nil {
			return
		}
		agree(t, m, g, method, p, rawQuery)
	})
}

// muxCleanPath is gorilla/mux's cleanPath (mux.go, v1.8.1): path.Clean
// that keeps a trailing slash; dockerd redirects a path it changes.
func muxCleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

func TestIsCleanPathIsGorillaCleanPath(t *testing.T) {
	for _, p := range []string{
		"/", "//", "/a", "/a/", "/a//", "//a", "/a//b", "/.", "/./", "/..", "/../", "/a/.",
		"/a/./b", "/a/..", "/a/../b", "/a/.b", "/a/b.", "/a/..b", "/.../", "/v1.41/", "/a/b/",
	} {
		if got, want := isCleanPath(p), muxCleanPath(p) == p; got != want {
			t.Errorf("isCleanPath(%q) = %v, gorilla/mux cleanPath says %v", p, got, want)
		}
	}
}

func FuzzIsCleanPath(f *testing.F) {
	for _, s := range []string{"/", "//", "/a/./b", "/a/../", "/a/b/", "/..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			return
		}
		if got, want := isCleanPath(p), muxCleanPath(p) == p; got != want {
			t.Fatalf("isCleanPath(%q) = %v, gorilla/mux cleanPath says %v", p, got, want)
		}
	})
}
