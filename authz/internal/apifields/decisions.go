package apifields

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/swarm/runtime"
	"github.com/docker/docker/api/types/volume"
)

// decision is what was decided about one field, after reading what the
// swagger says it does.
type decision struct {
	typ  reflect.Type
	name string
	why  string
}

// harmless are the fields the strict pass accepts: they change nothing a
// container may reach and nothing a policy judges (limits, timings,
// fields dockerd ignores). dockerd gets them as sent.
var harmless = []decision{
	{reflect.TypeFor[container.ExecOptions](), "Container",
		"the container again, as API 1.24 took it; dockerd execs in the container of the path and ignores it"},
	{reflect.TypeFor[container.HostConfig](), "Umask",
		"the initial umask of the container's processes"},
	{reflect.TypeFor[container.HostConfig](), "DiskQuota",
		"a disk size limit; later APIs dropped it"},
	{reflect.TypeFor[container.UpdateConfig](), "DiskQuota",
		"a disk size limit; later APIs dropped it"},
	{reflect.TypeFor[container.UpdateConfig](), "Init",
		"the swagger's Resources carry it, but an update never reads it (dockerd's UpdateConfig has no Init); an init process reaches nothing more anyway"},
	{reflect.TypeFor[swarm.ResourceRequirements](), "SwapBytes",
		"the swap limit of a service's tasks"},
	{reflect.TypeFor[swarm.ResourceRequirements](), "MemorySwappiness",
		"the memory swappiness of a service's tasks"},
	{reflect.TypeFor[swarm.Limit](), "GenericResources",
		"1.32–1.40 documented Limits with the schema of Reservations; no dockerd reads generic resources as a limit (its Limit type never had them)"},
	// The swagger puts these three (and Secrets, refused) inside
	// AccessMode; dockerd reads them beside it, in ClusterVolumeSpec, and
	// ignores them here.
	{reflect.TypeFor[volume.AccessMode](), "Availability",
		"whether a cluster volume takes new tasks (active, pause, drain)"},
	{reflect.TypeFor[volume.AccessMode](), "CapacityRange",
		"the size a cluster volume is created with"},
	{reflect.TypeFor[volume.AccessMode](), "AccessibilityRequirements",
		"the topology (nodes) a cluster volume must be reachable from: scheduling"},
}

// refused are the fields the strict pass keeps refusing (unless null or
// zero, like any unknown field): each would give a container something a
// policy must judge, and dockgate has no fact for it.
var refused = []decision{
	{reflect.TypeFor[container.HostConfig](), "Capabilities",
		"the container's whole capability set (API 1.40's dockerd applies it): a capability fact dockgate does not read from it"},
	{reflect.TypeFor[runtime.PluginSpec](), "PluginPrivilege",
		"privileges granted to a service's plugin; dockgate judges them as dockerd reads them (privileges), not under this name"},
	{reflect.TypeFor[volume.AccessMode](), "Secrets",
		"swarm secrets handed to a cluster volume's CSI plugin: which secrets a caller may use is not a fact dockgate has"},
}

// decide pairs each field found with its decision.
func decide(found []*found) ([]decidedField, error) {
	decisions := make(map[fieldKey]decidedField)
	for _, list := range []struct {
		ds       []decision
		harmless bool
	}{{harmless, true}, {refused, false}} {
		for _, d := range list.ds {
			k := fieldKey{d.typ, foldKey(d.name)}
			if _, dup := decisions[k]; dup {
				return nil, fmt.Errorf("decisions.go: %s.%s is decided twice", typeName(d.typ), d.name)
			}
			decisions[k] = decidedField{harmless: list.harmless, why: d.why}
		}
	}
	var out []decidedField
	var undecided []string
	for _, f := range found {
		k := fieldKey{f.typ, foldKey(f.name)}
		d, ok := decisions[k]
		if !ok {
			undecided = append(undecided, fmt.Sprintf("  %s.%s: %s, API %s, at %s: %s",
				typeName(f.typ), f.name, f.jsonType, versionRanges(f.versions), f.at, firstSentence(f.description)))
			continue
		}
		delete(decisions, k)
		d.found = f
		out = append(out, d)
	}
	var errs []string
	if len(undecided) > 0 {
		errs = append(errs, "fields with no decision: add each to harmless or refused in authz/internal/apifields/decisions.go:\n"+strings.Join(undecided, "\n"))
	}
	var stale []string
	for k := range decisions {
		stale = append(stale, fmt.Sprintf("decisions.go decides %s %q, which no API version defines or the SDK type now has: remove it", typeName(k.typ), k.folded))
	}
	sort.Strings(stale)
	errs = append(errs, stale...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return out, nil
}

// firstSentence shortens a swagger description for a message.
func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	return s
}

// Decision is one reviewed field.
type Decision struct {
	Type     reflect.Type
	Name     string
	Harmless bool
	Why      string
}

// Decisions lists every reviewed field, harmless first, so that authz can
// test that its strict pass does what was decided without the swagger.
func Decisions() []Decision {
	var out []Decision
	for _, d := range harmless {
		out = append(out, Decision{d.typ, d.name, true, d.why})
	}
	for _, d := range refused {
		out = append(out, Decision{d.typ, d.name, false, d.why})
	}
	return out
}
