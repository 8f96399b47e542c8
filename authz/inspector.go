package authz

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// DefaultInspectTimeout bounds each question DockerInspector asks dockerd.
// The request being judged waits for the answer, so it is short.
const DefaultInspectTimeout = 5 * time.Second

// DockerInspector answers an extractor's questions about dockerd's state
// over the upstream socket with the Docker Go SDK. It implements Inspector
// and ServiceInspector and is safe for concurrent use.
type DockerInspector struct {
	client *client.Client
	// Timeout bounds each call (DefaultInspectTimeout when zero).
	Timeout time.Duration
}

var (
	_ Inspector        = (*DockerInspector)(nil)
	_ ServiceInspector = (*DockerInspector)(nil)
	_ VolumeCreator    = (*DockerInspector)(nil)
)

// NewDockerInspector returns an inspector for the dockerd at upstream
// ("unix:///var/run/docker.sock", "tcp://host:2375"), negotiating the API
// version on first use.
func NewDockerInspector(upstream string) (*DockerInspector, error) {
	c, err := client.NewClientWithOpts(client.WithHost(upstream), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("inspector for %s: %w", upstream, err)
	}
	return &DockerInspector{client: c, Timeout: DefaultInspectTimeout}, nil
}

// Close releases the client's connections.
func (d *DockerInspector) Close() error { return d.client.Close() }

func (d *DockerInspector) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	t := d.Timeout
	if t <= 0 {
		t = DefaultInspectTimeout
	}
	return context.WithTimeout(ctx, t)
}

// checkName keeps a name to one path segment of the inspect URL: the SDK
// puts it in the path as it is.
func checkName(kind, name string) error {
	if !validObjectName(name) {
		return badBody("invalid %s name %q", kind, name)
	}
	return nil
}

// VolumeOptions implements Inspector.
func (d *DockerInspector) VolumeOptions(ctx context.Context, name string) (string, map[string]string, bool, error) {
	if err := checkName("volume", name); err != nil {
		return "", nil, false, err
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	v, err := d.client.VolumeInspect(ctx, name)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", nil, false, nil
		}
		return "", nil, false, err
	}
	return v.Driver, v.Options, true, nil
}

// ContainerMounts implements Inspector: the bind sources and volume names
// the container mounts.
func (d *DockerInspector) ContainerMounts(ctx context.Context, nameOrID string) (ContainerMounts, bool, error) {
	var m ContainerMounts
	if err := checkName("container", nameOrID); err != nil {
		return m, false, err
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	c, err := d.client.ContainerInspect(ctx, nameOrID)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return m, false, nil
		}
		return m, false, err
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

// ObjectOwner implements Inspector with dockerd's inspect endpoints, which
// resolve names and IDs as the request being judged will be.
func (d *DockerInspector) ObjectOwner(ctx context.Context, kind, nameOrID string) (string, map[string]string, bool, error) {
	if kind == ObjectImage {
		if _, err := reference.ParseAnyReference(nameOrID); err != nil {
			return "", nil, false, badBody("invalid image reference %q: %v", nameOrID, err)
		}
	} else if err := checkName(kind, nameOrID); err != nil {
		return "", nil, false, err
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	id, labels, err := d.objectOwner(ctx, kind, nameOrID)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", nil, false, nil
		}
		return "", nil, false, err
	}
	return id, labels, true, nil
}

func (d *DockerInspector) objectOwner(ctx context.Context, kind, nameOrID string) (string, map[string]string, error) {
	switch kind {
	case ObjectContainer:
		c, err := d.client.ContainerInspect(ctx, nameOrID)
		if err != nil {
			return "", nil, err
		}
		var labels map[string]string
		if c.Config != nil {
			labels = c.Config.Labels
		}
		return c.ID, labels, nil
	case ObjectExec:
		// An exec has no labels: it is its container's.
		e, err := d.client.ContainerExecInspect(ctx, nameOrID)
		if err != nil {
			return "", nil, err
		}
		_, labels, err := d.objectOwner(ctx, ObjectContainer, e.ContainerID)
		return e.ExecID, labels, err
	case ObjectVolume:
		v, err := d.client.VolumeInspect(ctx, nameOrID)
		return v.Name, v.Labels, err
	case ObjectNetwork:
		n, err := d.client.NetworkInspect(ctx, nameOrID, network.InspectOptions{})
		return n.ID, n.Labels, err
	case ObjectImage:
		im, err := d.client.ImageInspect(ctx, nameOrID)
		if err != nil {
			return "", nil, err
		}
		var labels map[string]string
		if im.Config != nil {
			labels = im.Config.Labels
		}
		return im.ID, labels, nil
	}
	return "", nil, fmt.Errorf("unknown object kind %q", kind)
}

// CreateVolume implements VolumeCreator with POST /volumes/create.
func (d *DockerInspector) CreateVolume(ctx context.Context, name, driver string, labels map[string]string) (map[string]string, error) {
	if err := checkName("volume", name); err != nil {
		return nil, err
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	v, err := d.client.VolumeCreate(ctx, volume.CreateOptions{Name: name, Driver: driver, Labels: labels})
	if err != nil {
		return nil, err
	}
	return v.Labels, nil
}

// ImageProvenance implements Inspector with GET /images/{ref}/json, which
// dockerd resolves with the same lookup as container create (name, then ID
// prefix).
func (d *DockerInspector) ImageProvenance(ctx context.Context, ref string) (string, []string, []string, bool, error) {
	// A valid reference has no character that could leave the path
	// segment the SDK puts it in.
	if _, err := reference.ParseAnyReference(ref); err != nil {
		return "", nil, nil, false, badBody("invalid image reference %q: %v", ref, err)
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	im, err := d.client.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", nil, nil, false, nil
		}
		return "", nil, nil, false, err
	}
	return im.ID, im.RepoDigests, im.RepoTags, true, nil
}

// ServicePreviousSpec implements ServiceInspector.
func (d *DockerInspector) ServicePreviousSpec(ctx context.Context, id string) (*swarm.ServiceSpec, bool, error) {
	if err := checkName("service", id); err != nil {
		return nil, false, err
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	s, _, err := d.client.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return s.PreviousSpec, true, nil
}
