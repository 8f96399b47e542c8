package authz

import (
	"context"
	"net/http"
	"path"
	"strings"

	"github.com/docker/docker/api/types/container"
)

// containerRefsFacts adds, for a tenant, the owner fact of every container
// a HostConfig names (BRIEF §7 item 10): VolumesFrom, the container:
// network, pid, ipc and cgroup namespaces, and Links. Each reference is
// pinned in hc to the full ID that was judged; a create forwards hc
// re-encoded, so that a rename between dockgate's lookup and dockerd's
// cannot put another container there.
func (x *extraction) containerRefsFacts(hc *container.HostConfig) error {
	if x.req.Owner == "" {
		return nil
	}
	pin := func(where, name string) (string, error) {
		if name == "" {
			// dockerd refuses an empty reference itself.
			return "", nil
		}
		return x.containerRef(where, name)
	}
	for i, spec := range hc.VolumesFrom {
		name, mode, hasMode := strings.Cut(spec, ":")
		// The owner of the container whose binds were judged
		// (volumesFromFacts), not of what the name resolves to a second
		// time: the owner lookup may answer from the name cache, which
		// holds what the name meant until dockerd's event of a change
		// made outside dockgate arrives.
		lookup := name
		if id, ok := x.volumesFrom[name]; ok {
			lookup = id
		}
		id, err := x.containerRefOf("VolumesFrom", name, lookup)
		if err != nil {
			return err
		}
		if id != "" {
			hc.VolumesFrom[i] = id
			if hasMode {
				hc.VolumesFrom[i] += ":" + mode
			}
		}
	}
	if n := hc.NetworkMode; n.IsUserDefined() {
		if err := x.networkRef(string(n)); err != nil {
			return err
		}
	}
	// The container: modes, split as dockerd's containerID splits them.
	for _, err := range []error{
		pinContainerMode(pin, "NetworkMode", &hc.NetworkMode),
		pinContainerMode(pin, "PidMode", &hc.PidMode),
		pinContainerMode(pin, "IpcMode", &hc.IpcMode),
		pinContainerMode(pin, "Cgroup", &hc.Cgroup),
	} {
		if err != nil {
			return err
		}
	}
	for i, link := range hc.Links {
		name, alias, err := parseLink(link)
		if err != nil {
			return err
		}
		id, err := pin("Links", name)
		if err != nil {
			return err
		}
		if id != "" {
			// The alias is kept as dockerd would have derived it from
			// the name.
			hc.Links[i] = id + ":" + alias
		}
	}
	return nil
}

// pinContainerMode replaces the container a "container:<name>" mode names
// with the full ID pin resolves it to.
func pinContainerMode[M ~string](pin func(where, name string) (string, error), where string, mode *M) error {
	name, ok := strings.CutPrefix(string(*mode), "container:")
	if !ok {
		return nil
	}
	id, err := pin(where, name)
	if err != nil || id == "" {
		return err
	}
	*mode = M("container:" + id)
	return nil
}

// parseLink is dockerd's runconfig/opts.ParseLink: "name", "name:alias",
// or "/name:/container/alias" as dockerd reports links back.
func parseLink(val string) (name, alias string, err error) {
	if val == "" {
		return "", "", badBody("empty string specified for links")
	}
	arr := strings.Split(val, ":")
	switch {
	case len(arr) > 2:
		return "", "", badBody("bad format for links: %s", val)
	case len(arr) == 1:
		return val, val, nil
	case strings.HasPrefix(arr[0], "/"):
		_, alias := path.Split(arr[1])
		return arr[0][1:], alias, nil
	}
	return arr[0], arr[1], nil
}

// volumeRef adds, for a tenant, the owner fact of an existing volume a
// container mounts by name, and reports whether it exists. One that does
// not exist yet gets no fact: it will be the tenant's (VolumeOptions labels
// on a mount, createMissingVolumes for a bind).
func (x *extraction) volumeRef(name string) (found bool, err error) {
	if x.req.Owner == "" {
		return true, nil
	}
	id, err := x.objectOwner(ObjectVolume, name, "volume "+name)
	return id != "", err
}

// networkRef adds, for a tenant, the owner fact of a network a container
// joins by name or ID, dockerd's own networks aside.
func (x *extraction) networkRef(name string) error {
	if x.req.Owner == "" || name == "" || predefinedNetworks[name] || strings.HasPrefix(name, "container:") {
		return nil
	}
	_, err := x.objectOwner(ObjectNetwork, name, "network "+name)
	return err
}

// createMissingVolumes has the proxy create, once the create is allowed,
// the named volumes a tenant's binds name that do not exist yet, with the
// container's volume driver and the owner labels. Should another caller
// create a volume of that name in between, dockerd answers with that one:
// its labels are checked, and the create is refused unless it is the
// tenant's.
func (x *extraction) createMissingVolumes(driver string) error {
	if len(x.missingVolumes) == 0 {
		return nil
	}
	in, err := x.inspector()
	if err != nil {
		return err
	}
	vc, ok := in.(VolumeCreator)
	if !ok {
		return &RouteError{Status: http.StatusInternalServerError, Message: "cannot create the volumes " + strings.Join(x.missingVolumes, ", ") + " with the owner label"}
	}
	names, owner, labels := x.missingVolumes, x.req.Owner, x.req.ownerLabels()
	x.req.PrepareSays = append(x.req.PrepareSays, "dockgate first creates the named volumes it binds, labelled for the caller")
	x.req.Prepare = func(ctx context.Context) error {
		for _, name := range names {
			got, err := vc.CreateVolume(ctx, name, driver, labels)
			if err != nil {
				return upstreamError("volume "+name, err)
			}
			if ownerOf(owner, got) != "self" {
				return &RouteError{Status: http.StatusForbidden, Message: "the volume " + name + " was created by someone else while dockgate created it for " + owner}
			}
		}
		return nil
	}
	return nil
}
