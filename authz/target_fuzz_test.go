package authz

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/filters"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
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
		x := &extraction{m: testMatch("container.list", "1.41"), req: &Request{Method: http.MethodGet, URL: u, Header: http.Header{}}}
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

// FuzzLabelByChanges: when a commit's changes are forwarded with the
// owner's LABEL added, the Dockerfile dockerd builds from them ends with
// that LABEL, read as the owner label and value, after the client's own
// instructions unchanged.
func FuzzLabelByChanges(f *testing.F) {
	for _, c := range []string{"", "ENV A=1", "LABEL a=b \\", "# escape=`\nLABEL a=b `", "LABEL a=\"b", "ENV A=1\x00CMD [\"x\"]", "LABEL 'a=b", "\\"} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		changes := strings.Split(joined, "\x00")
		q := url.Values{"container": {"mine"}, "changes": changes}
		u := &url.URL{Path: "/v1.41/commit", RawQuery: q.Encode()}
		x := &extraction{m: testMatch("image.commit", "1.41"), req: &Request{Method: http.MethodPost, URL: u, Header: http.Header{}, Owner: "user:jenkins"}}
		if err := x.labelByChanges(); err != nil {
			return
		}
		_, rawQuery := x.target()
		fwd, err := url.ParseQuery(rawQuery)
		if err != nil {
			t.Fatal(err)
		}
		res, err := parser.Parse(strings.NewReader(strings.Join(fwd["changes"], "\n")))
		if err != nil {
			t.Fatalf("%q: forwarded changes do not parse: %v", changes, err)
		}
		last := res.AST.Children[len(res.AST.Children)-1]
		if !strings.EqualFold(last.Value, "label") {
			t.Fatalf("%q: last instruction %q", changes, last.Original)
		}
		lex := shell.NewLex(res.EscapeToken)
		got := map[string]string{}
		for k := last.Next; k != nil && k.Next != nil; k = k.Next.Next.Next {
			key, _, err := lex.ProcessWord(k.Value, envOf(nil))
			if err != nil {
				t.Fatal(err)
			}
			val, _, err := lex.ProcessWord(k.Next.Value, envOf(nil))
			if err != nil {
				t.Fatal(err)
			}
			got[key] = val
			if k.Next.Next == nil {
				break
			}
		}
		if got[OwnerLabel] != "user:jenkins" || len(got) != 1 {
			t.Fatalf("%q: the owner's LABEL reads as %v", changes, got)
		}
	})
}
