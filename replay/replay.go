// Package replay judges every request of an audit trail again under a
// candidate policy and says what would change: requests newly refused,
// newly allowed, and those the trail does not say enough about to tell.
package replay

import (
	"slices"
	"strings"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
)

// Options select the records of a trail that are replayed.
type Options struct {
	// From and To select records by time: From <= time < To; zero is no
	// bound.
	From, To time.Time
	// Subject, when set, replays only the requests of callers that have
	// this subject ("user:jenkins", "container:ci-agent", "*").
	Subject string
	// SkipBad reads on past lines that are not records of the trail
	// (they are still listed in the report); without it the first one
	// stops the replay, since it could be a request that succeeded.
	SkipBad bool
}

// Why a record is not replayable. Each is a sentence the report prints.
const (
	WhyErrorDecision  = "error decision: not judged on its facts (malformed, too large, dockerd unreachable, …); stays as it was"
	WhyUnknownRoute   = "unknown endpoint: refused whatever the policy; stays as it was"
	WhyNoFacts        = "no facts on record"
	WhyEndpointOnly   = "refused at its endpoint before the rest of its facts were read, and the candidate allows the endpoint"
	WhyNotByFacts     = "refused for a reason other than its facts (an owner the policy could not name, dockerd's answer checked at the act); stays as it was"
	WhyCreators       = "a caller in a container allowed by the candidate on its own subjects, whose creators the trail does not say (created before the trail begins, or not a tenant's and its create shows no Docker socket or shared pid namespace, so it may or may not be capped by its creator): it cannot be shown allowed"
	WhyTenancyChanged = "the candidate changes whether the caller is a tenant, which changes the facts of this request (its owner fact)"
)

// Change is one request whose outcome the candidate changes.
type Change struct {
	File      string    `json:"file"`
	Line      int       `json:"line"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	// Caller names the caller as audit tables do; Subjects are those it
	// was judged by again.
	Caller   string   `json:"caller"`
	Subjects []string `json:"subjects"`
	Method   string   `json:"method"`
	Path     string   `json:"path"`
	Action   string   `json:"action"`
	// Status is what the client got; Succeeded says the request was
	// forwarded and dockerd answered it with success (1xx to 3xx).
	Status    int  `json:"status"`
	Succeeded bool `json:"succeeded"`
	// WouldDeny says it was forwarded in audit mode though the policy
	// that recorded it refused it.
	WouldDeny bool `json:"would_deny,omitempty"`
	// Fact is the fact that decides the change: for a newly refused
	// request, the first fact the candidate refuses, with its rule (or
	// "no rule allows it"); for a newly allowed one, the fact the trail
	// refused, with the candidate's rule that allows it now.
	Fact policy.FactResult `json:"fact"`
	// WasRule is the rule the trail recorded for Fact.
	WasRule string `json:"was_rule,omitempty"`
}

// Counts are the changes of one subject or one rule.
type Counts struct {
	NewlyRefused int `json:"newly_refused"`
	// Succeeded counts the newly refused requests that had succeeded.
	Succeeded    int `json:"newly_refused_succeeded"`
	NewlyAllowed int `json:"newly_allowed"`
}

// Report is what a replay found.
type Report struct {
	// Policy is the candidate's source and Hash its hash.
	Policy string `json:"policy"`
	Hash   string `json:"policy_hash"`
	// Requests counts the request records replayed (after the options'
	// selection); Unchanged those whose outcome stays.
	Requests  int `json:"requests"`
	Unchanged int `json:"unchanged"`
	// NewlyRefused are the requests the trail shows forwarded to dockerd
	// (allowed, or allowed with would_deny in audit mode) that the
	// candidate refuses; NewlyAllowed those the policy refused that the
	// candidate allows.
	NewlyRefused []Change `json:"newly_refused"`
	NewlyAllowed []Change `json:"newly_allowed"`
	// NotReplayable counts, by why, the records whose outcome under the
	// candidate cannot be told from the trail; NotReplayableSucceeded
	// those of them that had succeeded.
	NotReplayable          map[string]int `json:"not_replayable"`
	NotReplayableSucceeded int            `json:"not_replayable_succeeded"`
	// BySubject counts the changes by caller (as Change.Caller), ByRule
	// by the candidate's rule that decides them.
	BySubject map[string]*Counts `json:"by_subject"`
	ByRule    map[string]*Counts `json:"by_rule"`
	// BadLines are the lines that were not records of the trail.
	BadLines []audit.BadLine `json:"bad_lines,omitempty"`
}

// Fails says whether the candidate would break what worked: a request
// that succeeded in the trail is refused by it, or cannot be shown to
// be allowed by it (fail closed).
func (r *Report) Fails() bool {
	return r.SucceededRefused() > 0 || r.NotReplayableSucceeded > 0
}

// SucceededRefused counts the newly refused requests that had succeeded.
func (r *Report) SucceededRefused() int {
	n := 0
	for i := range r.NewlyRefused {
		if r.NewlyRefused[i].Succeeded {
			n++
		}
	}
	return n
}

// NotReplayableTotal counts the records that could not be replayed.
func (r *Report) NotReplayableTotal() int {
	n := 0
	for _, c := range r.NotReplayable {
		n += c
	}
	return n
}

// Trail replays the audit files at paths (oldest first, "-" stdin, gzip
// read transparently) under candidate p.
func Trail(p *policy.Policy, paths []string, opt Options) (*Report, error) {
	r := newReplayer(p, opt)
	err := audit.ReadTrail(paths, audit.TrailOptions{Since: opt.From, Until: opt.To, Bad: r.bad}, func(e *audit.Entry) error {
		r.record(e)
		return nil
	})
	return r.rep, err
}

// replayer is one replay: the candidate, and what it decided so far. The
// policy is fixed for the whole replay, so each fact is decided once per
// set of subjects.
type replayer struct {
	p           *policy.Policy
	opt         Options
	rep         *Report
	gidSubjects []string
	// actions are what replaying a request needs to know of its action.
	actions map[string]authz.ActionTraits
	// callers caches the decisions of each set of subjects, keyed by the
	// subjects joined.
	callers map[string]*callerCache
	key     []byte
	// creators are what the trail says of the creators of the
	// containers created in it, by full ID.
	creators map[string]created
}

type callerCache struct {
	subjects []string
	rules    policy.CallerRules
	// owner is what the candidate makes of the caller as a tenant: its
	// owner subject, or why it has none it could own by.
	owner    string
	ownerErr error
	facts    map[policy.Fact]factVerdict
}

type factVerdict struct {
	res policy.FactResult
	ok  bool
}

func newReplayer(p *policy.Policy, opt Options) *replayer {
	r := &replayer{
		p: p, opt: opt,
		rep: &Report{Policy: p.Source, Hash: p.Hash, NotReplayable: map[string]int{},
			BySubject: map[string]*Counts{}, ByRule: map[string]*Counts{}},
		gidSubjects: policyGIDs(p),
		callers:     map[string]*callerCache{},
		creators:    map[string]created{},
	}
	r.actions = authz.Actions()
	return r
}

func (r *replayer) bad(b audit.BadLine) error {
	r.rep.BadLines = append(r.rep.BadLines, b)
	if r.opt.SkipBad {
		return nil
	}
	return b
}

// caller returns the decision cache of a set of subjects.
func (r *replayer) caller(subjects []string) *callerCache {
	r.key = r.key[:0]
	for _, s := range subjects {
		r.key = append(append(r.key, s...), 0)
	}
	if c, ok := r.callers[string(r.key)]; ok {
		return c
	}
	// What the cache keeps outlives the record: its strings are cloned,
	// not the trail's memory (audit.ReadTrail).
	subjects = cloneAll(subjects)
	c := &callerCache{subjects: subjects, rules: r.p.RulesFor(subjects), facts: map[policy.Fact]factVerdict{}}
	c.owner, c.ownerErr = r.p.Owner(subjects)
	r.callers[string(r.key)] = c
	return c
}

func (c *callerCache) decide(kind, value string) (policy.FactResult, bool) {
	f := policy.Fact{Kind: kind, Value: value}
	if v, ok := c.facts[f]; ok {
		return v.res, v.ok
	}
	f = policy.Fact{Kind: strings.Clone(kind), Value: strings.Clone(value)}
	res, ok := c.rules.Result(f)
	c.facts[f] = factVerdict{res, ok}
	return res, ok
}

// succeeded says a recorded request reached dockerd and dockerd did what
// it asked: forwarded, with a status below 400 (a 304 is dockerd's
// "already so", which clients take as done).
func succeeded(e *audit.Entry) bool {
	return e.Decision == audit.DecisionAllow && e.Status >= 100 && e.Status < 400
}

func (r *replayer) record(e *audit.Entry) {
	subjects, why := r.callerSubjects(e.Caller)
	r.learnCreators(e, subjects, why)
	if r.opt.Subject != "" && (subjects == nil && !recordedSubject(e.Caller, r.opt.Subject) || subjects != nil && !slices.Contains(subjects, r.opt.Subject)) {
		return
	}
	rep := r.rep
	rep.Requests++
	notReplayable := func(why string) {
		rep.NotReplayable[why]++
		if succeeded(e) {
			rep.NotReplayableSucceeded++
		}
	}
	switch {
	case e.Action == authz.ActionUnknown:
		notReplayable(WhyUnknownRoute)
		return
	case e.Decision == audit.DecisionError:
		notReplayable(WhyErrorDecision)
		return
	case len(e.Facts) == 0:
		notReplayable(WhyNoFacts)
		return
	case why != "":
		notReplayable(why)
		return
	}
	forwarded := e.Decision == audit.DecisionAllow
	trailRefused := -1
	for i := range e.Facts {
		if e.Facts[i].Decision == audit.DecisionDeny {
			trailRefused = i
			break
		}
	}
	c := r.caller(subjects)
	if r.tenancyChanged(e, c) {
		notReplayable(WhyTenancyChanged)
		return
	}
	inContainer := e.Caller.Container != "" && e.Caller.Cert == ""
	var capped []*callerCache
	creatorsKnown := false
	if inContainer {
		var sets [][]string
		if sets, creatorsKnown = r.cappedBy(e.Caller); creatorsKnown {
			for _, set := range sets {
				capped = append(capped, r.caller(set))
			}
		}
	}
	refused, first := -1, policy.FactResult{}
	for i := range e.Facts {
		res, ok := c.decide(e.Facts[i].Kind, e.Facts[i].Value)
		for j := 0; ok && j < len(capped); j++ {
			// Every recorded creator must allow it too
			// (authz.callerRules).
			var cr policy.FactResult
			if cr, ok = capped[j].decide(e.Facts[i].Kind, e.Facts[i].Value); !ok {
				res = cr
				res.Rule = "its creator " + creatorName(capped[j].subjects) + " may not (" + cr.Rule + ")"
			}
		}
		if !ok {
			refused, first = i, res
			break
		}
		if i == 0 && c.ownerErr != nil && r.actions[e.Action].NeedsOwner {
			// The candidate makes the caller a tenant with no subject to
			// own by: the decider refuses once the endpoint is allowed.
			refused, first = 0, policy.FactResult{Kind: res.Kind, Value: res.Value, Decision: audit.DecisionDeny, Rule: c.ownerErr.Error()}
			break
		}
	}
	unknownCreators := inContainer && !creatorsKnown
	switch {
	case forwarded && refused >= 0:
		r.change(&rep.NewlyRefused, e, subjects, first, e.Facts[refused].Rule, true)
	case forwarded && unknownCreators:
		notReplayable(WhyCreators)
	case forwarded:
		rep.Unchanged++
	case refused >= 0:
		// Refused then and now; by the same fact or another, it stays
		// refused.
		rep.Unchanged++
	case trailRefused < 0:
		notReplayable(WhyNotByFacts)
	case trailRefused == 0 && len(e.Facts) == 1 && e.Facts[0].Kind == "endpoint" && !r.actions[e.Action].EndpointOnly:
		notReplayable(WhyEndpointOnly)
	case unknownCreators:
		notReplayable(WhyCreators)
	default:
		res, _ := c.decide(e.Facts[trailRefused].Kind, e.Facts[trailRefused].Value)
		r.change(&rep.NewlyAllowed, e, subjects, res, e.Facts[trailRefused].Rule, false)
	}
}

// tenancyChanged says whether the recorded facts of e are not those the
// candidate would have read, because it makes the caller a tenant, or no
// longer one: a tenant's request has the owner fact of the object it
// names, anyone else's has none.
func (r *replayer) tenancyChanged(e *audit.Entry, c *callerCache) bool {
	tenant := c.owner != "" || c.ownerErr != nil
	had := hasOwnerFact(e)
	return had && !tenant || !had && tenant && r.actions[e.Action].OwnerFact
}

func hasOwnerFact(e *audit.Entry) bool {
	for i := range e.Facts {
		if e.Facts[i].Kind == policy.OwnerKind {
			return true
		}
	}
	return false
}

// recordedSubject says whether a caller whose subjects cannot be rebuilt
// has s among those on record, so that --subject still selects it (and
// it is reported as not replayable rather than left out).
func recordedSubject(c *audit.Caller, s string) bool {
	return c != nil && (slices.Contains(c.Subjects, s) || s == "*" || s == "user:"+c.User && c.User != "" || s == "container:"+c.ContainerName && c.ContainerName != "")
}

func (r *replayer) change(list *[]Change, e *audit.Entry, subjects []string, fact policy.FactResult, wasRule string, refused bool) {
	ch := Change{File: e.File, Line: e.Line, Time: e.Time, RequestID: strings.Clone(e.RequestID),
		Caller: strings.Clone(callerName(e.Caller)), Subjects: cloneAll(subjects), Method: strings.Clone(e.Method), Path: strings.Clone(e.Path), Action: strings.Clone(e.Action),
		Status: e.Status, Succeeded: refused && succeeded(e), WouldDeny: e.WouldDeny, Fact: cloneFact(fact), WasRule: strings.Clone(wasRule)}
	*list = append(*list, ch)
	count := func(m map[string]*Counts, k string) {
		c := m[k]
		if c == nil {
			c = &Counts{}
			m[k] = c
		}
		if refused {
			c.NewlyRefused++
			if ch.Succeeded {
				c.Succeeded++
			}
		} else {
			c.NewlyAllowed++
		}
	}
	count(r.rep.BySubject, ch.Caller)
	count(r.rep.ByRule, fact.Rule)
}

// callerName names a caller as audit tables do, a TLS caller by its
// certificate (it has no uid on this host).
func callerName(c *audit.Caller) string {
	if c != nil && c.Cert != "" {
		return "cert:" + c.Cert
	}
	return audit.CallerName(c)
}

// created is what a container create in the trail says of the creator
// record dockgate put on the container (authz.CreatorLabel): the subject
// sets it records if it records one (the subjects the create was judged
// by, then its caller's own creators), and whether it surely does. A
// tenant's create always records one, and so does a create that binds a
// Docker socket or shares a pid namespace (its facts say so); another
// create records one only when it copies VolumesFrom, which its record
// does not show.
type created struct {
	sets     [][]string
	recorded bool
}

// learnCreators records what a container create says of its creators.
func (r *replayer) learnCreators(e *audit.Entry, subjects []string, why string) {
	if e.Action != "container.create" || e.Decision != audit.DecisionAllow || e.ObjectID == "" || e.Status < 200 || e.Status > 299 || e.Caller == nil {
		return
	}
	recorded := false
	for _, f := range e.Facts {
		if f.Kind == policy.DockerSocketKind || f.Kind == "namespace" && f.Value == "pid=container" {
			recorded = true
		}
	}
	c := e.Caller
	if c.Container == "" || c.Cert != "" {
		// A host caller's creator record is its subjects, as the
		// proxy made them.
		if why == "" {
			r.creators[strings.Clone(e.ObjectID)] = created{sets: [][]string{cloneAll(subjects)}, recorded: recorded}
		}
		return
	}
	// A caller in a container records the subjects it was judged by,
	// then the creators it is capped by.
	capped, ok := r.cappedBy(c)
	if !ok || len(c.Subjects) == 0 {
		return
	}
	r.creators[strings.Clone(e.ObjectID)] = created{sets: append([][]string{cloneAll(withStar(c.Subjects))}, capped...), recorded: recorded}
}

// cappedBy are the subject sets a caller in a container is capped by
// (authz.ContainerCaller.Creators), when the record or the trail says: a tenant's
// container acts as its creator and is capped by that creator's
// creators; any other container by all its creators, when its create
// surely recorded them.
func (r *replayer) cappedBy(c *audit.Caller) ([][]string, bool) {
	if c.Creators != nil {
		// The record says (a dockgate that records them).
		return c.Creators, true
	}
	rec, ok := r.creators[c.Container]
	switch {
	case !ok:
		return nil, false
	case c.ActsFor != "":
		if !slices.Contains(rec.sets[0], c.ActsFor) {
			// Not the create this trail shows: the record names
			// another tenant.
			return nil, false
		}
		return rec.sets[1:], true
	case !rec.recorded:
		return nil, false
	}
	return rec.sets, true
}

// creatorName names a creator by its most specific subject, as refusals
// do.
func creatorName(set []string) string {
	for _, s := range set {
		if s != "*" {
			return s
		}
	}
	return "*"
}

// cloneAll copies strings out of the trail's memory.
func cloneAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	return out
}

func cloneFact(f policy.FactResult) policy.FactResult {
	return policy.FactResult{Kind: strings.Clone(f.Kind), Value: strings.Clone(f.Value), Decision: strings.Clone(f.Decision), Rule: strings.Clone(f.Rule)}
}
