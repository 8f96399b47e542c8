package authz

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/distribution/reference"

	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
)

// ContainerCaller is how a caller in a container is judged
// (docs/containers.md): as its container's subjects, or, for a container a
// tenant created, as that tenant; never as the host identity of its uid
// unless a host-identity row grants it.
type ContainerCaller struct {
	// ID is the container's full ID, from the caller's cgroup.
	ID string
	// Known says dockerd has that container; a caller in another
	// daemon's container (or one removed since) is judged as * alone.
	Known bool
	// Name is the container's current name.
	Name string
	// Subjects are the subjects the caller is judged by.
	Subjects []string
	// Creators are the subject sets of its recorded creators: every
	// fact must also be allowed to each of them.
	Creators [][]string
	// Tenant is the owner the container was created for, "" when no
	// tenant created it.
	Tenant string
	// Granted are the host-identity rows that gave it host subjects.
	Granted []*policy.Rule
}

// String names the caller in refusals and the audit record.
func (c *ContainerCaller) String() string {
	switch {
	case !c.Known:
		return "container " + shortID(c.ID) + " (not a container of this dockerd)"
	case c.Tenant != "":
		return "container:" + c.Name + " (for " + c.Tenant + ")"
	default:
		return "container:" + c.Name
	}
}

// JudgeContainer works out how policy p judges a caller running in the
// container dockerd describes as c (found false: dockerd has no container
// of that ID).
func JudgeContainer(p *policy.Policy, id string, c dockerd.CallerContainer, found bool) *ContainerCaller {
	cc := &ContainerCaller{ID: id, Known: found, Name: c.Name}
	if !found {
		cc.Subjects = []string{"*"}
		return cc
	}
	r := dockerd.ReadRecords(c.Labels, c.ImageLabels, c.ImageKnown)
	if r.Unknown || r.Unvouched {
		// dockgate's labels are there but cannot be vouched for: nothing
		// about this container can be trusted.
		cc.Subjects = []string{"*"}
		return cc
	}
	rec := r.Creator
	if rec != nil && rec.Owner != "" {
		// A tenant's container acts for the tenant: whatever name, image
		// or labels the tenant gave it, they give it nothing.
		cc.Tenant = rec.Owner
		cc.Subjects, cc.Creators = withStar(rec.Creators[0]), rec.Creators[1:]
		return cc
	}
	subjects := containerSubjects(c)
	if p != nil {
		var granted []string
		granted, cc.Granted = p.HostIdentities(subjects)
		subjects = append(subjects, granted...)
	}
	cc.Subjects = append(subjects, "*")
	if rec != nil {
		cc.Creators = rec.Creators
	}
	return cc
}

// containerSubjects are the subjects of a container no tenant created,
// "*" aside: its name, its image's repository, and the labels its
// creator set (not those it only took from its image, whose author is
// not the operator; none when the image is gone and cannot tell).
func containerSubjects(c dockerd.CallerContainer) []string {
	var s []string
	if c.Name != "" {
		s = append(s, "container:"+c.Name)
	}
	if repo := imageRepository(c.Image); repo != "" {
		s = append(s, "image:"+repo)
	}
	if c.ImageKnown {
		for _, k := range sortedKeys(c.Labels) {
			v := c.Labels[k]
			if strings.HasPrefix(k, reservedLabelPrefix) || hasControlChar(k+v) {
				continue
			}
			if iv, ok := c.ImageLabels[k]; ok && iv == v {
				continue
			}
			s = append(s, "label:"+k+"="+v)
		}
	}
	return s
}

// anyID is what dockerd accepts as an image ID where a name could stand:
// a full or short hex ID, with or without its algorithm.
var anyID = regexp.MustCompile(`^(sha256:)?[0-9a-f]{12,64}$`)

// imageRepository is the normalized repository (no tag or digest) of the
// image name a container was created from, "" when it was created by ID.
func imageRepository(image string) string {
	if image == "" || anyID.MatchString(image) {
		return ""
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return ""
	}
	return named.Name()
}

// withStar returns s with "*" last, as every caller has it.
func withStar(s []string) []string {
	if slices.Contains(s, "*") {
		return s
	}
	return append(slices.Clone(s), "*")
}

func hasControlChar(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// CallerContainers is what the decider asks about a caller's container;
// *dockerd.Client implements it.
type CallerContainers interface {
	CallerContainer(ctx context.Context, id string) (dockerd.CallerContainer, bool, error)
}

// judgeCaller puts how a caller in a container is judged into req
// (Subjects, Caller, Creator) before anything is decided; an error is
// the refusal to answer when dockerd cannot say who the caller is.
func (d *PolicyDecider) judgeCaller(ctx context.Context, p *policy.Policy, req *Request) (*ContainerCaller, *Decision) {
	if req.ContainerID == "" {
		// A host caller's creator record is its subjects (Creators),
		// made only for the creates that record it.
		req.Creator = nil
		return nil, nil
	}
	if d.Containers == nil {
		return nil, &Decision{Status: http.StatusInternalServerError, Reason: "cannot judge a caller in container " + shortID(req.ContainerID) + ": dockgate has no dockerd to ask who it is"}
	}
	c, found, err := d.Containers.CallerContainer(ctx, req.ContainerID)
	if err != nil {
		return nil, &Decision{Status: http.StatusBadGateway, Reason: fmt.Sprintf("cannot ask dockerd about the caller's container %s: %v", shortID(req.ContainerID), err)}
	}
	cc := JudgeContainer(p, req.ContainerID, c, found)
	req.Subjects, req.Caller = cc.Subjects, cc.String()
	if req.Cred != nil {
		// What it can change on the host is what its container mounts
		// writable; anything, for all dockgate knows, when dockerd does
		// not know the container.
		cred := *req.Cred
		cred.Contained, cred.Writable = true, c.Writable
		if !found {
			cred.Writable = []string{"/"}
		}
		req.Cred = &cred
	}
	req.Creator = append([][]string{cc.Subjects}, cc.Creators...)
	return cc, nil
}

// callerRules are the rules of a caller and of each of its recorded
// creators (a container's): a fact is allowed when the caller's rules allow
// it and every creator's do too, so that a container never does more than
// whoever made it.
type callerRules struct {
	own      policy.CallerRules
	creators []policy.CallerRules
	names    []string
}

// rulesFor returns the rules req is judged by. It is a value, so that a
// request judged by its own rules alone allocates nothing for them.
func rulesFor(p *policy.Policy, req *Request) callerRules {
	r := callerRules{own: p.RulesFor(req.Subjects)}
	if req.ContainerID == "" {
		return r
	}
	for _, set := range req.Creator[1:] {
		r.creators = append(r.creators, p.RulesFor(set))
		r.names = append(r.names, creatorName(set))
	}
	return r
}

// Result decides f for the caller and its creators; a creator's refusal
// says whose it is.
func (r *callerRules) Result(f policy.Fact) (policy.FactResult, bool) {
	res, ok := r.own.Result(f)
	if !ok {
		return res, false
	}
	for i := range r.creators {
		if cr, ok := r.creators[i].Result(f); !ok {
			cr.Rule = "its creator " + r.names[i] + " may not (" + cr.Rule + ")"
			return cr, false
		}
	}
	return res, true
}

// creatorName names a creator by its most specific subject.
func creatorName(set []string) string {
	for _, s := range set {
		if s != "*" {
			return s
		}
	}
	return "*"
}

// Creators is what a create by this request records as its creator
// (CreatorLabel): the subjects it is judged by, then the caller's own
// recorded creators.
func (r *Request) Creators() [][]string {
	if r.Creator != nil {
		return r.Creator
	}
	return [][]string{r.Subjects}
}
