package authz

import "github.com/dockgate/dockgate/authz/policy"

// Refusals that teach the fix. BRIEF §5 fixes how a refusal starts,
// "<caller> may not <kind> <value>: <rule or 'no rule allows it'>", and
// scripts and tests match that prefix; what follows it says why where the
// rule does not (the note an extractor left: whose the container is, who
// could replace a path) and what to do (the policy's advice: the row that
// would allow the fact, or what to do instead, CallerRules.Advise).

// refusal is BRIEF §5's message without its "dockgate: " prefix, followed
// by the extractor's note on the fact and the policy's advice on it. m is
// the request's route, which says what its endpoint fact gives away.
func refusal(c *policy.CallerRules, m *Match, caller string, r policy.FactResult, note string) string {
	msg := caller + " may not " + r.Kind + " " + r.Value + ": " + r.Rule
	if note != "" {
		msg += " (" + note + ")"
	}
	rootWhy := ""
	if r.Kind == "endpoint" && r.Value == m.Action {
		rootWhy = m.givesHost
	}
	if fix := c.Advise(caller, policy.Fact{Kind: r.Kind, Value: r.Value}, rootWhy); fix != "" {
		msg += "; " + fix
	}
	return msg
}
