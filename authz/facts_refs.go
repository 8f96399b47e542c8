package authz

import (
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
		id, err := pin("VolumesFrom", name)
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
// container mounts by name. A volume that does not exist yet gets no fact:
// dockerd creates it, without an owner label (docs/tenancy.md).
func (x *extraction) volumeRef(name string) error {
	if x.req.Owner == "" {
		return nil
	}
	_, err := x.objectOwner(ObjectVolume, name, "volume "+name)
	return err
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
