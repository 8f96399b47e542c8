// Package tenancy cleans up after tenants: it removes the containers,
// networks and volumes an owner left behind, or those whose time to live
// ran out, judging every label itself whatever dockerd's filters did.
package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/dockgate/dockgate/authz"
)

// ownerPrefixes are the subject prefixes an owner can have: the values a
// `tenant` policy row accepts (authz.tenantPrefixes).
var ownerPrefixes = []string{"uid:", "user:", "unit:", "container:", "cert:"}

// Options say what a gc run removes.
type Options struct {
	Owner     string        // what this subject owns, or
	Expired   bool          // what expired (exactly one of the two)
	OlderThan time.Duration // and only what was created before Now-OlderThan; 0: any age
	DryRun    bool
	Now       time.Time // the clock expiry and age are judged by; time.Now when zero
}

// Object is one container, network or volume dockerd listed.
type Object struct {
	Kind    string // "container", "network" or "volume"
	ID      string // the full ID; a volume's name, volumes have no other
	Name    string
	Labels  map[string]string
	Created time.Time // zero when dockerd does not say
}

// Owner is the subject the object is labelled with.
func (o Object) Owner() string { return o.Labels[authz.OwnerLabel] }

// Expires is the object's expiry label, "" for none.
func (o Object) Expires() string { return o.Labels[authz.ExpiresLabel] }

// Outcome is what became of one object.
type Outcome int

const (
	Removed Outcome = iota
	WouldRemove
	Failed  // selected, but dockerd refused to remove it
	Skipped // carries a label gc cannot judge, or was gone already
)

// Result is one object and what became of it; err says why for failed
// and skipped ones.
type Result struct {
	Object
	Outcome Outcome
	Err     error
}

// Report is what a gc run did: one result per object it selected or
// skipped, in removal order, and the lists that failed.
type Report struct {
	Results []Result
	Errs    []error
}

func (r *Report) Failed() bool {
	if len(r.Errs) > 0 {
		return true
	}
	for _, res := range r.Results {
		if res.Outcome == Failed {
			return true
		}
	}
	return false
}

func (r *Report) Count(o Outcome) int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome == o {
			n++
		}
	}
	return n
}

// Line is the result as "dockgate gc" prints it.
func (r Result) Line() string {
	var b strings.Builder
	switch r.Outcome {
	case Removed:
		b.WriteString("removed ")
	case WouldRemove:
		b.WriteString("would remove ")
	case Failed:
		b.WriteString("failed to remove ")
	case Skipped:
		b.WriteString("skipped ")
	}
	b.WriteString(r.Kind)
	if r.Kind != "volume" {
		fmt.Fprintf(&b, " %.12s", r.ID)
	}
	fmt.Fprintf(&b, " %s owner=%s", r.Name, r.Owner())
	if e := r.Expires(); e != "" {
		fmt.Fprintf(&b, " expires=%s", e)
	}
	if r.Err != nil {
		fmt.Fprintf(&b, ": %v", r.Err)
	}
	return b.String()
}

// Summary is the report's last line.
func (r *Report) Summary(dryRun bool) string {
	n := map[string]int{}
	outcome := Removed
	verb := "removed"
	if dryRun {
		outcome, verb = WouldRemove, "would remove"
	}
	for _, res := range r.Results {
		if res.Outcome == outcome {
			n[res.Kind]++
		}
	}
	return fmt.Sprintf("gc: %s %d containers, %d networks, %d volumes; %d failed, %d skipped",
		verb, n["container"], n["network"], n["volume"], r.Count(Failed)+len(r.Errs), r.Count(Skipped))
}

// Docker is what gc asks dockerd (*dockerd.Client); tests give a fake.
type Docker interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerRemove(ctx context.Context, id string, options container.RemoveOptions) error
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkRemove(ctx context.Context, id string) error
	VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error)
	VolumeInspect(ctx context.Context, name string) (volume.Volume, error)
	VolumeRemove(ctx context.Context, name string, force bool) error
}

// CheckOwner accepts the subjects dockgate names owners by.
func CheckOwner(s string) error {
	for _, p := range ownerPrefixes {
		if strings.HasPrefix(s, p) && len(s) > len(p) {
			return nil
		}
	}
	return fmt.Errorf("%q: want a subject %sNAME", s, strings.Join(ownerPrefixes, "NAME, "))
}

// filtersFor are the label filters that make dockerd list only candidates.
// They narrow the lists; selects still judges every label itself, since
// a filter dockerd ignored (an older daemon, a proxy in between) must not
// widen what is removed.
func filtersFor(o Options) filters.Args {
	if o.Owner != "" {
		return filters.NewArgs(filters.Arg("label", authz.OwnerLabel+"="+o.Owner))
	}
	// Both keys: dockerd ANDs label filters.
	return filters.NewArgs(filters.Arg("label", authz.OwnerLabel), filters.Arg("label", authz.ExpiresLabel))
}

// selects says whether o removes obj. A non-nil error means obj looks
// like a candidate but cannot be judged (an unparseable expiry, an unknown
// age): it is reported and left alone.
func selects(obj Object, o Options) (bool, error) {
	owner, owned := obj.Labels[authz.OwnerLabel]
	if !owned || owner == "" {
		return false, nil
	}
	switch {
	case o.Owner != "":
		if owner != o.Owner {
			return false, nil
		}
	case o.Expired:
		v, ok := obj.Labels[authz.ExpiresLabel]
		if !ok {
			return false, nil
		}
		exp, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return false, fmt.Errorf("the %s label %q is not an RFC 3339 time", authz.ExpiresLabel, v)
		}
		if !exp.Before(o.Now) {
			return false, nil
		}
	default:
		return false, nil
	}
	if o.OlderThan > 0 {
		if obj.Created.IsZero() {
			return false, errors.New("dockerd does not say when it was created")
		}
		if !obj.Created.Before(o.Now.Add(-o.OlderThan)) {
			return false, nil
		}
	}
	return true, nil
}

// Run selects what o says and removes it (lists it, with o.DryRun):
// containers, then networks, then volumes. It goes on after a failure, so
// that one object in use does not keep the rest.
func Run(ctx context.Context, d Docker, o Options) *Report {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	r := &Report{}
	f := filtersFor(o)
	for _, kind := range []struct {
		name   string
		list   func() ([]Object, error)
		remove func(Object) error
	}{
		{"containers", func() ([]Object, error) { return listContainers(ctx, d, f) }, func(obj Object) error {
			return d.ContainerRemove(ctx, obj.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}},
		{"networks", func() ([]Object, error) { return listNetworks(ctx, d, f) }, func(obj Object) error {
			return d.NetworkRemove(ctx, obj.ID)
		}},
		{"volumes", func() ([]Object, error) { return listVolumes(ctx, d, f) }, func(obj Object) error {
			return removeVolume(ctx, d, obj, o)
		}},
	} {
		objs, err := kind.list()
		if err != nil {
			r.Errs = append(r.Errs, fmt.Errorf("list %s: %w", kind.name, err))
			continue
		}
		for _, obj := range objs {
			ok, why := selects(obj, o)
			switch {
			case why != nil:
				r.Results = append(r.Results, Result{Object: obj, Outcome: Skipped, Err: why})
				continue
			case !ok:
				continue
			case o.DryRun:
				r.Results = append(r.Results, Result{Object: obj, Outcome: WouldRemove})
				continue
			}
			res := Result{Object: obj, Outcome: Removed}
			if err := kind.remove(obj); err != nil {
				res.Outcome, res.Err = Failed, err
				switch {
				case cerrdefs.IsNotFound(err):
					// Removed by someone else (or --rm) since the list.
					res.Outcome, res.Err = Skipped, errors.New("already gone")
				case errors.Is(err, errChanged):
					res.Outcome = Skipped
				}
			}
			r.Results = append(r.Results, res)
		}
		if ctx.Err() != nil {
			r.Errs = append(r.Errs, ctx.Err())
			break
		}
	}
	return r
}

func listContainers(ctx context.Context, d Docker, f filters.Args) ([]Object, error) {
	cs, err := d.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	out := make([]Object, 0, len(cs))
	for _, c := range cs {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		var created time.Time
		if c.Created > 0 {
			created = time.Unix(c.Created, 0)
		}
		out = append(out, Object{Kind: "container", ID: c.ID, Name: name, Labels: c.Labels, Created: created})
	}
	return out, nil
}

func listNetworks(ctx context.Context, d Docker, f filters.Args) ([]Object, error) {
	ns, err := d.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	out := make([]Object, 0, len(ns))
	for _, n := range ns {
		out = append(out, Object{Kind: "network", ID: n.ID, Name: n.Name, Labels: n.Labels, Created: n.Created})
	}
	return out, nil
}

func listVolumes(ctx context.Context, d Docker, f filters.Args) ([]Object, error) {
	vs, err := d.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	out := make([]Object, 0, len(vs.Volumes))
	for _, v := range vs.Volumes {
		if v == nil {
			continue
		}
		out = append(out, volumeObject(*v))
	}
	return out, nil
}

func volumeObject(v volume.Volume) Object {
	// dockerd gives CreatedAt in RFC 3339; a driver may leave it out.
	created, _ := time.Parse(time.RFC3339, v.CreatedAt)
	return Object{Kind: "volume", ID: v.Name, Name: v.Name, Labels: v.Labels, Created: created}
}

var errChanged = errors.New("changed since it was listed; left alone")

// removeVolume removes a volume by its name, which, unlike a container's
// or network's ID, another tenant can take once the volume is gone: the
// volume is looked at again just before, and left alone unless it is still
// the one listed (same creation time) and still selected.
func removeVolume(ctx context.Context, d Docker, listed Object, o Options) error {
	v, err := d.VolumeInspect(ctx, listed.ID)
	if err != nil {
		return err
	}
	now := volumeObject(v)
	if ok, _ := selects(now, o); !ok || now.Created != listed.Created {
		return errChanged
	}
	// Not forced: a volume still in use stays, and says so.
	return d.VolumeRemove(ctx, listed.ID, false)
}
