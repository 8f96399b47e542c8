package authz

import (
	"context"
	"net/http"
	"testing"
)

func TestBodyPlan(t *testing.T) {
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	json := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct {
		action, method string
		h              http.Header
		want           BodyPlan
	}{
		{"container.create", "POST", json, BodyInMemory},
		{"container.kill", "POST", json, BodyForwarded},
		{"image.load", "POST", http.Header{"Content-Type": {"application/x-tar"}}, BodySpooled},
		// dockerd reads parameters from a form body on any route.
		{"container.kill", "POST", form, BodyInMemory},
		{"image.load", "POST", form, BodyInMemory},
		{"container.inspect", "GET", form, BodyForwarded},
		{"image.import", "POST", http.Header{"Content-Type": {"application/x-tar"}}, BodyForwarded},
	} {
		if got := testMatch(tc.action, "1.41").BodyPlan(tc.method, tc.h); got != tc.want {
			t.Errorf("%s %s %v: plan %d, want %d", tc.method, tc.action, tc.h, got, tc.want)
		}
	}
}

// allowing is a Decider that allows everything it is asked, or refuses
// without saying how.
type allowing bool

func (a allowing) Decide(context.Context, *Match, *Request) Decision {
	return Decision{Allow: bool(a), Reason: "told to"}
}

func TestJudgeRefusesWhatNoRouteNames(t *testing.T) {
	req := testRequest("GET", "/v1.41/nothing/here", "uid:0", "*")
	req.Caller = "uid:0"
	dec := Judge(context.Background(), allowing(true), testMatch(ActionUnknown, "1.41"), req)
	if dec.Allow || dec.Status != http.StatusForbidden || dec.Reason != "uid:0 may not call GET /v1.41/nothing/here: unknown endpoint"+UnknownEndpointFix {
		t.Errorf("unknown endpoint allowed by a decider: allow %v status %d %q", dec.Allow, dec.Status, dec.Reason)
	}
	if dec := Judge(context.Background(), allowing(true), testMatch("system.ping", ""), req); !dec.Allow {
		t.Errorf("a named endpoint the decider allows is refused: %s", dec.Reason)
	}
	if dec := Judge(context.Background(), allowing(false), testMatch("system.ping", ""), req); dec.Allow || dec.Status != http.StatusForbidden {
		t.Errorf("a refusal without a status: allow %v status %d, want 403", dec.Allow, dec.Status)
	}
}
