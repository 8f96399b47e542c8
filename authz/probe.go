package authz

import (
	"context"
	"fmt"
	"net/http"
)

// Lookups a client makes on its way to another answer. `docker inspect
// NAME` without --type asks for a container, an image, a network, a volume
// and then a plugin of that name, and reports "No such object" when every
// one answered 404. A policy that refuses plugin.inspect (the CI example
// refuses plugin.*) turned that last 404 into the command's final error,
// "may not endpoint plugin.inspect". So a refused plugin inspect of a
// plugin that does not exist gets the 404 dockerd would give: there is
// nothing to protect, and the refusal stays on record (its reason says
// both). A plugin that exists is refused with 403 as before. (The CLI
// probes nodes, services, tasks, secrets and configs only on a swarm
// manager; a refused caller learning which secrets exist is not worth it.)

// PluginChecker says whether a plugin exists on dockerd. *dockerd.Client
// implements it.
type PluginChecker interface {
	PluginExists(ctx context.Context, nameOrID string) (bool, error)
}

// notFoundInsteadOfRefusal returns the 404 decision for a refused lookup
// of an object that does not exist, or ok false.
func (d *PolicyDecider) notFoundInsteadOfRefusal(ctx context.Context, m *Match, refused Decision) (Decision, bool) {
	if m.absent404 != ObjectPlugin {
		return Decision{}, false
	}
	pc, ok := d.Inspector.(PluginChecker)
	if !ok {
		return Decision{}, false
	}
	name := m.Vars["name"]
	exists, err := pc.PluginExists(ctx, name)
	if err != nil || exists {
		return Decision{}, false
	}
	refused.Status = http.StatusNotFound
	refused.Answer = fmt.Sprintf("plugin %q not found", name)
	refused.Reason = fmt.Sprintf("plugin %q not found (%s)", name, refused.Reason)
	return refused, true
}
