package dockerd

import (
	"context"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
)

// ContainerMounts is what a container takes from the host, as dockerd
// recorded it at create and mounts it again at every start.
type ContainerMounts struct {
	// ID is the container's full ID.
	ID string
	// Binds are the sources of its bind mounts (Binds and Mounts alike).
	Binds []string
	// Volumes are the names of its volumes.
	Volumes []string
	// Devices are the host paths of its devices.
	Devices []string
}

// ContainerMounts returns what a container takes from the host as dockerd
// recorded it (its full ID, bind sources, named volumes and devices);
// found is false when it does not exist.
func (d *Client) ContainerMounts(ctx context.Context, nameOrID string) (ContainerMounts, bool, error) {
	var m ContainerMounts
	if err := checkName("container", nameOrID); err != nil {
		return m, false, err
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var c container.InspectResponse
	err := d.ask(ctx, func(ctx context.Context) (err error) {
		c, err = d.sdk.ContainerInspect(ctx, nameOrID)
		return err
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return m, false, nil
		}
		return m, false, answered(err)
	}
	m.ID = c.ID
	for _, mp := range c.Mounts {
		switch mp.Type {
		case mount.TypeBind:
			m.Binds = append(m.Binds, mp.Source)
		case mount.TypeVolume:
			m.Volumes = append(m.Volumes, mp.Name)
		}
	}
	if c.HostConfig != nil {
		for _, dev := range c.HostConfig.Devices {
			m.Devices = append(m.Devices, dev.PathOnHost)
		}
	}
	return m, true, nil
}

// ServicePreviousSpec returns the spec a swarm service would roll back
// to: found is false when the service does not exist, spec is nil when it
// has no previous spec.
func (d *Client) ServicePreviousSpec(ctx context.Context, id string) (*swarm.ServiceSpec, bool, error) {
	if err := checkName("service", id); err != nil {
		return nil, false, err
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var s swarm.Service
	err := d.ask(ctx, func(ctx context.Context) (err error) {
		s, _, err = d.sdk.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		return err
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return s.PreviousSpec, true, nil
}

// PluginExists says whether a plugin exists. A name that is neither a
// plugin reference nor an ID names no plugin.
func (d *Client) PluginExists(ctx context.Context, nameOrID string) (bool, error) {
	if _, err := reference.ParseAnyReference(nameOrID); err != nil && !ValidObjectName(nameOrID) {
		return false, nil
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	err := d.ask(ctx, func(ctx context.Context) error {
		_, _, err := d.sdk.PluginInspectWithRaw(ctx, nameOrID)
		return err
	})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
