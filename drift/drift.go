// Package drift compares dockerd's own view (its events and objects) with
// dockgate's audit trail, to find work done around dockgate: objects that
// appeared without a request through it, and the runtime events an
// auditor asks about, with whether dockgate allowed them and for whom.
package drift

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"

	"github.com/dockgate/dockgate/audit"
)

// Options say which dockerd and which period to compare.
type Options struct {
	// Upstream is dockerd's socket, as serve's --upstream takes it.
	Upstream string
	// Since and Until bound the period compared; zero Since is the first
	// record of the trail, zero Until now.
	Since, Until time.Time
	// SkipBad reads on past lines that are not records of the trail;
	// without it the first one stops the comparison: it could be the
	// request that explains an object.
	SkipBad bool
}

// What a finding is.
const (
	WhatCreated    = "created"
	WhatExec       = "exec into a container"
	WhatPrivileged = "privileged container"
	WhatHostBind   = "started with a host bind"
)

// Finding is an object or event of dockerd's, and what the trail says of
// it.
type Finding struct {
	Time time.Time `json:"time"`
	// Object is its kind: container, exec, image, volume, network.
	Object string `json:"object"`
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	What   string `json:"what"`
	// Binds are the host paths of a container started with host binds.
	Binds []string `json:"binds,omitempty"`
	// Seen says how dockerd showed it: "event", or "list" for an object
	// whose events dockerd no longer has.
	Seen string `json:"seen"`
	// Attributes are what dockerd's event says of it (its actor's
	// attributes: image, name, labels, execID, …).
	Attributes map[string]string `json:"attributes,omitempty"`
	// Allowed says a request through dockgate did it (forwarded; in
	// audit mode WouldDeny says the policy would have refused it), for
	// Caller, recorded as RequestID.
	Allowed   bool   `json:"allowed"`
	WouldDeny bool   `json:"would_deny,omitempty"`
	Caller    string `json:"caller,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Report is what a comparison found.
type Report struct {
	Upstream string    `json:"upstream"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	// Events counts dockerd's events in the period, Requests the
	// forwarded requests of the trail.
	Events   int `json:"events"`
	Requests int `json:"requests"`
	// Drift are the objects that appeared without a request through
	// dockgate: somebody used dockerd's socket.
	Drift []Finding `json:"drift"`
	// Runtime are the events an auditor asks about: execs into running
	// containers, privileged containers, containers started with host
	// binds; each says whether dockgate allowed it and for whom.
	Runtime  []Finding       `json:"runtime"`
	BadLines []audit.BadLine `json:"bad_lines,omitempty"`
}

// Found says whether there is drift.
func (r *Report) Found() bool { return len(r.Drift) > 0 }

// Run compares dockerd at opt.Upstream with the audit files at paths
// (oldest first, "-" stdin, gzip read transparently).
func Run(ctx context.Context, opt Options, paths []string) (*Report, error) {
	rep := &Report{Upstream: opt.Upstream}
	bad := func(b audit.BadLine) error {
		rep.BadLines = append(rep.BadLines, b)
		if opt.SkipBad {
			return nil
		}
		return b
	}
	t, err := readTrail(paths, audit.TrailOptions{Bad: bad})
	if err != nil {
		return nil, err
	}
	for _, rs := range t.byAction {
		rep.Requests += len(rs)
	}
	rep.Since, rep.Until = opt.Since, opt.Until
	if rep.Since.IsZero() {
		if t.first.IsZero() {
			return nil, errors.New("the trail has no records: give the period with --since")
		}
		rep.Since = t.first
	}
	if rep.Until.IsZero() {
		rep.Until = time.Now()
	}
	d, err := dial(opt.Upstream)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	c := &comparison{t: t, d: d, rep: rep, known: map[string]bool{}}
	evs, err := d.events(ctx, rep.Since, rep.Until)
	if err != nil {
		return nil, err
	}
	rep.Events = len(evs)
	for _, ev := range evs {
		if err := c.event(ctx, ev); err != nil {
			return nil, err
		}
	}
	if err := c.lists(ctx); err != nil {
		return nil, err
	}
	byTime := func(a, b Finding) int { return a.Time.Compare(b.Time) }
	slices.SortStableFunc(rep.Drift, byTime)
	slices.SortStableFunc(rep.Runtime, byTime)
	return rep, nil
}

// comparison is one run: the trail, dockerd, and the objects already
// accounted for (by kind and ID), so that an object dockerd shows both by
// an event and in its list is reported once.
type comparison struct {
	t     *trail
	d     *daemon
	rep   *Report
	known map[string]bool
}

func (c *comparison) drift(f Finding) {
	if c.known[f.Object+" "+f.ID] {
		return
	}
	c.known[f.Object+" "+f.ID] = true
	f.What = WhatCreated
	c.rep.Drift = append(c.rep.Drift, f)
}

// allowedBy fills in the request that did what f says, if any.
func allowedBy(f *Finding, r *request) {
	if r != nil {
		f.Allowed, f.WouldDeny, f.Caller, f.RequestID = true, r.wouldDeny, r.caller, r.id
	}
}

func (c *comparison) event(ctx context.Context, ev events.Message) error {
	at := time.Unix(0, ev.TimeNano)
	if ev.TimeNano == 0 {
		at = time.Unix(ev.Time, 0)
	}
	id, attrs := ev.Actor.ID, ev.Actor.Attributes
	f := Finding{Time: at, Object: string(ev.Type), ID: id, Name: attrs["name"], Seen: "event", Attributes: attrs}
	action := string(ev.Action)
	switch ev.Type {
	case events.ContainerEventType:
		switch {
		case action == "create":
			return c.containerCreated(ctx, f)
		case action == "start":
			return c.containerStarted(ctx, f)
		case strings.HasPrefix(action, "exec_create"):
			c.execCreated(f)
		case strings.HasPrefix(action, "exec_start"):
			c.execStarted(f)
		case action == "commit":
			// The committed image is new; the container is not.
			f.Object = "image"
			if c.t.during(at, []string{actImageCommit}, nil) == nil {
				c.drift(f)
			}
		}
	case events.ImageEventType:
		switch action {
		case "pull", "import", "load", "tag":
			if c.t.during(at, imageActions, nil) == nil {
				c.drift(f)
			}
		}
	case events.VolumeEventType:
		if action == "create" && !c.volumeExplained(id, at) {
			c.drift(f)
		}
	case events.NetworkEventType:
		if action == "create" && !c.networkExplained(id, at) {
			c.drift(f)
		}
	}
	return nil
}

// containerCreated: a create through dockgate has its ID on record; the
// legacy builder makes containers of its own during a build.
func (c *comparison) containerCreated(ctx context.Context, f Finding) error {
	r := c.t.byObject[f.ID]
	if r != nil && r.action != actContainerCreate {
		r = nil
	}
	switch {
	case r != nil:
		c.known["container "+f.ID] = true
	case c.t.during(f.Time, buildActions, nil) != nil:
		c.known["container "+f.ID] = true
		return nil
	default:
		c.drift(f)
	}
	privileged := r != nil && r.privileged
	if r == nil {
		var err error
		if privileged, _, _, err = c.d.inspect(ctx, f.ID); err != nil {
			return err
		}
	}
	if privileged {
		p := f
		p.What = WhatPrivileged
		allowedBy(&p, r)
		c.rep.Runtime = append(c.rep.Runtime, p)
	}
	return nil
}

// containerStarted reports a start of a container with host binds: those
// dockerd shows, or, when the container is gone (run --rm), those its
// create through dockgate asked for.
func (c *comparison) containerStarted(ctx context.Context, f Finding) error {
	_, binds, exists, err := c.d.inspect(ctx, f.ID)
	if err != nil {
		return err
	}
	if r := c.t.byObject[f.ID]; !exists && r != nil && r.action == actContainerCreate {
		binds = r.binds
	}
	if len(binds) == 0 {
		return nil
	}
	f.What, f.Binds = WhatHostBind, binds
	allowedBy(&f, c.t.during(f.Time, []string{actContainerStart}, func(r *request) bool { return names(r.path, f.ID, f.Name) }))
	c.rep.Runtime = append(c.rep.Runtime, f)
	return nil
}

// execCreated: an exec made through dockgate has its ID on record (the
// event names it as execID since Engine 17.06); without one, a create of
// an exec in that container at that time.
func (c *comparison) execCreated(f Finding) {
	f.Object = "exec"
	execID := f.Attributes["execID"]
	if r := c.t.byObject[execID]; execID != "" && r != nil && r.action == actExecCreate {
		return
	}
	if execID == "" && c.t.during(f.Time, []string{actExecCreate}, func(r *request) bool { return names(r.path, f.ID, f.Name) }) != nil {
		return
	}
	if execID != "" {
		f.ID = execID
	}
	c.drift(f)
}

// execStarted reports every exec into a running container, with the
// exec.start request that started it.
func (c *comparison) execStarted(f Finding) {
	f.What = WhatExec
	execID := f.Attributes["execID"]
	allowedBy(&f, c.t.during(f.Time, []string{actExecStart}, func(r *request) bool {
		return execID == "" || names(r.path, execID, "")
	}))
	c.rep.Runtime = append(c.rep.Runtime, f)
}

// volumeActions are the requests that make dockerd create a volume: a
// volume create, and a container create or start that names a volume
// that does not exist yet or whose image declares one.
var volumeActions = []string{actVolumeCreate, actContainerCreate, actContainerStart, "build.run"}

func (c *comparison) volumeExplained(name string, at time.Time) bool {
	if r := c.t.byObject[name]; r != nil && r.action == actVolumeCreate {
		return true
	}
	return c.t.during(at, volumeActions, nil) != nil
}

func (c *comparison) networkExplained(id string, at time.Time) bool {
	if r := c.t.byObject[id]; r != nil && r.action == actNetworkCreate {
		return true
	}
	return c.t.during(at, []string{actNetworkCreate}, nil) != nil
}

// lists finds the objects created in the period whose events dockerd no
// longer has (it keeps its last 256): containers, volumes and networks by
// their create time. An image's time is when it was built, not when it
// came to this dockerd, so images are found by their events only.
func (c *comparison) lists(ctx context.Context) error {
	since, until := c.rep.Since.Truncate(time.Second), c.rep.Until
	in := func(t time.Time) bool { return !t.Before(since) && !t.After(until) }
	cs, err := c.d.containers(ctx)
	if err != nil {
		return err
	}
	for _, ct := range cs {
		at := time.Unix(ct.Created, 0)
		if !in(at) || c.known["container "+ct.ID] {
			continue
		}
		if r := c.t.byObject[ct.ID]; r != nil && r.action == actContainerCreate {
			continue
		}
		if c.t.during(at, buildActions, nil) != nil {
			continue
		}
		name := ""
		if len(ct.Names) > 0 {
			name = strings.TrimPrefix(ct.Names[0], "/")
		}
		c.drift(Finding{Time: at, Object: "container", ID: ct.ID, Name: name, Seen: "list", Attributes: map[string]string{"image": ct.Image}})
	}
	vs, err := c.d.volumes(ctx)
	if err != nil {
		return err
	}
	for _, v := range vs {
		at, err := time.Parse(time.RFC3339, v.CreatedAt)
		if err != nil || !in(at) || c.known["volume "+v.Name] || c.volumeExplained(v.Name, at) {
			continue
		}
		c.drift(Finding{Time: at, Object: "volume", ID: v.Name, Name: v.Name, Seen: "list", Attributes: map[string]string{"driver": v.Driver}})
	}
	ns, err := c.d.networks(ctx)
	if err != nil {
		return err
	}
	for _, n := range ns {
		if !in(n.Created) || c.known["network "+n.ID] || c.networkExplained(n.ID, n.Created) {
			continue
		}
		c.drift(Finding{Time: n.Created, Object: "network", ID: n.ID, Name: n.Name, Seen: "list", Attributes: map[string]string{"driver": n.Driver}})
	}
	return nil
}
