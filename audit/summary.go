package audit

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// CallerSummary is what one caller did.
type CallerSummary struct {
	Caller     string
	Requests   int
	Refused    int
	Errors     int
	Refusals   map[string]int // why, by rule (or the fact no rule allows)
	Images     map[string]*Count
	Privileged map[string]*Count // privileged attempts, by action
	Actions    map[string]int
}

// Count splits attempts into allowed and refused.
type Count struct{ Allowed, Refused int }

// Summary is Summarize's result, callers in order of first appearance.
type Summary struct {
	Callers []*CallerSummary
	Policy  PolicySummary
	byName  map[string]*CallerSummary
}

// PolicySummary counts the policy records: policies put in force, by
// trigger (startup, signal, watcher), and reloads that failed.
type PolicySummary struct {
	Applied map[string]int
	Failed  int
	// InForce is the hash of the last policy put in force.
	InForce string
}

// Summarize streams the files at paths and sums up, per caller, the
// requests, refusals by rule, images run (the image facts of
// container.create), privileged attempts and busiest actions, and counts
// the policy records. Only records that end requests count (not
// "phase":"start" ones). With f.Policy, only the policy records count.
func Summarize(paths []string, f Filter) (*Summary, error) {
	s := &Summary{byName: map[string]*CallerSummary{}, Policy: PolicySummary{Applied: map[string]int{}}}
	f.Starts = false
	m := newMatcher(f)
	m.policies = true
	err := query(paths, m, func(e *Entry, _ []byte) error {
		if e.Policy != nil {
			s.Policy.add(e.Policy)
			return nil
		}
		s.Add(e)
		return nil
	})
	return s, err
}

func (ps *PolicySummary) add(r *PolicyRecord) {
	if r.Result == PolicyFailed {
		ps.Failed++
		return
	}
	ps.Applied[r.Trigger]++
	ps.InForce = r.PolicyHash
}

func (ps *PolicySummary) empty() bool { return len(ps.Applied) == 0 && ps.Failed == 0 }

// write prints the policy line of a summary.
func (ps *PolicySummary) write(w io.Writer) {
	n := 0
	var by []string
	for _, k := range topKeys(ps.Applied, 0) {
		n += ps.Applied[k]
		by = append(by, fmt.Sprintf("%s %d", k, ps.Applied[k]))
	}
	fmt.Fprintf(w, "policy: %d put in force", n)
	if len(by) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(by, ", "))
	}
	fmt.Fprintf(w, ", %d reloads failed", ps.Failed)
	if ps.InForce != "" {
		fmt.Fprintf(w, "; last put in force: %s", ps.InForce)
	}
	fmt.Fprintln(w)
}

// Add counts one record.
func (s *Summary) Add(e *Entry) {
	name := CallerName(e.Caller)
	cs := s.byName[name]
	if cs == nil {
		cs = &CallerSummary{Caller: name, Refusals: map[string]int{}, Images: map[string]*Count{},
			Privileged: map[string]*Count{}, Actions: map[string]int{}}
		s.byName[name] = cs
		s.Callers = append(s.Callers, cs)
	}
	cs.Requests++
	cs.Actions[e.Action]++
	refused := e.Decision == DecisionDeny
	switch e.Decision {
	case DecisionDeny:
		cs.Refused++
		cs.Refusals[refusalRule(e)]++
	case DecisionError:
		cs.Errors++
	}
	count := func(m map[string]*Count, k string) {
		c := m[k]
		if c == nil {
			c = &Count{}
			m[k] = c
		}
		if refused {
			c.Refused++
		} else if e.Decision == DecisionAllow {
			c.Allowed++
		}
	}
	for _, fr := range e.Facts {
		switch {
		case isImageFact(fr.Kind) && e.Action == "container.create":
			count(cs.Images, fr.Value)
		case fr.Kind == "privileged":
			count(cs.Privileged, e.Action)
		}
	}
}

// refusalRule names why a request was refused: the rule that denied its
// first denied fact, or that no rule allows that fact, or the reason.
func refusalRule(e *Entry) string {
	for _, fr := range e.Facts {
		if fr.Decision == DecisionDeny {
			if fr.Rule != "" {
				return fr.Rule
			}
			return "no rule allows " + fr.Kind
		}
	}
	if e.Reason != "" {
		return e.Reason
	}
	return "(no reason recorded)"
}

// Write prints the summary, busiest callers first.
func (s *Summary) Write(w io.Writer, top int) {
	callers := slices.Clone(s.Callers)
	slices.SortStableFunc(callers, func(a, b *CallerSummary) int { return cmp.Compare(b.Requests, a.Requests) })
	if len(callers) == 0 && s.Policy.empty() {
		fmt.Fprintln(w, "no records")
	}
	for i, c := range callers {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s: %d requests, %d refused, %d errors\n", oneLine(c.Caller), c.Requests, c.Refused, c.Errors)
		if len(c.Refusals) > 0 {
			fmt.Fprintln(w, "  refusals by rule:")
			for _, k := range topKeys(c.Refusals, top) {
				fmt.Fprintf(w, "    %6d  %s\n", c.Refusals[k], oneLine(k))
			}
		}
		writeCounts(w, "  images run (container.create):", c.Images, top)
		writeCounts(w, "  privileged attempts:", c.Privileged, top)
		fmt.Fprintln(w, "  busiest actions:")
		for _, k := range topKeys(c.Actions, top) {
			fmt.Fprintf(w, "    %6d  %s\n", c.Actions[k], oneLine(k))
		}
	}
	if !s.Policy.empty() {
		if len(callers) > 0 {
			fmt.Fprintln(w)
		}
		s.Policy.write(w)
	}
}

func writeCounts(w io.Writer, title string, m map[string]*Count, top int) {
	if len(m) == 0 {
		return
	}
	fmt.Fprintln(w, title)
	totals := map[string]int{}
	for k, c := range m {
		totals[k] = c.Allowed + c.Refused
	}
	for _, k := range topKeys(totals, top) {
		c := m[k]
		var parts []string
		if c.Allowed > 0 {
			parts = append(parts, fmt.Sprintf("%d allowed", c.Allowed))
		}
		if c.Refused > 0 {
			parts = append(parts, fmt.Sprintf("%d refused", c.Refused))
		}
		fmt.Fprintf(w, "    %6d  %s (%s)\n", totals[k], oneLine(k), strings.Join(parts, ", "))
	}
}

// topKeys returns the n keys with the highest counts (all when n <= 0),
// ties by name.
func topKeys(m map[string]int, n int) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	if n > 0 && len(keys) > n {
		keys = keys[:n]
	}
	return keys
}
