// Package authz names every Docker Engine API call, reads what it would do,
// and decides whether a caller may make it.
package authz

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/dockgate/dockgate/authz/policy"
)

func (r *Request) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Request is what the decision point sees of one HTTP request.
type Request struct {
	Method string
	// URL is the request target as received (origin form): EscapedPath and
	// RawQuery are what dockerd will see.
	URL    *url.URL
	Header http.Header
	// Caller names the caller in messages ("user:jenkins").
	Caller string
	// Subjects are the caller's policy subjects (BRIEF §3).
	Subjects []string
	// Cred is the caller's uid and groups on this host, nil for a caller
	// with no account here (TLS): which host paths it could change
	// between the decision and dockerd's act.
	Cred *Cred
	// ContainerID is the full ID of the container the caller runs in, read
	// from its cgroup; "" for a host process or a TLS client. The decider
	// asks dockerd about it and judges the caller as that container
	// (docs/containers.md), replacing Subjects and Caller.
	ContainerID string
	// Creator is what a container create by a caller in a container
	// records as its creator (the io.dockgate.creator label): the
	// subjects this request is judged by, then the container's own
	// recorded creators. Set by the decider; nil for a host caller (read
	// it with Creators).
	Creator [][]string
	// Body is the whole request body when the route asked for it (NeedsBody),
	// else nil. These are the bytes that will be forwarded.
	Body []byte
	// BodyFile holds the whole request body when the route asked for it
	// spooled (Spool) and the request has one, else nil; BodySize is its
	// length. These are the bytes that will be forwarded. Read it with
	// ReadAt (io.NewSectionReader): its offset belongs to the proxy.
	BodyFile *os.File
	BodySize int64
	// Owner is the owner subject of a tenant caller (policy.Policy.Owner),
	// set by the decider before the facts are read of a create
	// (Route.labels) or of a request that names an existing object
	// (Route.target); "" for other callers and other requests.
	Owner string
	// TTL is the time to live the policy gives what a tenant creates
	// (policy.Policy.TTL), set with Owner; 0 for none.
	TTL time.Duration
	// Now, when set, is the clock the expiry of a tenant's objects is
	// computed from (tests); time.Now otherwise.
	Now func() time.Time
	// OwnedBody is set by the extractor when the body is forwarded
	// changed: the judged (typed) body re-encoded with what dockgate
	// records in it (a tenant's owner labels, the creator label), the
	// containers a tenant's body names pinned to their full IDs, and the
	// binds of a Docker socket given dockgate's own (Rewrites).
	OwnedBody []byte
	// Rewrites say, one a line, which binds of a Docker daemon's socket
	// OwnedBody gives dockgate's own socket instead ("bind SRC:DST ->
	// DGSOCK:DST", "mount SRC:TARGET -> DGSOCK:TARGET"), for the audit
	// record and explain.
	Rewrites []string
	// notes say why the extractor emitted a fact, for the refusal that
	// names it (a replaceable path: who can replace what).
	notes map[policy.Fact]string
	// missing, when a tenant's request names an object dockerd does not
	// have, is dockerd's 404 for it: the answer when every fact is
	// allowed (notFound).
	missing *RouteError
	// ownerRecorded says the extractor put the owner labels into what is
	// forwarded (body or query); a tenant's create without them is
	// refused.
	ownerRecorded bool
	// Target, when set by the extractor, is the request target (origin
	// form: escaped path and query) forwarded instead of the received one:
	// the object the request names pinned to its full ID, or a tenant's
	// owner filter merged into the query. It must mean what was judged.
	Target string
	// FilterResponse, when set by the extractor, rewrites the body of a
	// 200 response before the client gets it (a tenant's image list, say,
	// with other tenants' objects taken out). The proxy reads the body
	// whole for it; an error is answered 502.
	FilterResponse func(body []byte) ([]byte, error)
	// Prepare, when set by the extractor, is run by the proxy once the
	// request is allowed and before it is forwarded: it creates what the
	// request needs created first (a tenant's named volume, labelled). An
	// error refuses the request (a *RouteError carries its status).
	Prepare func(ctx context.Context) error
	// PrepareSays is what Prepare does, a sentence a step, for `dockgate
	// explain`, which shows it without running it.
	PrepareSays []string
	// Verify, when set by the extractor, judges the request again at the
	// act: the proxy runs it on dockerd's answer (its status and whole
	// body, read before the client gets any of it) and, on an error,
	// answers that instead (a *RouteError carries its status; any other
	// error is 502). It undoes what dockerd did that was not what was
	// judged (a container created from an image other than the judged
	// one) before it returns the error.
	Verify func(ctx context.Context, status int, body []byte) error
	// RewriteSpool, when set by the extractor, writes the body to forward
	// instead of the spooled one (BodyFile) into dst: a build context
	// whose Dockerfile names the base images judged by ID. The proxy runs
	// it once the request is allowed; an error refuses the request.
	RewriteSpool func(dst io.Writer) error
	// Solve is the BuildKit solve a request describes, set by the
	// extractor of a Solve (MatchBuildKitCall) or of POST
	// /build?version=2; on the Dockerfile's pseudo-route
	// (MatchBuildKitDockerfile) the proxy sets it to the solve the
	// Dockerfile belongs to, and the extractor reads it.
	Solve *BuildKitSolve
	// Tag, set by the extractor of a pull by tag that signatures are
	// verified for, is the tag the client asked for: the pull is
	// forwarded as a pull of the digest verified (Target), and the proxy
	// gives the image that tag once dockerd has it.
	Tag *ImageTag

	// sig, when the policy verifies signatures, is how: set by the
	// decider before the facts are read.
	sig *sigCheck
}

// ImageTag is a tag dockgate gives an image it had dockerd pull by digest:
// Image (repository@digest) is tagged Repo:Tag.
type ImageTag struct {
	Image, Repo, Tag string
}

// note records why a fact was emitted.
func (r *Request) note(f policy.Fact, why string) {
	if r.notes == nil {
		r.notes = make(map[policy.Fact]string)
	}
	r.notes[f] = why
}

// Decision is the answer for one request.
type Decision struct {
	Allow bool
	// Status is the HTTP status of a refusal (403 by policy, 400 for a request
	// that cannot be judged).
	Status int
	// Reason is the refusal message without the "dockgate: " prefix, or why it
	// was allowed.
	Reason string
	// Answer, when set, is the message a refusal gives the client instead
	// of "dockgate: " + Reason: dockerd's own answer, which dockgate gives
	// as dockerd would (a 404 clients fall back on); Reason says why.
	Answer string
	// WouldDeny is set in audit mode when the request was forwarded although
	// the policy refuses it.
	WouldDeny bool
	Facts     []policy.FactResult
	// Container, when the caller runs in a container, is how it was
	// judged (docs/containers.md).
	Container *ContainerCaller
	// Body, when not nil, is forwarded instead of the request body that
	// was read: the judged body with what dockgate changed in it
	// (Request.OwnedBody).
	Body []byte
	// Rewrites are the binds of a Docker daemon's socket Body gives
	// dockgate's own instead (Request.Rewrites).
	Rewrites []string
	// Target, when not empty, is forwarded instead of the request target
	// that was received (Request.Target).
	Target string
	// FilterResponse, when not nil, rewrites the body of a 200 response
	// (Request.FilterResponse).
	FilterResponse func(body []byte) ([]byte, error)
	// Prepare, when not nil, runs before the request is forwarded
	// (Request.Prepare).
	Prepare func(ctx context.Context) error
	// PrepareSays is what Prepare does, in words (Request.PrepareSays).
	PrepareSays []string
	// Verify, when not nil, checks dockerd's answer before the client
	// gets it (Request.Verify).
	Verify func(ctx context.Context, status int, body []byte) error
	// RewriteSpool, when not nil, writes the spooled body to forward
	// (Request.RewriteSpool).
	RewriteSpool func(dst io.Writer) error
	// Solve, when not nil, is the BuildKit solve the allowed request
	// describes (Request.Solve): the proxy registers it so that its
	// Dockerfile is judged when the session carries it.
	Solve *BuildKitSolve
	// Tag, when not nil, is the tag the proxy gives the image of a pull
	// pinned to the digest verified, once the pull succeeded
	// (Request.Tag).
	Tag *ImageTag
}

// Decider is the decision point the proxy calls for every request.
type Decider interface {
	Decide(ctx context.Context, m *Match, req *Request) Decision
}

// AllowAll allows every request that has a route; requests that match no
// route are refused whatever the policy says (BRIEF §4).
type AllowAll struct{}

// Decide implements Decider.
func (AllowAll) Decide(_ context.Context, m *Match, req *Request) Decision {
	if m == nil || m.Action == ActionUnknown {
		return Decision{Status: http.StatusForbidden, Reason: req.Caller + " may not call " + req.Method + " " + req.URL.EscapedPath() + ": unknown endpoint" + UnknownEndpointFix}
	}
	return Decision{Allow: true, Reason: "allow-all", Facts: []policy.FactResult{{Kind: "endpoint", Value: m.Action, Decision: "allow", Rule: "allow-all"}}}
}

// UnknownEndpointFix ends the refusal of a request no route names: no row
// can allow it (BRIEF §4), so the message says what can.
const UnknownEndpointFix = "; no policy row can allow an endpoint dockgate does not know (a path of a newer Engine API is routed once dockgate knows it)"
