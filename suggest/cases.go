package suggest

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
)

// Case is a test case of suggested_test.yaml, in the format of `dockgate
// policy test` (policytest.Case): a request of the trail, its caller's
// subjects and what the suggested policy must decide.
type Case struct {
	Name    string   `yaml:"name" json:"name"`
	As      []string `yaml:"as" json:"as"`
	Method  string   `yaml:"method" json:"method"`
	Path    string   `yaml:"path" json:"path"`
	Expect  string   `yaml:"expect" json:"expect"`
	Refused string   `yaml:"refused,omitempty" json:"refused,omitempty"`
	Facts   []string `yaml:"facts,omitempty" json:"facts,omitempty"`
}

// casesPerCaller bounds the cases drawn for one principal: a few that
// show the rows work, not the trail again.
const casesPerCaller = 3

// caseCandidates are the requests of one principal that make test cases:
// requests whose endpoint fact is their only fact whatever their body, so
// that the case needs no body or dockerd state the trail does not hold.
type caseCandidates struct {
	allow []Case
	deny  []Case
}

func (c *caseCandidates) allowed(e *audit.Entry, subjects []string, actions map[string]authz.ActionTraits) {
	if len(c.allow) >= casesPerCaller || !actions[e.Action].EndpointOnly || c.has(e.Action) {
		return
	}
	c.allow = append(c.allow, Case{
		Name: strings.Clone(e.Action) + " as the trail shows (" + filepath.Base(e.File) + ":" + strconv.Itoa(e.Line) + ")",
		As:   caseSubjects(e.Caller, subjects), Method: strings.Clone(e.Method), Path: strings.Clone(e.Path),
		Expect: "allow", Facts: []string{"endpoint " + strings.Clone(e.Action)},
	})
}

// wasRefused keeps requests refused at their endpoint; the writer keeps
// those the suggested policy refuses too.
func (c *caseCandidates) wasRefused(e *audit.Entry, subjects []string, actions map[string]authz.ActionTraits) {
	if len(c.deny) >= casesPerCaller || e.Decision != audit.DecisionDeny || !actions[e.Action].EndpointOnly ||
		len(e.Facts) == 0 || e.Facts[0].Kind != "endpoint" || e.Facts[0].Decision != audit.DecisionDeny {
		return
	}
	for _, r := range c.deny {
		if r.Path == e.Path {
			return
		}
	}
	c.deny = append(c.deny, Case{
		Name: strings.Clone(e.Action) + " stays refused as the trail shows (" + filepath.Base(e.File) + ":" + strconv.Itoa(e.Line) + ")",
		As:   caseSubjects(e.Caller, subjects), Method: strings.Clone(e.Method), Path: strings.Clone(e.Path),
		Expect: "deny", Refused: "endpoint " + strings.Clone(e.Action),
	})
}

func (c *caseCandidates) has(action string) bool {
	for _, k := range c.allow {
		if k.Facts[0] == "endpoint "+action {
			return true
		}
	}
	return false
}

// caseSubjects are the subjects a case gives its caller (policy test adds
// *): a host caller's identities; a caller in a container no tenant
// created, its own subjects (the host identities the policy grants it
// are the policy's to add); a tenant's container, its tenant's.
func caseSubjects(c *audit.Caller, subjects []string) []string {
	var out []string
	own := c != nil && c.Container != "" && c.Cert == "" && c.ActsFor == ""
	for _, s := range subjects {
		if s == "*" || own && policy.IsHostIdentity(s) {
			continue
		}
		out = append(out, strings.Clone(s))
	}
	return slices.Clip(out)
}
