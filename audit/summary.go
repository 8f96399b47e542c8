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
	byName  map[string]*CallerSummary
}

// Summarize streams the files at paths and sums up, per caller, the
// requests, refusals by rule, images run (the image facts of
// container.create), privileged attempts and busiest actions. Only records
// that end requests count (not "phase":"start" ones).
func Summarize(paths []string, f Filter) (*Summary, error) {
	s := &Summary{byName: map[string]*CallerSummary{}}
	f.Starts = false
	err := Query(paths, f, func(e *Entry, _ []byte) error {
		s.Add(e)
		return nil
	})
	return s, err
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
	if len(callers) == 0 {
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
