package drift

import (
	"slices"
	"strings"
	"time"

	"github.com/dockgate/dockgate/audit"
)

// request is a request of the trail that dockgate forwarded to dockerd.
type request struct {
	start, end time.Time
	action     string
	caller     string
	id         string // request_id
	path       string
	objectID   string
	wouldDeny  bool
	// binds and privileged are what a container create's facts say the
	// container takes from the host (a Docker socket bound is one too:
	// dockgate's own, which dockgate put in its place).
	binds      []string
	privileged bool
}

// trail is what the audit trail says dockgate forwarded.
type trail struct {
	first, last time.Time
	// byObject are the creates by the ID dockerd answered them with.
	byObject map[string]*request
	byAction map[string][]*request
}

// readTrail keeps the forwarded requests of the trail: dockerd acted on
// those (an answer of 400 or more may still have done something, such as
// a pull that failed half-way, so every forwarded request counts).
func readTrail(paths []string, opt audit.TrailOptions) (*trail, error) {
	t := &trail{byObject: map[string]*request{}, byAction: map[string][]*request{}}
	err := audit.ReadTrail(paths, opt, func(e *audit.Entry) error {
		if t.first.IsZero() || e.Time.Before(t.first) {
			t.first = e.Time
		}
		if e.Time.After(t.last) {
			t.last = e.Time
		}
		if e.Decision != audit.DecisionAllow {
			return nil
		}
		r := &request{
			start: e.Time, end: e.Time.Add(time.Duration(e.DurationMS * float64(time.Millisecond))),
			action: strings.Clone(e.Action), caller: strings.Clone(callerName(e.Caller)), id: strings.Clone(e.RequestID),
			path: strings.Clone(e.Path), objectID: strings.Clone(e.ObjectID), wouldDeny: e.WouldDeny,
		}
		for _, f := range e.Facts {
			switch {
			case f.Kind == "bind" || f.Kind == "docker-socket":
				r.binds = append(r.binds, strings.Clone(f.Value))
			case f.Kind == "privileged" && f.Value == "container":
				r.privileged = true
			}
		}
		if r.objectID != "" {
			t.byObject[r.objectID] = r
		}
		t.byAction[r.action] = append(t.byAction[r.action], r)
		return nil
	})
	return t, err
}

// callerName names a recorded caller as audit tables do, a TLS caller by
// its certificate.
func callerName(c *audit.Caller) string {
	if c != nil && c.Cert != "" {
		return "cert:" + c.Cert
	}
	return audit.CallerName(c)
}

// slack is how far an event may lie outside the request that caused it:
// dockgate stamps a request when it reads it and dockerd its event when
// it acts, on the same clock, and the end of a request is when dockgate
// saw its answer end.
const slack = 2 * time.Second

// during returns the first forwarded request of one of actions whose
// time covers t and that ok accepts (nil: any).
func (t *trail) during(at time.Time, actions []string, ok func(*request) bool) *request {
	for _, a := range actions {
		for _, r := range t.byAction[a] {
			if !at.Before(r.start.Add(-slack)) && !at.After(r.end.Add(slack)) && (ok == nil || ok(r)) {
				return r
			}
		}
	}
	return nil
}

// names says whether a request's path names the object id or name: by
// its full ID, a prefix of it of 12 characters or more, or its name.
func names(path, id, name string) bool {
	for _, seg := range strings.FieldsFunc(strings.SplitN(path, "?", 2)[0], func(r rune) bool { return r == '/' }) {
		if seg == name && name != "" || len(seg) >= 12 && strings.HasPrefix(id, seg) {
			return true
		}
	}
	return false
}

// imageActions are the requests after which dockerd may have an image it
// did not have: pulled, imported, loaded, tagged, committed, built (a
// BuildKit build through its session and gRPC channels).
var imageActions = []string{"image.pull", "image.import", "image.load", "image.tag", actImageCommit, "build.run", "session.start", "grpc.start"}

// buildActions are the requests during which dockerd makes containers of
// its own: the legacy builder's intermediate containers.
var buildActions = []string{"build.run"}

// The actions that make or start what dockerd reports.
const (
	actContainerCreate = "container.create"
	actContainerStart  = "container.start"
	actExecCreate      = "container.exec"
	actExecStart       = "exec.start"
	actImageCommit     = "image.commit"
	actVolumeCreate    = "volume.create"
	actNetworkCreate   = "network.create"
)

// actionsNamed are every action drift matches events by, for the test
// that keeps them names of the route table.
var actionsNamed = slices.Concat(imageActions, buildActions, volumeActions,
	[]string{actContainerCreate, actContainerStart, actExecCreate, actExecStart, actImageCommit, actVolumeCreate, actNetworkCreate})
