package suggest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/dockgate/dockgate/authz/policy"
)

// The files WriteDir writes.
const (
	PolicyFile = "suggested.csv"
	TestFile   = "suggested_test.yaml"
)

// WritePolicy writes the suggested rows as a policy file: the role links,
// then each principal's rows, each under a comment saying how many
// requests of the trail it covers and the first of them. A row that is
// root on the host (or lets a tenant touch others' objects, or cannot be
// written literally) is written commented out, under a comment saying
// why: the operator uncomments it deliberately. from names the trail.
func (s *Suggestion) WritePolicy(w io.Writer, from string) error {
	bw := bufio.NewWriter(w)
	from = oneLine(from)
	fmt.Fprintf(bw, "# Suggested by dockgate policy suggest from %s:\n", from)
	fmt.Fprintf(bw, "# %d requests, %d of them forwarded and answered below 400 (the rows allow those).\n", s.Requests, s.Learned)
	fmt.Fprintln(bw, "# Review every row before enforcing it. A row commented out would be root on the host")
	fmt.Fprintln(bw, "# or let a tenant touch others' objects: uncomment it only for a caller trusted with that.")
	if len(s.Links) > 0 {
		fmt.Fprintln(bw, "\n# Role links of the policy the trail was recorded under.")
		for _, ln := range s.Links {
			fmt.Fprintf(bw, "# %s:%d\ng, %s, %s\n", ln.File, ln.Line, ln.Member, ln.Role)
		}
	}
	for _, p := range s.Principals {
		fmt.Fprintf(bw, "\n# %s\n", p.Subject)
		if p.Tenant != "" {
			fmt.Fprintf(bw, "# a tenant in the trail: its requests named objects it owned or not (owner facts)\np, %s, %s, %s, allow\n", p.Subject, policy.TenantKind, p.Tenant)
		}
		for _, r := range p.Rows {
			fmt.Fprintf(bw, "# %s, e.g. %s\n", requests(r.Requests), oneLine(r.Example))
			row := "p, " + p.Subject + ", " + r.Kind + ", " + r.Pattern + ", allow"
			if r.Danger != "" {
				fmt.Fprintf(bw, "# commented out: %s; uncomment it deliberately\n# %s\n", oneLine(r.Danger), oneLine(row))
				continue
			}
			fmt.Fprintln(bw, row)
		}
	}
	return bw.Flush()
}

// oneLine keeps what the trail says within its comment line: a line
// break in a recorded path must not start a row.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

func requests(n int) string {
	if n == 1 {
		return "1 request"
	}
	return strconv.Itoa(n) + " requests"
}

// Written is what WriteDir wrote.
type Written struct {
	Policy *policy.Policy
	// Tests is the test file, "" when the trail had no request a case
	// could be drawn from; Cases counts its cases.
	Tests string
	Cases int
}

// WriteDir writes the suggestion as a policy directory dir (created; it
// must not exist or be empty, so that no policy is overwritten): the
// policy file, loaded back as serve would load it, and a test file of
// cases from the trail in the format of `dockgate policy test`.
func (s *Suggestion) WriteDir(dir, from string) (*Written, error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s is not empty: suggest writes a new policy directory", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var b strings.Builder
	if err := s.WritePolicy(&b, from); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, PolicyFile), []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	p, err := policy.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("the suggested policy does not load: %w", err)
	}
	out := &Written{Policy: p}
	cases := append([]Case(nil), s.Cases...)
	for _, c := range s.refusals {
		if !p.DecideFact(append(c.As, "*"), policy.Fact{Kind: "endpoint", Value: strings.TrimPrefix(c.Refused, "endpoint ")}).Allow {
			cases = append(cases, c)
		}
	}
	if len(cases) == 0 {
		return out, nil
	}
	// A case's name is unique in its file; two trails' files may share a
	// base name and a line.
	seen := map[string]int{}
	for i := range cases {
		name := cases[i].Name
		if seen[name]++; seen[name] > 1 {
			cases[i].Name = name + " #" + strconv.Itoa(seen[name])
		}
	}
	y, err := yaml.Marshal(struct {
		Tests []Case `yaml:"tests"`
	}{cases})
	if err != nil {
		return nil, err
	}
	y = append([]byte("# Cases drawn from "+oneLine(from)+" by dockgate policy suggest: run them with\n# dockgate policy test "+oneLine(dir)+"\n"), y...)
	out.Tests, out.Cases = filepath.Join(dir, TestFile), len(cases)
	if err := os.WriteFile(out.Tests, y, 0o644); err != nil {
		return nil, err
	}
	return out, nil
}
