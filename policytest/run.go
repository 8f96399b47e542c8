package policytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
)

// Result is the outcome of one case.
type Result struct {
	Case *Case
	File string
	// Pass says the case holds; Why says what differs when it does not.
	Pass bool
	Why  []string
	// Decision is how the request was judged.
	Decision authz.Decision
}

// Run judges every case of the files with policy p, as `dockgate explain`
// judges a request (authz.JudgeOffline, with the extractor serve uses),
// and returns the results in order.
func Run(ctx context.Context, p *policy.Policy, files []*File) ([]Result, error) {
	return RunWith(ctx, authz.DefaultExtractor(), p, files)
}

// RunWith is Run reading facts with extract.
func RunWith(ctx context.Context, extract authz.Extractor, p *policy.Policy, files []*File) ([]Result, error) {
	var out []Result
	for _, f := range files {
		for _, c := range f.Cases {
			r, err := runCase(ctx, extract, p, c)
			if err != nil {
				return out, fmt.Errorf("%s:%d: %w", f.Path, c.Line, err)
			}
			r.File = f.Path
			out = append(out, r)
		}
	}
	return out, nil
}

func runCase(ctx context.Context, extract authz.Extractor, p *policy.Policy, c *Case) (Result, error) {
	subjects := slices.Clone(c.As)
	if !slices.Contains(subjects, "*") {
		subjects = append(subjects, "*")
	}

	d := authz.NewPolicyDecider(p)
	d.Extract = extract
	daemon, err := c.daemon()
	if err != nil {
		return Result{}, err
	}
	d.Inspector = daemon
	d.Signatures = &registryFixture{images: c.Registry, caseOf: c.Name}
	var req *authz.Request
	if c.Container != nil {
		// As serve hands the decider a caller in a container: * until
		// dockerd says who the container is.
		d.Containers = daemon
		req = &authz.Request{Method: c.Method, URL: c.url, Caller: "container " + c.Container.Name, Subjects: []string{"*"},
			ContainerID: callerID, Cred: &authz.Cred{Contained: true, Writable: []string{"/"}}}
	} else {
		req = &authz.Request{Method: c.Method, URL: c.url, Caller: c.As[0], Subjects: subjects, Cred: authz.CredOf(subjects)}
	}
	res, err := authz.JudgeOffline(ctx, d, req, c.body)
	if err != nil {
		return Result{}, err
	}
	dec := res.Decision
	r := Result{Case: c, Decision: dec}
	got := "deny"
	if dec.Allow {
		got = "allow"
	}
	if got != c.Expect {
		r.Why = append(r.Why, fmt.Sprintf("want %s, got %s: %s", c.Expect, got, dec.Reason))
	}
	if !dec.Allow && c.Refused != "" {
		first := firstRefused(dec)
		if first == nil {
			r.Why = append(r.Why, fmt.Sprintf("want %s refused, got a refusal of no fact (%d): %s", c.Refused, dec.Status, dec.Reason))
		} else {
			if got := first.Kind + " " + first.Value; got != strings.TrimSpace(c.Refused) {
				r.Why = append(r.Why, fmt.Sprintf("want %s refused, got %s refused", c.Refused, got))
			}
			if c.Rule != "" && !sameRule(first.Rule, c.Rule) {
				r.Why = append(r.Why, fmt.Sprintf("want rule %q, got %q", c.Rule, first.Rule))
			}
		}
	}
	for _, want := range c.Facts {
		if !hasFact(dec.Facts, want) {
			r.Why = append(r.Why, fmt.Sprintf("want fact %s, not among %s", want, factList(dec.Facts)))
		}
	}
	r.Pass = len(r.Why) == 0
	return r, nil
}

// firstRefused is the fact a refusal names: the first one refused.
func firstRefused(dec authz.Decision) *policy.FactResult {
	for i := range dec.Facts {
		if dec.Facts[i].Decision == "deny" {
			return &dec.Facts[i]
		}
	}
	return nil
}

// sameRule says whether a decision's rule is the one a case names: its
// whole text, or the row without the FILE:LINE: before it (lines move as
// a policy is edited).
func sameRule(got, want string) bool {
	if got == want {
		return true
	}
	_, row, ok := strings.Cut(got, ": ")
	return ok && row == want
}

func hasFact(fs []policy.FactResult, want string) bool {
	for _, f := range fs {
		if f.Kind+" "+f.Value == strings.TrimSpace(want) {
			return true
		}
	}
	return false
}

func factList(fs []policy.FactResult) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.Kind+" "+f.Value)
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// Print writes the results as `go test -v` does: a line per case (every
// case when verbose, else the failures), what differs under each failure,
// and a summary line. It returns the number of failures.
func Print(w io.Writer, results []Result, verbose bool) int {
	failed := 0
	for _, r := range results {
		if !r.Pass {
			failed++
		}
		if r.Pass && !verbose {
			continue
		}
		word := "PASS"
		if !r.Pass {
			word = "FAIL"
		}
		fmt.Fprintf(w, "--- %s: %s (%s:%d)\n", word, r.Case.Name, r.File, r.Case.Line)
		for _, why := range r.Why {
			fmt.Fprintf(w, "    %s\n", why)
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "FAIL: %d of %d cases failed\n", failed, len(results))
	} else {
		fmt.Fprintf(w, "PASS: %d cases\n", len(results))
	}
	return failed
}

// daemon is the dockerd the case declares: what it does not declare is
// an error that says so (the case fails with it, never passes on a
// guess), except an image, which is judged as absent from the daemon, as
// explain judges it.
func (c *Case) daemon() (*authz.OfflineDaemon, error) {
	d := &authz.OfflineDaemon{Undeclared: func(what string) string {
		return fmt.Sprintf("policy test does not ask dockerd: declare %s under objects: in case %q", what, c.Name)
	}}
	for _, o := range c.Objects {
		labels := map[string]string{}
		for k, v := range o.Labels {
			labels[k] = v
		}
		if o.Owner != "" {
			labels[authz.OwnerLabel] = o.Owner
		}
		d.Objects = append(d.Objects, authz.OfflineObject{Kind: o.Kind, Name: o.Name, ID: o.ID, Labels: labels, Binds: o.Binds, Volumes: o.Volumes, Devices: o.Devices})
	}
	for _, im := range c.Images {
		d.Images = append(d.Images, authz.OfflineImage{Ref: im.Ref, ID: im.ID, RepoDigests: im.RepoDigests, RepoTags: im.RepoTags})
	}
	if cc := c.Container; cc != nil {
		labels := map[string]string{}
		for k, v := range cc.Labels {
			labels[k] = v
		}
		if len(cc.CreatedBy) > 0 {
			// The records dockgate puts on a container it creates
			// (authz.CreatorLabel, authz.OwnerLabel).
			rec, err := json.Marshal(dockerd.CreatorRecord{ID: "0000000000000000", Owner: cc.Tenant, Creators: [][]string{withStar(cc.CreatedBy)}})
			if err != nil {
				return nil, err
			}
			labels[authz.CreatorLabel] = string(rec)
			if cc.Tenant != "" {
				labels[authz.OwnerLabel] = cc.Tenant
			}
		}
		d.Callers = map[string]dockerd.CallerContainer{callerID: {ID: callerID, Name: cc.Name, Image: cc.Image, Labels: labels, ImageLabels: map[string]string{}, ImageKnown: true}}
	}
	return d, nil
}

// callerID is the ID of the container a case's caller runs in.
const callerID = "ca11e4ca11e4ca11e4ca11e4ca11e4ca11e4ca11e4ca11e4ca11e4ca11e4ca11"

func withStar(s []string) []string {
	if slices.Contains(s, "*") {
		return s
	}
	return append(slices.Clone(s), "*")
}
