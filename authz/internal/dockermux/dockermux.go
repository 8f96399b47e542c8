// Package dockermux matches a request to a row of a route table exactly as
// dockerd's gorilla/mux router would (its version prefix, its precedence,
// its {name:.*} greediness), and refuses a request target that dockerd
// would redirect or that could be read two ways.
package dockermux

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

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

// Mux matches as the gorilla/mux router dockerd's CreateMux builds: every
// route registered "/v{version:[0-9.]+}" + template, then bare, in table
// order, and the version catch-all "/v{version:[0-9.]+}/{path:.*}" last;
// the first registration whose method and path match wins. It does not run
// gorilla/mux: it tries only the registrations that can match the path
// (index.go) with each template compiled to string comparisons
// (template.go), and gives the answer gorilla/mux gives: gorilla_test.go
// checks it against gorilla/mux itself on templates of every shape it
// handles, and the tests of authz on the whole table, both under fuzzing.
// It is safe for concurrent use.
type Mux struct {
	// byMethod holds each method's registrations; a registration of
	// another method can only add gorilla/mux's method-mismatch
	// bookkeeping, never change which route matches. A handful of
	// methods: a scan is quicker than a map.
	byMethod []methodRoutes
	// otherMethods serves methods no route has: only the catch-all,
	// which has no method.
	otherMethods *methodIndex
	rows         []Row
}

type methodRoutes struct {
	method string
	index  *methodIndex
}

// New loads rows, in dockerd's registration order: gorilla/mux dispatches
// to the first route that matches method and path, so the order is part of
// the meaning. A template gorilla/mux cannot read, or one with a variable
// pattern this matcher does not implement, panics: the table is a
// constant of the program.
func New(rows []Row) *Mux {
	m := &Mux{rows: rows, otherMethods: newMethodIndex(nil)}
	type key struct{ method, path string }
	first := make(map[key]*route)
	var methods []string
	regs := make(map[string][]*registration)
	for i, rt := range rows {
		k := key{rt.Method, rt.Path}
		if r, ok := first[k]; ok {
			// dockerd has one handler for this method and path; this row
			// refines it, so it shares the registrations of the first row.
			r.rows = append(r.rows, i)
			continue
		}
		t, err := compileTemplate(rt.Path)
		if err == nil && slices.Contains(t.names, "version") {
			err = fmt.Errorf("a variable named version would hide the version prefix's")
		}
		if err != nil {
			panic(fmt.Sprintf("dockermux: route %s %s: %v", rt.Method, rt.Path, err))
		}
		r := &route{tpl: t, rows: []int{i}}
		first[k] = r
		if regs[rt.Method] == nil {
			methods = append(methods, rt.Method)
		}
		// Versioned before bare, route by route, as dockerd's CreateMux does.
		regs[rt.Method] = append(regs[rt.Method], &registration{route: r, versioned: true}, &registration{route: r})
	}
	for _, method := range methods {
		m.byMethod = append(m.byMethod, methodRoutes{method: method, index: newMethodIndex(regs[method])})
	}
	return m
}

// Match returns the index of the row dockerd would dispatch the request to,
// or -1 when dockerd would answer 404 (no route, or a known path with
// another method); apiVersion is the /v<version> prefix's version, vars
// the row's path variables, percent-decoded (nil when it has none). An
// error (*TargetError) means the target must be refused.
func (m *Mux) Match(method string, u *url.URL) (row int, apiVersion string, vars map[string]string, err error) {
	p, err := routablePath(u)
	if err != nil {
		return -1, "", nil, err
	}
	return m.matchIn(m.index(method), p, u.RawQuery)
}

// index is the registrations a request of method may match.
func (m *Mux) index(method string) *methodIndex {
	for _, mr := range m.byMethod {
		if mr.method == method {
			return mr.index
		}
	}
	return m.otherMethods
}

// matchIn is Match on a routable path p.
func (m *Mux) matchIn(ix *methodIndex, p, rawQuery string) (row int, apiVersion string, vars map[string]string, err error) {
	version, rest, versioned := splitVersion(p)
	var vals [maxVars]string
	reg := ix.find(p, version, rest, versioned, &vals)
	if reg == nil {
		if versioned && strings.IndexByte(rest, '\n') < 0 {
			// The catch-all: "/v{version:[0-9.]+}/{path:.*}".
			return -1, version, nil, nil
		}
		return -1, "", nil, nil
	}
	if !versioned || !reg.versioned {
		// A bare template matched the whole path: no version variable.
		version = ""
	}
	for _, i := range reg.rows {
		if q := m.rows[i].Query; q != "" {
			ok, err := queryIsSet(rawQuery, q)
			if err != nil {
				return -1, "", nil, err
			}
			if !ok {
				continue
			}
		}
		return i, version, reg.tpl.vars(&vals), nil
	}
	return -1, version, nil, nil
}

// vars returns the template's variables as gorilla/mux's Vars holds them
// (the last of two variables of one name wins), nil for none.
func (t *template) vars(vals *[maxVars]string) map[string]string {
	if len(t.names) == 0 {
		return nil
	}
	out := make(map[string]string, len(t.names))
	for i, name := range t.names {
		out[name] = vals[i]
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
	// Without a RawPath, what was received is Go's encoding of Path, which
	// escapes nothing the checks below look for but a backslash, and a
	// backslash is refused in the decoded path.
	dec := u.Path
	if esc := u.RawPath; esc != "" {
		if !strings.HasPrefix(esc, "/") {
			return "", refuse("request path must start with /")
		}
		d, err := url.PathUnescape(esc)
		if err != nil {
			return "", refuse("malformed percent-encoding in path")
		}
		if d != dec {
			return "", refuse("path and its escaped form disagree")
		}
		// An encoded slash routes as a slash in dockerd ({name:.*}
		// swallows it) but reads as one segment to anyone splitting the
		// escaped path; a backslash is a separator to Windows-minded code.
		// Neither has a use in the Engine API paths.
		for _, bad := range []string{"%2F", "%2f", "%5C", "%5c"} {
			if strings.Contains(esc, bad) {
				return "", refuse("encoded %s in path", bad)
			}
		}
	}
	if !strings.HasPrefix(dec, "/") {
		return "", refuse("request path must start with /")
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
	if !isCleanPath(dec) {
		return "", refuse("path is not in canonical form (empty, . or .. segments)")
	}
	return dec, nil
}

// isCleanPath says whether gorilla/mux's cleanPath (mux.go, v1.8.1:
// path.Clean that keeps a trailing slash) leaves p, which starts with
// "/", as it is: no empty segment but a trailing one, no "." or ".."
// segment. It reads p without building the cleaned copy.
func isCleanPath(p string) bool {
	for seg := p[1:]; ; {
		s, more, cut := strings.Cut(seg, "/")
		switch {
		case s == "." || s == "..":
			return false
		case s == "" && cut:
			return false
		case !cut:
			return true
		}
		seg = more
	}
}
