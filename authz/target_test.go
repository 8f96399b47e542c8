package authz

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func targetExtraction(t *testing.T, method, target string, body string) *extraction {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewRouter().Route(method, u)
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{Method: method, URL: u, Header: http.Header{}}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Body = []byte(body)
	}
	return &extraction{m: m, req: req}
}

func TestPinPathVar(t *testing.T) {
	const id = "4f1c9a2e8b7d6c5f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"
	for _, tc := range []struct {
		method, target, want string
	}{
		{"GET", "/v1.41/containers/web/json", "/v1.41/containers/" + id + "/json"},
		{"GET", "/containers/web/logs?follow=1&stdout=1", "/containers/" + id + "/logs?follow=1&stdout=1"},
		{"POST", "/v1.41./containers/a/b/kill?signal=KILL", "/v1.41./containers/" + id + "/kill?signal=KILL"},
		{"GET", "/v1.41/containers/w%65b/json", "/v1.41/containers/" + id + "/json"},
		{"DELETE", "/v1.41/containers/web?force=1", "/v1.41/containers/" + id + "?force=1"},
		{"GET", "/v1.41/containers/web/archive?path=%2Fetc", "/v1.41/containers/" + id + "/archive?path=%2Fetc"},
	} {
		x := targetExtraction(t, tc.method, tc.target, "")
		if err := x.pinPathVar("name", id); err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.target, err)
			continue
		}
		if x.req.Target != tc.want {
			t.Errorf("%s %s: forwarded %q, want %q", tc.method, tc.target, x.req.Target, tc.want)
		}
		// What is forwarded routes to the same action, with the ID.
		u, _ := url.ParseRequestURI(x.req.Target)
		m, err := NewRouter().Route(tc.method, u)
		if err != nil || m.Action != x.m.Action || m.Vars["name"] != id {
			t.Errorf("%s %s: forwarded target routes to %+v, %v", tc.method, tc.target, m, err)
		}
	}
}

func TestSetFirstQueryValue(t *testing.T) {
	for _, tc := range []struct {
		target, body, want, err string
	}{
		{"/v1.41/containers/json", "", "/v1.41/containers/json?filters=NEW", ""},
		{"/v1.41/containers/json?all=1", "", "/v1.41/containers/json?all=1&filters=NEW", ""},
		{"/v1.41/containers/json?filters=%7B%7D&all=1&filters=x", "", "/v1.41/containers/json?filters=NEW&all=1&filters=x", ""},
		{"/v1.41/containers/json?fil%74ers=a&filters=b", "", "/v1.41/containers/json?filters=NEW&filters=b", ""},
		{"/v1.41/containers/json?a=%zz", "", "", "malformed query"},
		{"/v1.41/containers/prune", "filters=%7B%7D", "", "form body"},
		{"/v1.41/containers/prune", "other=1", "/v1.41/containers/prune?filters=NEW", ""},
	} {
		method := "GET"
		if tc.body != "" {
			method = "POST"
		}
		x := targetExtraction(t, method, tc.target, tc.body)
		err := x.setFirstQueryValue("filters", "NEW")
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.target, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.target, err)
		case x.req.Target != tc.want:
			t.Errorf("%s: forwarded %q, want %q", tc.target, x.req.Target, tc.want)
		}
	}
}
