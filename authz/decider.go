package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/dockgate/dockgate/authz/policy"
)

// allowedReason is the Reason of an allowed request: the facts carry the
// rules that allowed it.
const allowedReason = "every fact allowed by the policy"

// PolicyDecider is the decision point of BRIEF §3: every request becomes its
// endpoint fact plus the facts its extractor reads, each fact is decided
// for all the caller's subjects, and the request is allowed when every fact
// is. It fails closed: an unknown endpoint, an extractor error or panic, or
// a missing policy is a refusal, never a forward.
//
// The policy and the mode are swapped atomically, together (Put,
// SetPolicy, ReloadDir): a request is decided entirely by the policy and
// mode in force when its decision began. One decider serves for the
// process's life; a reload changes what it holds, not the decider.
type PolicyDecider struct {
	// Extract reads the facts beyond the endpoint fact; nil means the
	// endpoint fact only.
	Extract Extractor
	// Inspector answers the extractor's questions about dockerd's state.
	Inspector Inspector
	// Containers says who a caller in a container is (docs/containers.md);
	// nil refuses every such caller.
	Containers CallerContainers
	// Signatures looks up and verifies images' signatures in their
	// registries, for a policy that verifies them; nil makes every
	// signature fact unverified.
	Signatures Signatures

	inForce atomic.Pointer[inForce]
}

// inForce is what one decision reads, once, at its start.
type inForce struct {
	policy *policy.Policy
	// audit is --mode audit: requests the policy refuses are forwarded
	// anyway and marked WouldDeny. Requests that cannot be judged
	// (unknown endpoint, malformed) are still refused: that is not the
	// policy's call.
	audit bool
}

// NewPolicyDecider returns a decider enforcing p.
func NewPolicyDecider(p *policy.Policy) *PolicyDecider {
	d := &PolicyDecider{}
	d.inForce.Store(&inForce{policy: p})
	return d
}

// Policy returns the policy in force, nil for none.
func (d *PolicyDecider) Policy() *policy.Policy { return d.now().policy }

// now is what is in force; a decider that was never given a policy has
// none, and refuses everything.
func (d *PolicyDecider) now() *inForce {
	if in := d.inForce.Load(); in != nil {
		return in
	}
	return &inForce{}
}

// Put puts policy p and the mode (audit: --mode audit) in force together,
// for every decision that starts from now on.
func (d *PolicyDecider) Put(p *policy.Policy, audit bool) {
	d.inForce.Store(&inForce{policy: p, audit: audit})
}

// SetPolicy puts p in force for every decision that starts from now on,
// in the mode in force, and returns the policy it replaces.
func (d *PolicyDecider) SetPolicy(p *policy.Policy) (old *policy.Policy) {
	for {
		cur := d.inForce.Load()
		next, old := &inForce{policy: p}, (*policy.Policy)(nil)
		if cur != nil {
			next.audit, old = cur.audit, cur.policy
		}
		if d.inForce.CompareAndSwap(cur, next) {
			return old
		}
	}
}

// ReloadDir loads the policy directory dir and puts it in force. When it
// does not load, the policy in force stays and the error (policy.Errors,
// with files and lines) says why.
func (d *PolicyDecider) ReloadDir(dir string) (*policy.Policy, error) {
	p, err := policy.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	d.SetPolicy(p)
	return p, nil
}

// Decide implements Decider.
func (d *PolicyDecider) Decide(ctx context.Context, m *Match, req *Request) Decision {
	in := d.now()
	p, audit := in.policy, in.audit
	var judged *ContainerCaller
	if p != nil {
		var refused *Decision
		if judged, refused = d.judgeCaller(ctx, p, req); refused != nil {
			return *refused
		}
	}
	dec := d.decide(ctx, m, req, p, audit)
	dec.Container = judged
	return dec
}

// decide is Decide once the caller is known.
func (d *PolicyDecider) decide(ctx context.Context, m *Match, req *Request, p *policy.Policy, audit bool) Decision {
	caller := req.Caller
	if caller == "" {
		caller = "unknown caller"
	}
	if m == nil || m.Action == ActionUnknown {
		// BRIEF §4: no pattern opens what dockgate cannot name.
		return Decision{Status: http.StatusForbidden, Reason: caller + " may not call " + req.Method + " " + requestPath(req) + ": unknown endpoint" + UnknownEndpointFix}
	}
	if p == nil {
		return Decision{Status: http.StatusInternalServerError, Reason: "no policy loaded"}
	}
	c := rulesFor(p, req)
	endpoint, endpointAllowed := c.Result(policy.Fact{Kind: "endpoint", Value: m.Action})
	if !endpointAllowed && !audit {
		// Refused whatever the body says: the body of a request the caller
		// may not make at all is not parsed, and dockerd is not asked about
		// it. Audit mode reads on, to record every fact.
		refused := Decision{Status: http.StatusForbidden, Reason: refusal(&c.own, m, caller, endpoint, ""), Facts: []policy.FactResult{endpoint}}
		if nf, ok := d.notFoundInsteadOfRefusal(ctx, m, refused); ok {
			return nf
		}
		return refused
	}

	if m.needsOwner() {
		owner, err := p.Owner(req.Subjects)
		if err != nil {
			return Decision{Status: http.StatusForbidden, Reason: caller + " may not call " + m.Action + ": " + err.Error(), Facts: []policy.FactResult{endpoint}}
		}
		req.Owner, req.OwnedBody, req.TTL, req.ownerRecorded = owner, nil, 0, false
		if owner != "" {
			req.TTL = p.TTL(req.Subjects)
		}
	}
	req.Target, req.FilterResponse, req.Prepare, req.PrepareSays, req.Verify, req.RewriteSpool, req.notes, req.missing = "", nil, nil, nil, nil, nil, nil, nil
	req.Rewrites, req.Tag, req.sig = nil, nil, nil
	if p.VerifiesSignatures {
		req.sig = &sigCheck{v: d.Signatures, keys: p.Keys}
	}

	var more []policy.Fact
	if d.Extract != nil {
		var err error
		more, err = d.extract(ctx, m, req)
		if err != nil {
			// The endpoint fact is still recorded, with its decision, so
			// that the audit record says what was asked.
			status, msg, answer := http.StatusBadRequest, err.Error(), ""
			var re *RouteError
			if errors.As(err, &re) {
				status, msg = re.Status, re.Message
				if re.Dockerd {
					answer, msg = re.Message, "dockerd's answer to dockgate's lookup: "+re.Message
				}
			}
			return Decision{Status: status, Reason: msg, Answer: answer, Facts: []policy.FactResult{endpoint}}
		}
	}

	results := make([]policy.FactResult, 1+len(more))
	results[0] = endpoint
	first := -1
	if !endpointAllowed {
		first = 0
	}
	for i, f := range more {
		var ok bool
		if results[1+i], ok = c.Result(f); !ok && first < 0 {
			first = 1 + i
		}
	}
	// An allowed request goes to dockerd as the extractor changed it.
	allowed := func(reason string, wouldDeny bool) Decision {
		return Decision{Allow: true, WouldDeny: wouldDeny, Reason: reason, Facts: results,
			Body: req.OwnedBody, Rewrites: req.Rewrites, Target: req.Target, FilterResponse: req.FilterResponse, Prepare: req.Prepare, PrepareSays: req.PrepareSays, Verify: req.Verify, RewriteSpool: req.RewriteSpool, Solve: req.Solve, Tag: req.Tag}
	}
	if first < 0 && req.missing != nil && !audit {
		return Decision{Status: req.missing.Status, Reason: "dockerd has no such object: " + req.missing.Message, Answer: req.missing.Message, Facts: results}
	}
	unlabelled := m.labels != noOwnerLabels && req.Owner != "" && !req.ownerRecorded
	if first < 0 && !unlabelled {
		return allowed(allowedReason, false)
	}
	if first < 0 || audit && unlabelled {
		// Fail closed: a tenant's object is never created unlabelled. A
		// request refused anyway keeps the refusal that names its fact.
		return Decision{Status: http.StatusInternalServerError, Reason: "cannot record the owner of what " + m.Action + " creates", Facts: results}
	}
	reason := refusal(&c.own, m, caller, results[first], req.notes[policy.Fact{Kind: results[first].Kind, Value: results[first].Value}])
	if audit {
		return allowed(reason, true)
	}
	return Decision{Status: http.StatusForbidden, Reason: reason, Facts: results}
}

// extract runs the extractor; a panic in it is an error, so that a request
// nobody could judge is refused (500), never forwarded.
func (d *PolicyDecider) extract(ctx context.Context, m *Match, req *Request) (facts []policy.Fact, err error) {
	defer func() {
		if v := recover(); v != nil {
			facts = nil
			err = &RouteError{Status: http.StatusInternalServerError, Message: fmt.Sprintf("internal error reading the facts of %s: %v", m.Action, v)}
		}
	}()
	return d.Extract(ctx, m, req, d.Inspector)
}

func requestPath(req *Request) string {
	if req.URL == nil {
		return ""
	}
	return req.URL.EscapedPath()
}
