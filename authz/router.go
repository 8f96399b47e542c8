package authz

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

// RouteError is a request target dockgate refuses to route because dockerd
// would redirect it or could read it differently from dockgate.
type RouteError struct {
	// Status is the HTTP status of the refusal.
	Status  int
	Message string
	// Dockerd marks dockerd's own answer (its status and message, such as
	// 404 "No such container: x"), given to the client as dockerd gives
	// it, without dockgate's prefix: clients act on it as on dockerd's.
	Dockerd bool
}

func (e *RouteError) Error() string { return e.Message }

func badTarget(format string, args ...any) *RouteError {
	return &RouteError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// Router names requests with the action of the route dockerd would dispatch
// them to. It is gorilla/mux itself, loaded the way dockerd loads it, so that
// precedence, {name:.*} greediness and method handling cannot drift from
// dockerd's. It is safe for concurrent use.
type Router struct {
	// byMethod holds one mux per method, each with that method's routes in
	// dockerd's order and the version catch-all last. mux picks the first
	// route whose path and method both match, so dropping the routes of
	// other methods changes nothing but the number of regexps tried.
	byMethod map[string]*mux.Router
	// otherMethods routes methods no route has: only the catch-all.
	otherMethods *mux.Router
	routes       []Route
	// rows maps each registered mux route to the table rows it stands for:
	// one row, or several told apart by query (Route.Query). The version
	// catch-all maps to none.
	rows map[*mux.Route][]int
}

// routeNoopHandler is never called: the router only matches. mux wants a
// handler on every route for its method-mismatch bookkeeping.
type routeNoopHandler struct{}

func (routeNoopHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// NewRouter builds the router for the whole Engine API.
func NewRouter() *Router {
	r := &Router{
		byMethod:     make(map[string]*mux.Router),
		otherMethods: mux.NewRouter(),
		routes:       routeTable(),
		rows:         make(map[*mux.Route][]int),
	}
	type key struct{ method, path string }
	first := make(map[key][2]*mux.Route)
	for i, rt := range r.routes {
		k := key{rt.Method, rt.Path}
		if regs, ok := first[k]; ok {
			// dockerd has one handler for this method and path; this row
			// refines it, so it shares the mux routes of the first row.
			for _, reg := range regs {
				r.rows[reg] = append(r.rows[reg], i)
			}
			continue
		}
		m := r.byMethod[rt.Method]
		if m == nil {
			m = mux.NewRouter()
			r.byMethod[rt.Method] = m
		}
		// Versioned before bare, route by route, as dockerd's CreateMux does.
		versioned := registerMuxRoute(m.Path(versionPrefix+rt.Path).Methods(rt.Method), rt)
		bare := registerMuxRoute(m.Path(rt.Path).Methods(rt.Method), rt)
		first[k] = [2]*mux.Route{versioned, bare}
		r.rows[versioned] = []int{i}
		r.rows[bare] = []int{i}
	}
	// dockerd's "page not found" catch-all: registered so that unknown
	// versioned paths still report their API version.
	for _, m := range r.byMethod {
		addVersionCatchAll(m)
	}
	addVersionCatchAll(r.otherMethods)
	return r
}

func addVersionCatchAll(m *mux.Router) {
	registerMuxRoute(m.Path(versionPrefix+"/{path:.*}"), Route{Path: "/{path:.*}"})
}

func registerMuxRoute(m *mux.Route, rt Route) *mux.Route {
	m.Handler(routeNoopHandler{})
	if err := m.GetError(); err != nil {
		// The table is a constant of the program; a bad template is a bug
		// that every test run catches.
		panic(fmt.Sprintf("authz: route %s %s: %v", rt.Method, rt.Path, err))
	}
	return m
}

// Routes returns a copy of the route table in dockerd's registration order.
// The rows' fact readers and targets are shared with the router's.
func (r *Router) Routes() []Route {
	return append([]Route(nil), r.routes...)
}

// Route names the request. A request that dockerd would answer with 404
// (no route, or a known path with another method) gets ActionUnknown and
// no error. An error (*RouteError) means the target must be refused: dockerd
// would redirect it, or it could be read two ways.
func (r *Router) Route(method string, u *url.URL) (*Match, error) {
	p, err := routablePath(u)
	if err != nil {
		return nil, err
	}
	req := &http.Request{Method: method, URL: &url.URL{Path: p}, Header: http.Header{}}
	mx := r.byMethod[method]
	if mx == nil {
		mx = r.otherMethods
	}
	var rm mux.RouteMatch
	if !mx.Match(req, &rm) || rm.MatchErr != nil || rm.Route == nil {
		return &Match{Route: unknownRoute}, nil
	}
	m := &Match{Route: unknownRoute, APIVersion: rm.Vars["version"]}
	for _, i := range r.rows[rm.Route] {
		rt := &r.routes[i]
		if rt.Query != "" {
			ok, err := queryIsSet(u.RawQuery, rt.Query)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		m.Route = rt
		m.Vars = routeVars(rm.Vars)
		break
	}
	return m, nil
}

// routeVars drops the version, which Match carries on its own.
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
		return false, badTarget("malformed query: %v", err)
	}
	return q.Get(name) != "", nil
}

// routablePath returns the percent-decoded path that dockerd's mux routes
// on, or refuses the target when dockerd would not route it as it stands
// or when its spelling could mean two things.
func routablePath(u *url.URL) (string, error) {
	if u == nil {
		return "", badTarget("missing request target")
	}
	// Absolute-form and authority-form targets: Go's server would route
	// their path, but the host part is something dockgate does not judge.
	if u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return "", badTarget("request target must be a path (origin form)")
	}
	// A request line never carries a fragment; one here means the target
	// was parsed differently from how dockerd's server parses it.
	if u.Fragment != "" || u.RawFragment != "" {
		return "", badTarget("request target has a fragment")
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
		return "", badTarget("request path must start with /")
	}
	dec, err := url.PathUnescape(esc)
	if err != nil {
		return "", badTarget("malformed percent-encoding in path")
	}
	if dec != u.Path {
		return "", badTarget("path and its escaped form disagree")
	}
	// An encoded slash routes as a slash in dockerd ({name:.*} swallows it)
	// but reads as one segment to anyone splitting the escaped path; a
	// backslash is a separator to Windows-minded code. Neither has a use
	// in the Engine API paths.
	for _, bad := range []string{"%2F", "%2f", "%5C", "%5c"} {
		if strings.Contains(esc, bad) {
			return "", badTarget("encoded %s in path", bad)
		}
	}
	for i := 0; i < len(dec); i++ {
		switch c := dec[i]; {
		case c < 0x20 || c == 0x7f:
			return "", badTarget("control byte 0x%02x in path", c)
		case c == '\\':
			return "", badTarget("backslash in path")
		}
	}
	// dockerd's mux answers 301 to an unclean path (//, ., .., also when
	// percent-encoded, since it checks the decoded path); the client would
	// follow to a path that was never judged.
	if muxCleanPath(dec) != dec {
		return "", badTarget("path is not in canonical form (empty, . or .. segments)")
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
