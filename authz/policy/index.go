package policy

import (
	"fmt"
	"math"
	"strings"
)

// Verdict is the policy's answer on one fact.
type Verdict struct {
	Allow bool
	// Rule is the deciding row: the first deny row that matched, else the
	// first allow row; nil when no row matched (refused: no rule allows
	// it) or when a custom model allowed without naming a row.
	Rule *Rule
}

// NoRuleAllows is the rule text of a fact that no row allows.
const NoRuleAllows = "no rule allows it"

// RuleText names the deciding rule, or says that none allows the fact.
func (v Verdict) RuleText() string {
	switch {
	case v.Rule != nil:
		return v.Rule.text
	case v.Allow:
		return "allowed by " + modelFile
	}
	return NoRuleAllows
}

// DecideFact decides one fact for a caller with the given subjects (BRIEF
// §3: all apply at once): allowed when an allow row of any subject, or of
// any role a subject has, matches and no deny row of any of them does.
func (p *Policy) DecideFact(subjects []string, f Fact) Verdict {
	c := p.RulesFor(subjects)
	return c.Decide(f)
}

// CallerRules are one caller's view of a policy: the rows of its subjects
// and of every role they have, resolved once per request and used for each
// of its facts. A caller with few subjects is resolved without allocating.
type CallerRules struct {
	p        *Policy
	subjects []string
	set      subjectSet
}

// RulesFor resolves the rules of a caller with these subjects.
func (p *Policy) RulesFor(subjects []string) CallerRules {
	c := CallerRules{p: p, subjects: subjects}
	if p.index != nil {
		p.index.resolve(subjects, &c.set)
	}
	return c
}

// Decide decides one fact for the caller, as DecideFact does.
func (c *CallerRules) Decide(f Fact) Verdict {
	if c.p.index == nil {
		return c.p.EnforceFact(c.subjects, f)
	}
	return c.p.decideIndexed(&c.set, f)
}

// Result decides f and reports it as a request's record names it, and
// whether it is allowed.
func (c *CallerRules) Result(f Fact) (FactResult, bool) {
	v := c.Decide(f)
	return FactResult{Kind: f.Kind, Value: f.Value, Decision: decisionWord(v.Allow), Rule: v.RuleText()}, v.Allow
}

func decisionWord(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

// EnforceFact decides f by asking casbin, one subject at a time: the slow
// path for custom models and the reference the index is tested (and
// measured) against. A subject's refusal counts as a deny when casbin
// names a deny row for it; a refusal without a row is only the absence of
// an allow, which another subject's allow makes up for. Among several matching rows the first in policy
// order is named, as the default model's effect does for one subject.
func (p *Policy) EnforceFact(subjects []string, f Fact) Verdict {
	deny, allow := math.MaxInt, math.MaxInt
	allowed := false
	for _, s := range subjects {
		ok, explain, err := p.enforcer.EnforceEx(s, f.Kind, f.Value)
		if err != nil {
			// The model was tried at load; an error now is still a refusal.
			return Verdict{}
		}
		i, named := p.ruleByKey[ruleKey(explain...)]
		switch {
		case ok:
			allowed = true
			if named && i < allow {
				allow = i
			}
		case named && p.Rules[i].deny && i < deny:
			deny = i
		}
	}
	switch {
	case deny != math.MaxInt:
		return Verdict{Rule: p.Rules[deny]}
	case !allowed:
		return Verdict{}
	case allow != math.MaxInt:
		return Verdict{Allow: true, Rule: p.Rules[allow]}
	}
	return Verdict{Allow: true}
}

// ruleIndex is the default model compiled: for every subject, its rows
// and its roles' rows by fact kind, literal values in a map. A decision
// looks at the caller's rows of the fact's kind only.
type ruleIndex struct {
	// closure maps a subject or role to the rule sets of itself and of
	// every role it has, directly or through other roles, as casbin's role
	// manager resolves them. Names without rows (own or inherited) are
	// absent.
	closure map[string][]*subjectRules
}

// subjectRules are the rows of one subject (or role).
type subjectRules struct {
	name string
	// byKind holds, for each known fact kind (by its number in
	// kindNumbers), the rows whose KIND pattern matches it.
	byKind []*valueRules
	// otherKinds are the rows whose KIND is a pattern, for facts of a kind
	// that FactKinds does not list.
	otherKinds []int32
}

// kindNumbers numbers the fact kinds, so that a decision looks its fact's
// kind up once and each of the caller's rule sets by number.
var kindNumbers = func() map[string]int {
	n := make(map[string]int, len(factKinds))
	for _, k := range factKinds {
		if _, dup := n[k]; !dup {
			n[k] = len(n)
		}
	}
	return n
}()

// valueRules are rows of one subject and kind, in policy order.
type valueRules struct {
	exact map[string][]int32 // rows whose PATTERN is a literal, by value
	wild  []int32            // the other rows
}

func buildIndex(p *Policy) *ruleIndex {
	own := make(map[string]*subjectRules)
	for i, r := range p.Rules {
		sr := own[r.Subject]
		if sr == nil {
			sr = &subjectRules{name: r.Subject, byKind: make([]*valueRules, len(kindNumbers))}
			own[r.Subject] = sr
		}
		for k, ki := range kindNumbers {
			if !r.kind.Match(k) {
				continue
			}
			vr := sr.byKind[ki]
			if vr == nil {
				vr = &valueRules{}
				sr.byKind[ki] = vr
			}
			if r.value.IsLiteral() {
				if vr.exact == nil {
					vr.exact = make(map[string][]int32)
				}
				vr.exact[r.Pattern] = append(vr.exact[r.Pattern], int32(i))
			} else {
				vr.wild = append(vr.wild, int32(i))
			}
		}
		if !r.kind.IsLiteral() {
			sr.otherKinds = append(sr.otherKinds, int32(i))
		}
	}

	ix := &ruleIndex{closure: make(map[string][]*subjectRules)}
	names := make(map[string]bool)
	for n := range own {
		names[n] = true
	}
	for _, ln := range p.Links {
		names[ln.Member] = true
	}
	for n := range names {
		var set []*subjectRules
		if sr := own[n]; sr != nil {
			set = append(set, sr)
		}
		// The roles casbin's role manager resolved at load; a name no g
		// row makes a member has none.
		for _, r := range p.lookups.rolesOf[n] {
			if sr := own[r]; sr != nil {
				set = append(set, sr)
			}
		}
		if len(set) > 0 {
			ix.closure[n] = set
		}
	}
	return ix
}

// subjectSet is the deduplicated rule sets of one caller. It lives on the
// caller's stack; only callers with very many subjects with rows spill.
type subjectSet struct {
	n     int
	fixed [16]*subjectRules
	more  []*subjectRules
}

func (s *subjectSet) add(sr *subjectRules) {
	for i := 0; i < s.n; i++ {
		if s.fixed[i] == sr {
			return
		}
	}
	for _, m := range s.more {
		if m == sr {
			return
		}
	}
	if s.n < len(s.fixed) {
		s.fixed[s.n] = sr
		s.n++
		return
	}
	s.more = append(s.more, sr)
}

func (s *subjectSet) at(i int) *subjectRules {
	if i < s.n {
		return s.fixed[i]
	}
	return s.more[i-s.n]
}

func (s *subjectSet) len() int { return s.n + len(s.more) }

func (ix *ruleIndex) resolve(subjects []string, set *subjectSet) {
	for _, sub := range subjects {
		for _, sr := range ix.closure[sub] {
			set.add(sr)
		}
	}
}

// best tracks the first matching deny and allow rows of one fact.
type best struct{ deny, allow int32 }

const noRow = math.MaxInt32

func (p *Policy) decideIndexed(set *subjectSet, f Fact) Verdict {
	b := best{deny: noRow, allow: noRow}
	ki, known := kindNumbers[f.Kind]
	for i, n := 0, set.len(); i < n; i++ {
		sr := set.at(i)
		if !known {
			p.scan(&b, sr.otherKinds, f, true)
			continue
		}
		vr := sr.byKind[ki]
		if vr == nil {
			continue
		}
		if vr.exact != nil {
			p.scan(&b, vr.exact[f.Value], f, false)
		}
		p.scan(&b, vr.wild, f, false)
	}
	switch {
	case b.deny != noRow:
		return Verdict{Rule: p.Rules[b.deny]}
	case b.allow != noRow:
		return Verdict{Allow: true, Rule: p.Rules[b.allow]}
	}
	return Verdict{}
}

// scan looks through rows in policy order for ones that can still change
// the answer: an earlier deny, or, while no deny matched, an earlier allow.
func (p *Policy) scan(b *best, rows []int32, f Fact, checkKind bool) {
	for _, i := range rows {
		if i >= b.deny {
			return // rows are in order: after a deny, nothing later matters
		}
		r := p.Rules[i]
		if !r.deny && (b.deny != noRow || i >= b.allow) {
			continue
		}
		if checkKind && !r.kind.Match(f.Kind) {
			continue
		}
		if !r.value.Match(f.Value) {
			continue
		}
		if r.deny {
			b.deny = i
		} else {
			b.allow = i
		}
	}
}

// Describe summarizes the policy for logs and "dockgate check":
// "N rules, M roles, sha256:…".
func (p *Policy) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d rules, %d roles, %s", len(p.Rules), len(p.roles), p.Hash)
	if p.CustomModel {
		b.WriteString(" (custom model.conf)")
	}
	return b.String()
}
