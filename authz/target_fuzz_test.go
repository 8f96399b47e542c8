package authz

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/docker/docker/api/types/filters"
)

// FuzzSetFirstQueryValue: the forwarded query gives dockerd (r.Form.Get)
// exactly the value set, and keeps every other value of every parameter.
func FuzzSetFirstQueryValue(f *testing.F) {
	for _, q := range []string{"", "all=1", "filters=%7B%7D&all=1&filters=x", "fil%74ers=a&filters=b", "a=%zz", "filters", "&&filters=&", "a+b=c+d&filters=%2B"} {
		f.Add(q, "v={\"a\":true}")
	}
	f.Fuzz(func(t *testing.T, rawQuery, value string) {
		before, err := url.ParseQuery(rawQuery)
		u := &url.URL{Path: "/v1.41/containers/json", RawQuery: rawQuery}
		x := &extraction{m: &Match{Action: "container.list", APIVersion: "1.41"}, req: &Request{Method: http.MethodGet, URL: u, Header: http.Header{}}}
		serr := x.setFirstQueryValue("filters", value)
		if err != nil {
			if serr == nil {
				t.Fatalf("%q: malformed query accepted", rawQuery)
			}
			return
		}
		if serr != nil {
			t.Fatalf("%q: %v", rawQuery, serr)
		}
		_, q := x.target()
		after, err := url.ParseQuery(q)
		if err != nil {
			t.Fatalf("%q → %q: %v", rawQuery, q, err)
		}
		if got := after.Get("filters"); got != value {
			t.Fatalf("%q → %q: filters %q, want %q", rawQuery, q, got, value)
		}
		if len(before["filters"]) > 1 && !slices.Equal(after["filters"][1:], before["filters"][1:]) {
			t.Fatalf("%q → %q: later filters values changed", rawQuery, q)
		}
		delete(before, "filters")
		delete(after, "filters")
		if !maps.EqualFunc(before, after, slices.Equal) {
			t.Fatalf("%q → %q: other parameters changed", rawQuery, q)
		}
	})
}

// FuzzMergeOwnerFilter: a merged filter decodes as dockerd decodes it,
// holds the owner's label filter and every filter the client sent.
func FuzzMergeOwnerFilter(f *testing.F) {
	for _, raw := range []string{"", "{}", `{"label":{"a=b":true}}`, `{"label":["a=b"]}`, `{"label":null}`, `{"status":{"running":true},"label":{"x":false}}`, `[]`, `{"label":{"io.dockgate.owner=user:x":true}}`} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		const owner = "user:jenkins"
		out, err := mergeOwnerFilter(raw, owner)
		if err != nil {
			return
		}
		got, err := filters.FromJSON(out)
		if err != nil {
			t.Fatalf("%q → %q does not decode: %v", raw, out, err)
		}
		if !got.ExactMatch(ownerFilterKey, OwnerLabel+"="+owner) {
			t.Fatalf("%q → %q: no owner filter", raw, out)
		}
		sent, err := filters.FromJSON(raw)
		if err != nil {
			t.Fatalf("%q merged but does not decode", raw)
		}
		// Compared as dockerd's Args encode, false values included.
		had, have := filterFields(t, sent), filterFields(t, got)
		for key, values := range had {
			for v, b := range values {
				if hb, ok := have[key][v]; !ok || hb != b {
					t.Fatalf("%q → %q: lost %s=%s (%v)", raw, out, key, v, b)
				}
			}
		}
	})
}

func filterFields(t *testing.T, a filters.Args) map[string]map[string]bool {
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]bool
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
