// Package suggest learns, from an audit trail, the smallest policy rows
// that would have allowed what each caller did: the rows `dockgate policy
// suggest` writes for an operator to review before a policy is enforced.
package suggest

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
)

// Options select the records rows are learned from and say how callers
// are named.
type Options struct {
	// From and To select records by time: From <= time < To; zero is no
	// bound.
	From, To time.Time
	// Subject, when set, learns only from the callers that have this
	// subject ("user:jenkins", "container:ci-agent").
	Subject string
	// Current is the policy the trail was recorded under, if known: a
	// caller that has one of its roles gets its rows under that role, and
	// the role's g rows are kept.
	Current *policy.Policy
	// SkipBad reads on past lines that are not records of the trail
	// (they are listed); without it the first one stops the read, since
	// rows learned without it could miss what it did.
	SkipBad bool
}

// Why a record teaches no row. Each is a sentence the summary prints.
const (
	WhyNotSucceeded     = "not forwarded, or dockerd refused it: nothing to allow"
	WhyUnknownRoute     = "unknown endpoint: refused whatever the policy"
	WhyNoCaller         = "no caller on record"
	WhyUnnamedContainer = "a caller in a container dockerd did not name, or whose subjects are not on record"
)

// Suggestion is what a trail teaches: the rows of each caller, the role
// links they need, and test cases drawn from the trail.
type Suggestion struct {
	// Requests counts the request records read (after the options'
	// selection), Learned those that rows were learned from.
	Requests int `json:"requests"`
	Learned  int `json:"learned"`
	// Skipped counts, by why, the records that taught no row.
	Skipped map[string]int `json:"skipped"`
	// Principals are the subjects rows are written for, in the order
	// the trail first shows them.
	Principals []*Principal `json:"principals"`
	// Links are the g rows of the current policy that the principals'
	// roles need.
	Links []*policy.RoleLink `json:"-"`
	// Cases are test cases drawn from the trail for suggested_test.yaml:
	// requests that succeeded, which the rows must allow; refusals are
	// requests the trail shows refused at their endpoint, kept as cases
	// when the suggested policy refuses them too (WriteDir).
	Cases    []Case `json:"cases"`
	refusals []Case
	// BadLines are the lines that were not records of the trail.
	BadLines []audit.BadLine `json:"bad_lines,omitempty"`
}

// Principal is one subject and the rows it needs.
type Principal struct {
	Subject string `json:"subject"`
	// Tenant is the subject prefix it owns objects by, when the trail
	// shows it was a tenant (its requests had owner facts).
	Tenant string `json:"tenant,omitempty"`
	Rows   []Row  `json:"rows"`
}

// Row is one suggested allow row.
type Row struct {
	Kind    string `json:"kind"`
	Pattern string `json:"pattern"`
	// Requests counts the requests of the trail it covers; Example is
	// the first of them, "METHOD PATH".
	Requests int    `json:"requests"`
	Example  string `json:"example"`
	// Danger, when not "", says why the row is written commented out:
	// allowing it is root on the host, lets a tenant touch others'
	// objects, or cannot be written as a row.
	Danger string `json:"danger,omitempty"`
}

// Trail learns the rows of the audit files at paths (oldest first, "-"
// stdin, gzip read transparently).
func Trail(paths []string, opt Options) (*Suggestion, error) {
	l := newLearner(opt)
	err := audit.ReadTrail(paths, audit.TrailOptions{Since: opt.From, Until: opt.To, Bad: l.bad}, func(e *audit.Entry) error {
		l.record(e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l.finish(), nil
}

// learner is one read of a trail: what each principal did, by fact.
type learner struct {
	opt      Options
	sug      *Suggestion
	actions  map[string]authz.ActionTraits
	byName   map[string]*learned
	order    []*learned
	seq      int32
	creators map[string]*learned // container ID → its creator's principal
	roles    map[string]bool     // the current policy's roles the principals are
}

// learned is what one principal did.
type learned struct {
	subject string
	// facts are the requests of each fact, in the order seen.
	facts map[policy.Fact]*uses
	owner bool
	// tenantSubjects are the subjects of a request of it that had an
	// owner fact: the caller the recording policy made a tenant.
	tenantSubjects []string
	cases          caseCandidates
}

// uses are the requests (by sequence number) that had one fact.
type uses struct {
	seqs    []int32
	example string
}

func newLearner(opt Options) *learner {
	return &learner{
		opt:      opt,
		sug:      &Suggestion{Skipped: map[string]int{}},
		actions:  authz.Actions(),
		byName:   map[string]*learned{},
		creators: map[string]*learned{},
		roles:    map[string]bool{},
	}
}

func (l *learner) bad(b audit.BadLine) error {
	l.sug.BadLines = append(l.sug.BadLines, b)
	if l.opt.SkipBad {
		return nil
	}
	return b
}

// succeeded says dockerd did what the request asked: forwarded (in
// enforce or audit mode) and answered below 400.
func succeeded(e *audit.Entry) bool {
	return e.Decision == audit.DecisionAllow && e.Status >= 100 && e.Status < 400
}

func (l *learner) record(e *audit.Entry) {
	subjects := callerSubjects(e.Caller)
	if l.opt.Subject != "" && !slices.Contains(subjects, l.opt.Subject) {
		return
	}
	l.sug.Requests++
	l.seq++
	skip := func(why string) { l.sug.Skipped[why]++ }
	switch {
	case e.Action == authz.ActionUnknown || e.Action == "":
		skip(WhyUnknownRoute)
		return
	case e.Caller == nil:
		skip(WhyNoCaller)
		return
	}
	name := l.principal(e.Caller, subjects)
	if name == "" {
		skip(WhyUnnamedContainer)
		return
	}
	p := l.learnedOf(name)
	if !succeeded(e) {
		p.cases.wasRefused(e, subjects, l.actions)
		skip(WhyNotSucceeded)
		return
	}
	l.sug.Learned++
	p.cases.allowed(e, subjects, l.actions)
	example := e.Method + " " + e.Path
	learners := []*learned{p}
	if c := e.Caller; c.Container != "" && c.Cert == "" {
		// A container created through dockgate never has more rights
		// than its creator: what it does, its creator must be allowed.
		if cr := l.creators[c.Container]; cr != nil && cr != p {
			learners = append(learners, cr)
		}
	}
	for i, who := range learners {
		if i > 0 {
			example += " by " + name + ", which it created"
		}
		for _, f := range e.Facts {
			who.use(policy.Fact{Kind: f.Kind, Value: f.Value}, l.seq, example)
			if f.Kind == policy.OwnerKind && who == p && !p.owner {
				p.owner, p.tenantSubjects = true, slices.Clone(subjects)
				for i := range p.tenantSubjects {
					p.tenantSubjects[i] = strings.Clone(p.tenantSubjects[i])
				}
			}
		}
	}
	if e.Action == "container.create" && e.ObjectID != "" {
		l.creators[strings.Clone(e.ObjectID)] = p
	}
}

func (l *learner) learnedOf(name string) *learned {
	if p := l.byName[name]; p != nil {
		return p
	}
	p := &learned{subject: name, facts: map[policy.Fact]*uses{}}
	l.byName[name] = p
	l.order = append(l.order, p)
	return p
}

func (p *learned) use(f policy.Fact, seq int32, example string) {
	u := p.facts[f]
	if u == nil {
		// What is kept outlives the record (audit.ReadTrail).
		f = policy.Fact{Kind: strings.Clone(f.Kind), Value: strings.Clone(f.Value)}
		u = &uses{example: strings.Clone(example)}
		p.facts[f] = u
	}
	if n := len(u.seqs); n == 0 || u.seqs[n-1] != seq {
		u.seqs = append(u.seqs, seq)
	}
}

// callerSubjects are the subjects the proxy judged a recorded caller by,
// as far as the record says: a host caller's identities, a TLS caller's
// certificate, a caller in a container's recorded subjects.
func callerSubjects(c *audit.Caller) []string {
	switch {
	case c == nil:
		return nil
	case c.Cert != "":
		s := append([]string{"cert:" + c.Cert}, c.CertSANs...)
		if c.Unit != "" {
			s = append(s, "unit:"+c.Unit)
		}
		return append(s, "*")
	case c.Container != "":
		if slices.Contains(c.Subjects, "*") {
			return c.Subjects
		}
		return append(slices.Clone(c.Subjects), "*")
	}
	s := []string{"uid:" + strconv.FormatUint(uint64(c.UID), 10)}
	if c.User != "" {
		s = append(s, "user:"+c.User)
	}
	s = append(s, "gid:"+strconv.FormatUint(uint64(c.GID), 10))
	for _, g := range c.Groups {
		s = append(s, "group:"+g)
	}
	if c.Unit != "" {
		s = append(s, "unit:"+c.Unit)
	}
	return append(s, "*")
}

// principalOrder is the order in which a caller's own subjects are
// preferred to name its rows: the most stable name of who it is. A uid
// comes last: the same uid may be a different user on another host.
var principalOrder = []string{"cert:", "container:", "user:", "unit:", "uid:"}

// principal names the subject a caller's rows are written for: a role of
// the current policy that its subjects have, else its own most stable
// subject; "" when the record does not say who it is.
func (l *learner) principal(c *audit.Caller, subjects []string) string {
	if c.Container != "" && c.Cert == "" {
		if len(c.Subjects) == 0 || c.ActsFor == "" && c.ContainerName == "" {
			return ""
		}
		if c.ActsFor == "" {
			// Not a tenant's container: it is judged as itself.
			subjects = []string{"container:" + c.ContainerName}
		}
	}
	if role := l.roleOf(subjects); role != "" {
		return role
	}
	for _, pre := range principalOrder {
		for _, s := range subjects {
			// A name a row cannot hold (a user name with a comma) gives
			// way to the next.
			if strings.HasPrefix(s, pre) && literal([]string{s}) {
				return strings.Clone(s)
			}
		}
	}
	return ""
}

// roleOf is the first role (in the order the current policy's g rows name
// them) that a member with these subjects has directly; every caller has
// "*", which names no role here (a row for it would be everyone's).
func (l *learner) roleOf(subjects []string) string {
	if l.opt.Current == nil {
		return ""
	}
	for _, ln := range l.opt.Current.Links {
		if ln.Member != "*" && slices.Contains(subjects, ln.Member) {
			l.roles[ln.Role] = true
			return strings.Clone(ln.Role)
		}
	}
	return ""
}

// roleLinks are the current policy's g rows whose role rows are written
// for: what makes callers members of it, in the current policy's order.
func (l *learner) roleLinks() []*policy.RoleLink {
	if l.opt.Current == nil {
		return nil
	}
	var out []*policy.RoleLink
	for _, ln := range l.opt.Current.Links {
		if l.roles[ln.Role] && ln.Member != "*" {
			out = append(out, ln)
		}
	}
	return out
}
