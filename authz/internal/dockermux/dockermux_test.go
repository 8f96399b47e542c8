package dockermux

import (
	"errors"
	"net/url"
	"reflect"
	"testing"
)

// The mux on a table of its own: the rules that are its, not the Engine
// API's (authz's router tests check the whole table against a mux built
// as dockerd builds it).
func TestMatch(t *testing.T) {
	m := New([]Row{
		{Method: "GET", Path: "/things/json"},
		{Method: "GET", Path: "/things/{name:.*}/json"},
		{Method: "POST", Path: "/things/create", Query: "from"},
		{Method: "POST", Path: "/things/create"},
		{Method: "DELETE", Path: "/things/{name:.*}"},
	})
	for _, tc := range []struct {
		method, target string
		row            int
		version        string
		vars           map[string]string
		refused        bool
	}{
		{method: "GET", target: "/things/json", row: 0},
		{method: "GET", target: "/v1.41/things/json", row: 0, version: "1.41"},
		// dockerd's version matcher: any run of digits and dots.
		{method: "GET", target: "/v1.41./things/json", row: 0, version: "1.41."},
		// Registration order decides: json is the list, not a thing.
		{method: "GET", target: "/things/a/b/json", row: 1, vars: map[string]string{"name": "a/b"}},
		{method: "POST", target: "/things/create?from=x", row: 2},
		{method: "POST", target: "/things/create?from=", row: 3},
		{method: "POST", target: "/things/create", row: 3},
		{method: "DELETE", target: "/v1.24/things/x", row: 4, version: "1.24", vars: map[string]string{"name": "x"}},
		// No route, or another method: dockerd's 404.
		{method: "PUT", target: "/things/json", row: -1},
		{method: "GET", target: "/v1.41/nothing", row: -1, version: "1.41"},
		{method: "GET", target: "/nothing", row: -1},
		// Targets dockerd would redirect or could read two ways.
		{method: "GET", target: "/things//json", refused: true},
		{method: "GET", target: "/things/a%2Fb/json", refused: true},
		{method: "GET", target: "/things/../json", refused: true},
		{method: "POST", target: "/things/create?from=%zz", refused: true},
	} {
		u, err := url.ParseRequestURI(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		row, version, vars, err := m.Match(tc.method, u)
		var te *TargetError
		switch {
		case tc.refused:
			if !errors.As(err, &te) {
				t.Errorf("%s %s: %v, want a TargetError", tc.method, tc.target, err)
			}
		case err != nil:
			t.Errorf("%s %s: %v", tc.method, tc.target, err)
		case row != tc.row || version != tc.version || !reflect.DeepEqual(vars, tc.vars):
			t.Errorf("%s %s: row %d version %q vars %v, want row %d version %q vars %v", tc.method, tc.target, row, version, vars, tc.row, tc.version, tc.vars)
		}
	}
}

func TestNewPanicsOnATemplateMuxCannotRead(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a broken template loaded")
		}
	}()
	New([]Row{{Method: "GET", Path: "/things/{name"}})
}

// TestNewRefusesTemplates: what gorilla/mux refuses is refused, and so is
// what it would take but this matcher does not implement, rather than
// matched some other way.
func TestNewRefusesTemplates(t *testing.T) {
	for _, tc := range []struct{ name, path string }{
		{"unbalanced open brace", "/things/{name"},
		{"unbalanced close brace", "/things/name}"},
		{"nested braces", "/things/{id:[0-9]{3}}"},
		{"empty name", "/things/{:.*}"},
		{"empty pattern", "/things/{name:}"},
		{"pattern it does not implement", "/things/{id:[0-9]+}"},
		{"a variable named version", "/things/{version}"},
		{"no leading slash", "things/json"},
		{"literal that is not ASCII", "/thïngs/json"},
		{"more variables than it collects", "/{a}/{b}/{c}/{d}/{e}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("%q loaded", tc.path)
				}
			}()
			New([]Row{{Method: "GET", Path: tc.path}})
		})
	}
}
