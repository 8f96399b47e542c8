package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/proxy"
)

const gcUsage = `usage: dockgate gc [--config FILE] [--upstream URL] (--owner SUBJECT | --expired) [--older-than DURATION] [--dry-run]

Removes what tenants left behind (issue 7): containers (forced, with their
anonymous volumes), then networks, then volumes, so that the containers no
longer hold the networks and volumes.

  --owner SUBJECT   everything labelled io.dockgate.owner=SUBJECT
                    (uid:, user:, unit:, container: or cert: subject)
  --expired         everything with an owner whose io.dockgate.expires
                    label is in the past (an unparseable one is reported
                    and left alone)
  --older-than D    only what was created longer ago than D (e.g. 2h)
  --dry-run         list what would be removed, remove nothing

One line per object, then a summary. Exit 0, 1 if anything could not be
listed or removed (a network another tenant's container still uses, say),
2 on a usage error.
`

// gcOwnerPrefixes are the subject prefixes an owner can have: the values a
// `tenant` policy row accepts (policy.tenantPrefixes).
var gcOwnerPrefixes = []string{"uid:", "user:", "unit:", "container:", "cert:"}

// gcOptions say what a gc run removes.
type gcOptions struct {
	owner     string        // what this subject owns, or
	expired   bool          // what expired (exactly one of the two)
	olderThan time.Duration // and only what was created before now-olderThan; 0: any age
	dryRun    bool
	now       time.Time // the clock expiry and age are judged by
}

// gcObject is one container, network or volume dockerd listed.
type gcObject struct {
	kind    string // "container", "network" or "volume"
	id      string // the full ID; a volume's name, volumes have no other
	name    string
	labels  map[string]string
	created time.Time // zero when dockerd does not say
}

func (o gcObject) owner() string   { return o.labels[authz.OwnerLabel] }
func (o gcObject) expires() string { return o.labels[authz.ExpiresLabel] }

// gcOutcome is what became of one object.
type gcOutcome int

const (
	gcRemoved gcOutcome = iota
	gcWouldRemove
	gcFailed  // selected, but dockerd refused to remove it
	gcSkipped // carries a label gc cannot judge, or was gone already
)

// gcResult is one object and what became of it; err says why for failed
// and skipped ones.
type gcResult struct {
	gcObject
	outcome gcOutcome
	err     error
}

// gcReport is what a gc run did: one result per object it selected or
// skipped, in removal order, and the lists that failed.
type gcReport struct {
	results []gcResult
	errs    []error
}

func (r *gcReport) failed() bool {
	if len(r.errs) > 0 {
		return true
	}
	for _, res := range r.results {
		if res.outcome == gcFailed {
			return true
		}
	}
	return false
}

func (r *gcReport) count(o gcOutcome) int {
	n := 0
	for _, res := range r.results {
		if res.outcome == o {
			n++
		}
	}
	return n
}

// line is the result as "dockgate gc" prints it.
func (r gcResult) line() string {
	var b strings.Builder
	switch r.outcome {
	case gcRemoved:
		b.WriteString("removed ")
	case gcWouldRemove:
		b.WriteString("would remove ")
	case gcFailed:
		b.WriteString("failed to remove ")
	case gcSkipped:
		b.WriteString("skipped ")
	}
	b.WriteString(r.kind)
	if r.kind != "volume" {
		fmt.Fprintf(&b, " %.12s", r.id)
	}
	fmt.Fprintf(&b, " %s owner=%s", r.name, r.owner())
	if e := r.expires(); e != "" {
		fmt.Fprintf(&b, " expires=%s", e)
	}
	if r.err != nil {
		fmt.Fprintf(&b, ": %v", r.err)
	}
	return b.String()
}

// summary is the report's last line.
func (r *gcReport) summary(dryRun bool) string {
	n := map[string]int{}
	outcome := gcRemoved
	verb := "removed"
	if dryRun {
		outcome, verb = gcWouldRemove, "would remove"
	}
	for _, res := range r.results {
		if res.outcome == outcome {
			n[res.kind]++
		}
	}
	return fmt.Sprintf("gc: %s %d containers, %d networks, %d volumes; %d failed, %d skipped",
		verb, n["container"], n["network"], n["volume"], r.count(gcFailed)+len(r.errs), r.count(gcSkipped))
}

// gcDocker is the part of the Docker client gc uses (*client.Client);
// tests give a fake.
type gcDocker interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerRemove(ctx context.Context, id string, options container.RemoveOptions) error
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkRemove(ctx context.Context, id string) error
	VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error)
	VolumeInspect(ctx context.Context, name string) (volume.Volume, error)
	VolumeRemove(ctx context.Context, name string, force bool) error
}

// newGCClient is a Docker client of the upstream dockerd.
func newGCClient(upstream string) (*client.Client, error) {
	up, err := proxy.ParseUpstream(upstream)
	if err != nil {
		return nil, err
	}
	c, err := client.NewClientWithOpts(client.WithHost(up.URL), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", up.URL, err)
	}
	return c, nil
}

// checkOwnerSubject accepts the subjects dockgate names owners by.
func checkOwnerSubject(s string) error {
	for _, p := range gcOwnerPrefixes {
		if strings.HasPrefix(s, p) && len(s) > len(p) {
			return nil
		}
	}
	return fmt.Errorf("--owner %q: want a subject %sNAME", s, strings.Join(gcOwnerPrefixes, "NAME, "))
}

// gcFilters are the label filters that make dockerd list only candidates.
// They narrow the lists; gcSelect still judges every label itself, since
// a filter dockerd ignored (an older daemon, a proxy in between) must not
// widen what is removed.
func gcFilters(o gcOptions) filters.Args {
	if o.owner != "" {
		return filters.NewArgs(filters.Arg("label", authz.OwnerLabel+"="+o.owner))
	}
	// Both keys: dockerd ANDs label filters.
	return filters.NewArgs(filters.Arg("label", authz.OwnerLabel), filters.Arg("label", authz.ExpiresLabel))
}

// gcSelect says whether o removes obj. A non-nil error means obj looks
// like a candidate but cannot be judged (an unparseable expiry, an unknown
// age): it is reported and left alone.
func gcSelect(obj gcObject, o gcOptions) (bool, error) {
	owner, owned := obj.labels[authz.OwnerLabel]
	if !owned || owner == "" {
		return false, nil
	}
	switch {
	case o.owner != "":
		if owner != o.owner {
			return false, nil
		}
	case o.expired:
		v, ok := obj.labels[authz.ExpiresLabel]
		if !ok {
			return false, nil
		}
		exp, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return false, fmt.Errorf("the %s label %q is not an RFC 3339 time", authz.ExpiresLabel, v)
		}
		if !exp.Before(o.now) {
			return false, nil
		}
	default:
		return false, nil
	}
	if o.olderThan > 0 {
		if obj.created.IsZero() {
			return false, errors.New("dockerd does not say when it was created")
		}
		if !obj.created.Before(o.now.Add(-o.olderThan)) {
			return false, nil
		}
	}
	return true, nil
}

// runGC selects what o says and removes it (lists it, with o.dryRun):
// containers, then networks, then volumes. It goes on after a failure, so
// that one object in use does not keep the rest.
func runGC(ctx context.Context, d gcDocker, o gcOptions) *gcReport {
	if o.now.IsZero() {
		o.now = time.Now()
	}
	r := &gcReport{}
	f := gcFilters(o)
	for _, kind := range []struct {
		name   string
		list   func() ([]gcObject, error)
		remove func(gcObject) error
	}{
		{"containers", func() ([]gcObject, error) { return listContainers(ctx, d, f) }, func(obj gcObject) error {
			return d.ContainerRemove(ctx, obj.id, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}},
		{"networks", func() ([]gcObject, error) { return listNetworks(ctx, d, f) }, func(obj gcObject) error {
			return d.NetworkRemove(ctx, obj.id)
		}},
		{"volumes", func() ([]gcObject, error) { return listVolumes(ctx, d, f) }, func(obj gcObject) error {
			return removeVolume(ctx, d, obj, o)
		}},
	} {
		objs, err := kind.list()
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("list %s: %w", kind.name, err))
			continue
		}
		for _, obj := range objs {
			ok, why := gcSelect(obj, o)
			switch {
			case why != nil:
				r.results = append(r.results, gcResult{gcObject: obj, outcome: gcSkipped, err: why})
				continue
			case !ok:
				continue
			case o.dryRun:
				r.results = append(r.results, gcResult{gcObject: obj, outcome: gcWouldRemove})
				continue
			}
			res := gcResult{gcObject: obj, outcome: gcRemoved}
			if err := kind.remove(obj); err != nil {
				res.outcome, res.err = gcFailed, err
				switch {
				case cerrdefs.IsNotFound(err):
					// Removed by someone else (or --rm) since the list.
					res.outcome, res.err = gcSkipped, errors.New("already gone")
				case errors.Is(err, errGCChanged):
					res.outcome = gcSkipped
				}
			}
			r.results = append(r.results, res)
		}
		if ctx.Err() != nil {
			r.errs = append(r.errs, ctx.Err())
			break
		}
	}
	return r
}

func listContainers(ctx context.Context, d gcDocker, f filters.Args) ([]gcObject, error) {
	cs, err := d.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	out := make([]gcObject, 0, len(cs))
	for _, c := range cs {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		var created time.Time
		if c.Created > 0 {
			created = time.Unix(c.Created, 0)
		}
		out = append(out, gcObject{kind: "container", id: c.ID, name: name, labels: c.Labels, created: created})
	}
	return out, nil
}

func listNetworks(ctx context.Context, d gcDocker, f filters.Args) ([]gcObject, error) {
	ns, err := d.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	out := make([]gcObject, 0, len(ns))
	for _, n := range ns {
		out = append(out, gcObject{kind: "network", id: n.ID, name: n.Name, labels: n.Labels, created: n.Created})
	}
	return out, nil
}

func listVolumes(ctx context.Context, d gcDocker, f filters.Args) ([]gcObject, error) {
	vs, err := d.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	out := make([]gcObject, 0, len(vs.Volumes))
	for _, v := range vs.Volumes {
		if v == nil {
			continue
		}
		out = append(out, volumeObject(*v))
	}
	return out, nil
}

func volumeObject(v volume.Volume) gcObject {
	// dockerd gives CreatedAt in RFC 3339; a driver may leave it out.
	created, _ := time.Parse(time.RFC3339, v.CreatedAt)
	return gcObject{kind: "volume", id: v.Name, name: v.Name, labels: v.Labels, created: created}
}

var errGCChanged = errors.New("changed since it was listed; left alone")

// removeVolume removes a volume by its name, which, unlike a container's
// or network's ID, another tenant can take once the volume is gone: the
// volume is looked at again just before, and left alone unless it is still
// the one listed (same creation time) and still selected.
func removeVolume(ctx context.Context, d gcDocker, listed gcObject, o gcOptions) error {
	v, err := d.VolumeInspect(ctx, listed.id)
	if err != nil {
		return err
	}
	now := volumeObject(v)
	if ok, _ := gcSelect(now, o); !ok || now.created != listed.created {
		return errGCChanged
	}
	// Not forced: a volume still in use stays, and says so.
	return d.VolumeRemove(ctx, listed.id, false)
}

// gcCmd is "dockgate gc".
func gcCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, gcUsage)
		fs.PrintDefaults()
	}
	fs.String("config", defaultConfigPath, "config file whose upstream is used (default: "+defaultConfigPath+" if it exists)")
	fs.String("upstream", "", "dockerd's socket: unix:///path or tcp://host:port (default: the config's, else unix:///var/run/docker.sock)")
	var o gcOptions
	fs.StringVar(&o.owner, "owner", "", "remove what this subject owns")
	fs.BoolVar(&o.expired, "expired", false, "remove what expired")
	fs.DurationVar(&o.olderThan, "older-than", 0, "only what was created longer ago than this")
	fs.BoolVar(&o.dryRun, "dry-run", false, "list what would be removed, remove nothing")
	usageErr := func(err error) int {
		fmt.Fprintf(stderr, "dockgate gc: %v\n%s\n", err, strings.SplitN(gcUsage, "\n\n", 2)[0])
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usageErr(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	case o.owner == "" && !o.expired:
		return usageErr(errors.New("want --owner SUBJECT or --expired"))
	case o.owner != "" && o.expired:
		return usageErr(errors.New("--owner and --expired select differently; give one"))
	case o.olderThan < 0:
		return usageErr(fmt.Errorf("--older-than %v: want a duration of zero or more", o.olderThan))
	}
	if o.owner != "" {
		if err := checkOwnerSubject(o.owner); err != nil {
			return usageErr(err)
		}
	}
	// The upstream is read as serve reads it, so that gc cleans the
	// dockerd that dockgate fronts.
	so, err := parseServe(serveArgsOf(fs, "config", "upstream"), io.Discard)
	if err != nil {
		fmt.Fprintf(stderr, "dockgate gc: %v\n", err)
		return 2
	}
	c, err := newGCClient(so.upstream)
	if err != nil {
		fmt.Fprintf(stderr, "dockgate gc: %v\n", err)
		return 2
	}
	defer c.Close()
	o.now = time.Now()
	r := runGC(context.Background(), c, o)
	for _, res := range r.results {
		fmt.Fprintln(stdout, res.line())
	}
	for _, err := range r.errs {
		fmt.Fprintf(stderr, "dockgate gc: %s: %v\n", so.upstream, err)
	}
	fmt.Fprintln(stdout, r.summary(o.dryRun))
	if r.failed() {
		return 1
	}
	return 0
}
