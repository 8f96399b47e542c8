// Package dockermux matches a request to a row of a route table exactly as
// dockerd's gorilla/mux router would (its version prefix, its precedence,
// its {name:.*} greediness), and refuses a request target that dockerd
// would redirect or that could be read two ways.
package dockermux

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/gorilla/mux"
)

// versionPrefix is dockerd's own matcher (api/server/server.go): any run of
// digits and dots, so "/v1.41./", "/v01.41/" and "/v./" all route.
const versionPrefix = "/v{version:[0-9.]+}"

// Row is what the mux needs of one route: its method, its path template
// without the version prefix, and the query parameter that narrows it.
type Row struct {
	Method string
	Path   string
	// Query, when set, makes the row apply only when that query parameter
	// is non-empty (its first value, as dockerd's r.Form.Get reads it).
	// Rows sharing Method and Path are one dockerd route whose meaning
	// depends on the query; they are tried in table order and the last one
	// has no Query.
	Query string
}

// TargetError is a request target the mux refuses: dockerd would redirect
// it, or it could be read two ways. It is answered 400.
type TargetError struct{ Message string }

func (e *TargetError) Error() string { return e.Message }

func refuse(format string, args ...any) *TargetError {
	return &TargetError{Message: fmt.Sprintf(format, args...)}
}

// Mux is gorilla/mux itself, loaded the way dockerd loads it. It is safe
// for concurrent use.
type Mux struct {
	// byMethod holds one mux per method, each with that method's routes in
	// dockerd's order and the version catch-all last. mux picks the first
	// route whose path and method both match, so dropping the routes of
	// other methods changes nothing but the number of regexps tried.
	byMethod map[string]*mux.Router
	// otherMethods routes methods no route has: only the catch-all.
	otherMethods *mux.Router
	rows         []Row
	// indices maps each registered mux route to the table rows it stands
	// for: one row, or several told apart by query (Row.Query). The
	// version catch-all maps to none.
	indices map[*mux.Route][]int
}

// noopHandler is never called: the mux only matches. gorilla/mux wants a
// handler on every route for its method-mismatch bookkeeping.
type noopHandler struct{}

func (noopHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// New loads rows, in dockerd's registration order: gorilla/mux dispatches
// to the first route that matches method and path, so the order is part of
// the meaning. A template gorilla/mux cannot read panics: the table is a
// constant of the program.
func New(rows []Row) *Mux {
	m := &Mux{
		byMethod:     make(map[string]*mux.Router),
		otherMethods: mux.NewRouter(),
		rows:         rows,
		indices:      make(map[*mux.Route][]int),
	}
	type key struct{ method, path string }
	first := make(map[key][2]*mux.Route)
	for i, rt := range rows {
		k := key{rt.Method, rt.Path}
		if regs, ok := first[k]; ok {
			// dockerd has one handler for this method and path; this row
			// refines it, so it shares the mux routes of the first row.
			for _, reg := range regs {
				m.indices[reg] = append(m.indices[reg], i)
			}
			continue
		}
		r := m.byMethod[rt.Method]
		if r == nil {
			r = mux.NewRouter()
			m.byMethod[rt.Method] = r
		}
		// Versioned before bare, route by route, as dockerd's CreateMux does.
		versioned := register(r.Path(versionPrefix+rt.Path).Methods(rt.Method), rt)
		bare := register(r.Path(rt.Path).Methods(rt.Method), rt)
		first[k] = [2]*mux.Route{versioned, bare}
		m.indices[versioned] = []int{i}
		m.indices[bare] = []int{i}
	}
	// dockerd's "page not found" catch-all: registered so that unknown
	// versioned paths still report their API version.
	for _, r := range m.byMethod {
		addVersionCatchAll(r)
	}
	addVersionCatchAll(m.otherMethods)
	return m
}

func addVersionCatchAll(r *mux.Router) {
	register(r.Path(versionPrefix+"/{path:.*}"), Row{Path: "/{path:.*}"})
}

func register(r *mux.Route, rt Row) *mux.Route {
	r.Handler(noopHandler{})
	if err := r.GetError(); err != nil {
		panic(fmt.Sprintf("dockermux: route %s %s: %v", rt.Method, rt.Path, err))
	}
	return r
}

// Match returns the index of the row dockerd would dispatch the request to,
// or -1 when dockerd would answer 404 (no route, or a known path with
// another method); apiVersion is the /v<version> prefix's version, vars
// the row's path variables, percent-decoded. An error (*TargetError) means
// the target must be refused.
func (m *Mux) Match(method string, u *url.URL) (row int, apiVersion string, vars map[string]string, err error) {
	p, err := routablePath(u)
	if err != nil {
		return -1, "", nil, err
	}
	req := &http.Request{Method: method, URL: &url.URL{Path: p}, Header: http.Header{}}
	r := m.byMethod[method]
	if r == nil {
		r = m.otherMethods
	}
	var rm mux.RouteMatch
	if !r.Match(req, &rm) || rm.MatchErr != nil || rm.Route == nil {
		return -1, "", nil, nil
	}
	for _, i := range m.indices[rm.Route] {
		if q := m.rows[i].Query; q != "" {
			ok, err := queryIsSet(u.RawQuery, q)
			if err != nil {
				return -1, "", nil, err
			}
			if !ok {
				continue
			}
		}
		return i, rm.Vars["version"], routeVars(rm.Vars), nil
	}
	return -1, rm.Vars["version"], nil, nil
}

// routeVars drops the version, which Match returns on its own.
func routeVars(v map[string]string) map[string]string {
	var out map[string]string
	for k, val := range v {
		if k == "version" {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(v))
		}
		out[k] = val
	}
	return out
}

// queryIsSet reads a parameter as dockerd's r.Form.Get does: the first value.
// A query dockerd's ParseForm rejects (semicolons, bad escapes) is refused
// here too rather than guessed at.
func queryIsSet(rawQuery, name string) (bool, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return false, refuse("malformed query: %v", err)
	}
	return q.Get(name) != "", nil
}

// routablePath returns the percent-decoded path that dockerd's mux routes
// on, or refuses the target when dockerd would not route it as it stands
// or when its spelling could mean two things.
func routablePath(u *url.URL) (string, error) {
	if u == nil {
		return "", refuse("missing request target")
	}
	// Absolute-form and authority-form targets: Go's server would route
	// their path, but the host part is something dockgate does not judge.
	if u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return "", refuse("request target must be a path (origin form)")
	}
	// A request line never carries a fragment; one here means the target
	// was parsed differently from how dockerd's server parses it.
	if u.Fragment != "" || u.RawFragment != "" {
		return "", refuse("request target has a fragment")
	}
	// The spelling as received is RawPath when it differs from Go's own
	// encoding of Path. EscapedPath would swap a RawPath with unusual but
	// harmless bytes ({, ", non-ASCII) for the canonical form, hiding what
	// the client sent, so RawPath is read directly and checked against Path.
	esc := u.RawPath
	if esc == "" {
		esc = u.EscapedPath()
	}
	if !strings.HasPrefix(esc, "/") {
		return "", refuse("request path must start with /")
	}
	dec, err := url.PathUnescape(esc)
	if err != nil {
		return "", refuse("malformed percent-encoding in path")
	}
	if dec != u.Path {
		return "", refuse("path and its escaped form disagree")
	}
	// An encoded slash routes as a slash in dockerd ({name:.*} swallows it)
	// but reads as one segment to anyone splitting the escaped path; a
	// backslash is a separator to Windows-minded code. Neither has a use
	// in the Engine API paths.
	for _, bad := range []string{"%2F", "%2f", "%5C", "%5c"} {
		if strings.Contains(esc, bad) {
			return "", refuse("encoded %s in path", bad)
		}
	}
	for i := 0; i < len(dec); i++ {
		switch c := dec[i]; {
		case c < 0x20 || c == 0x7f:
			return "", refuse("control byte 0x%02x in path", c)
		case c == '\\':
			return "", refuse("backslash in path")
		}
	}
	// dockerd's mux answers 301 to an unclean path (//, ., .., also when
	// percent-encoded, since it checks the decoded path); the client would
	// follow to a path that was never judged.
	if muxCleanPath(dec) != dec {
		return "", refuse("path is not in canonical form (empty, . or .. segments)")
	}
	return dec, nil
}

// muxCleanPath is gorilla/mux's cleanPath (mux.go, v1.8.1): path.Clean
// that keeps a trailing slash.
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
