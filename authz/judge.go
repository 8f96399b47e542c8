package authz

import (
	"context"
	"net/http"
)

// The one request path: every front end of dockgate (the proxy, `dockgate
// explain`) routes a request, reads the body its route asks for (BodyPlan),
// and has it judged (Judge). Only how the bytes arrive differs.

// BodyPlan is what of a request's body is read before it is judged.
type BodyPlan int

const (
	// BodyForwarded: the body is not judged; it streams to dockerd.
	BodyForwarded BodyPlan = iota
	// BodyInMemory: the body is read whole into Request.Body.
	BodyInMemory
	// BodySpooled: the body is read whole into a file (Request.BodyFile).
	BodySpooled
)

// BodyPlan says what of a request on the matched route must be read before
// it is judged: what its route reads (NeedsBody, Spool), and on every
// route a form-encoded body, whole and in memory, because dockerd's r.Form
// reads parameters from it ahead of the query (extraction.form).
func (m *Match) BodyPlan(method string, h http.Header) BodyPlan {
	form := isFormBody(&Request{Method: method, Header: h})
	switch {
	case m.Spool && !form:
		return BodySpooled
	case m.NeedsBody || m.Spool || form:
		return BodyInMemory
	default:
		return BodyForwarded
	}
}

// Judge decides a routed request with d. A request that matches no route
// is refused whatever d says (BRIEF §4): no Decider, and no policy, can
// open what dockgate cannot name. A refusal always has a status: 403 when
// d gave none.
func Judge(ctx context.Context, d Decider, m *Match, req *Request) Decision {
	dec := d.Decide(ctx, m, req)
	if dec.Allow && (m == nil || m.Action == ActionUnknown) {
		dec = Decision{Status: http.StatusForbidden, Facts: dec.Facts,
			Reason: req.Caller + " may not call " + req.Method + " " + requestPath(req) + ": unknown endpoint" + UnknownEndpointFix}
	}
	if !dec.Allow && dec.Status == 0 {
		dec.Status = http.StatusForbidden
	}
	return dec
}
