package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// DefaultInspectTimeout is the most one question DockerInspector asks
// dockerd may take, retry included. Within it the request being judged
// bounds the question (its context's deadline, and its end when the
// client goes or dockgate stops): a caller waits for its own answer as
// long as it would wait for dockerd's, rather than get a 502 because
// dockerd is busy. It matches the proxy's default header timeout.
const DefaultInspectTimeout = 30 * time.Second

// inspectConns is how many idle connections to dockerd the inspector
// keeps. Go's default of two per host made every lookup beyond the second
// at once dial dockerd anew and then close the connection.
const inspectConns = 64

// inspectIdle is how long an idle connection is kept: long enough to
// carry a burst, short enough that a quiet dockgate holds none.
const inspectIdle = 2 * time.Second

// DockerInspector answers an extractor's questions about dockerd's state
// over the upstream socket with the Docker Go SDK. It implements Inspector
// and ServiceInspector and is safe for concurrent use. Owners of
// containers, networks and execs named by full ID are cached while
// WatchEvents runs (ownercache.go).
type DockerInspector struct {
	client *client.Client
	// identity asks at identityAPI, when dockerd speaks it.
	identity *client.Client
	api      serverAPI
	served   registryCache
	// Timeout bounds each call (DefaultInspectTimeout when zero).
	Timeout time.Duration
	cache   *ownerCache
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
	tr := &http.Transport{
		MaxIdleConns:        inspectConns,
		MaxIdleConnsPerHost: inspectConns,
		IdleConnTimeout:     inspectIdle,
	}
	// WithHost sets the transport's dialer for upstream's scheme.
	c, err := client.NewClientWithOpts(client.WithHTTPClient(&http.Client{Transport: tr}),
		client.WithHost(upstream), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("inspector for %s: %w", upstream, err)
	}
	id, err := client.NewClientWithOpts(client.WithHTTPClient(&http.Client{Transport: tr}),
		client.WithHost(upstream), client.WithVersion(identityAPI))
	if err != nil {
		return nil, fmt.Errorf("inspector for %s: %w", upstream, err)
	}
	return &DockerInspector{client: c, identity: id, Timeout: DefaultInspectTimeout, cache: newOwnerCache()}, nil
}

// Close releases the client's connections.
func (d *DockerInspector) Close() error {
	return errors.Join(d.client.Close(), d.identity.Close())
}

// bound limits one question to Timeout within the request's own context.
func (d *DockerInspector) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	t := d.Timeout
	if t <= 0 {
		t = DefaultInspectTimeout
	}
	return context.WithTimeout(ctx, t)
}

// ask runs one idempotent question (a GET) within ctx, and once more if the
// first attempt failed without an answer from dockerd: a broken or refused
// connection, or no answer in the first half of the time left (a
// connection dockerd stopped serving). An answer, even a 404 or a 500, is
// final, and so is the end of ctx.
func (d *DockerInspector) ask(ctx context.Context, call func(context.Context) error) error {
	first, cancel := ctx, context.CancelFunc(func() {})
	if deadline, ok := ctx.Deadline(); ok {
		first, cancel = context.WithTimeout(ctx, time.Until(deadline)/2)
	}
	err := call(first)
	attemptTimedOut := first.Err() != nil
	cancel()
	if err == nil || ctx.Err() != nil || !transient(err, attemptTimedOut) {
		return err
	}
	if err2 := call(ctx); err2 != nil {
		return fmt.Errorf("%w (retried after: %v)", err2, err)
	}
	return nil
}

// transient says whether err means dockerd's answer never arrived, so that
// asking again may get one: the request could not be sent, or the
// connection broke before the answer was read whole. An error response
// (404, 500, ...) is an answer and never matches.
func transient(err error, attemptTimedOut bool) bool {
	if attemptTimedOut && errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return client.IsErrConnectionFailed(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// answered turns the SDK's error for dockerd's 4xx answer to a lookup into
// a DockerdAnswer with dockerd's own status and message, so that the
// request that named the object gets the answer dockerd would have given
// it (400 for a name two networks share, say) rather than 502. Other
// errors (no answer, 5xx) are returned as they are.
func answered(err error) error {
	if err == nil {
		return nil
	}
	var status int
	switch {
	case cerrdefs.IsNotFound(err):
		status = http.StatusNotFound
	case cerrdefs.IsConflict(err):
		status = http.StatusConflict
	case cerrdefs.IsPermissionDenied(err):
		status = http.StatusForbidden
	case cerrdefs.IsUnauthorized(err):
		status = http.StatusUnauthorized
	case cerrdefs.IsFailedPrecondition(err):
		status = http.StatusPreconditionFailed
	case cerrdefs.IsInvalidArgument(err):
		// The SDK makes every other 4xx an invalid argument too.
		status = http.StatusBadRequest
	default:
		return err
	}
	return &DockerdAnswer{Status: status, Message: strings.TrimPrefix(err.Error(), "Error response from daemon: "), Err: err}
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
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var v volume.Volume
	err := d.ask(ctx, func(ctx context.Context) (err error) {
		v, err = d.client.VolumeInspect(ctx, name)
		return err
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", nil, false, nil
		}
		return "", nil, false, answered(err)
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
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var c container.InspectResponse
	err := d.ask(ctx, func(ctx context.Context) (err error) {
		c, err = d.client.ContainerInspect(ctx, nameOrID)
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

// ObjectOwner implements Inspector with dockerd's inspect endpoints, which
// resolve names and IDs as the request being judged will be. Containers,
// networks and execs named by full ID are answered from the owner cache
// when it holds them; the labels returned are shared and must not be
// changed.
func (d *DockerInspector) ObjectOwner(ctx context.Context, kind, nameOrID string) (string, map[string]string, bool, error) {
	if kind == ObjectImage {
		if _, err := reference.ParseAnyReference(nameOrID); err != nil {
			return "", nil, false, badBody("invalid image reference %q: %v", nameOrID, err)
		}
	} else if err := checkName(kind, nameOrID); err != nil {
		if kind == ObjectContainer || kind == ObjectExec {
			// dockerd names containers with [a-zA-Z0-9][a-zA-Z0-9_.-]+
			// (a leading / aside) and execs with hex IDs: no such object
			// exists, and dockerd answers the request with its own 404,
			// on which clients fall back (`docker inspect IMAGE` asks for
			// a container of that name first).
			return "", nil, false, nil
		}
		return "", nil, false, err
	}
	if id, labels, ok := d.cachedOwner(kind, nameOrID); ok {
		return id, labels, true, nil
	}
	// Taken before asking: an answer is kept only if the cache was trusted
	// all along.
	gen := d.cache.generation()
	ctx, cancel := d.bound(ctx)
	defer cancel()
	id, labels, err := d.objectOwner(ctx, gen, kind, nameOrID)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			if cacheable(kind, nameOrID) {
				d.cache.forget(kind, nameOrID)
			}
			return "", nil, false, nil
		}
		return "", nil, false, answered(err)
	}
	return id, labels, true, nil
}

// cachedOwner answers from the cache alone: an exec only when its
// container's labels are cached too.
func (d *DockerInspector) cachedOwner(kind, nameOrID string) (string, map[string]string, bool) {
	if !cacheable(kind, nameOrID) {
		return "", nil, false
	}
	id := nameOrID
	if kind == ObjectExec {
		cid, ok := d.cache.execContainer(nameOrID)
		if !ok {
			return "", nil, false
		}
		kind, id = ObjectContainer, cid
	}
	labels, ok := d.cache.labels(kind, id)
	return nameOrID, labels, ok
}

// objectOwner asks dockerd, and caches what never changes under gen.
func (d *DockerInspector) objectOwner(ctx context.Context, gen uint64, kind, nameOrID string) (id string, labels map[string]string, err error) {
	switch kind {
	case ObjectContainer:
		err = d.ask(ctx, func(ctx context.Context) error {
			c, err := d.client.ContainerInspect(ctx, nameOrID)
			if err != nil {
				return err
			}
			id = c.ID
			if c.Config != nil {
				labels = c.Config.Labels
			}
			return nil
		})
	case ObjectExec:
		// An exec has no labels: it is its container's.
		var containerID string
		err = d.ask(ctx, func(ctx context.Context) error {
			e, err := d.client.ContainerExecInspect(ctx, nameOrID)
			id, containerID = e.ExecID, e.ContainerID
			return err
		})
		if err != nil {
			return "", nil, err
		}
		if _, labels, ok := d.cachedOwner(ObjectContainer, containerID); ok {
			d.cache.putExec(gen, id, containerID)
			return id, labels, nil
		}
		_, labels, err = d.objectOwner(ctx, gen, ObjectContainer, containerID)
		if err == nil {
			d.cache.putExec(gen, id, containerID)
		}
		return id, labels, err
	case ObjectVolume:
		err = d.ask(ctx, func(ctx context.Context) error {
			v, err := d.client.VolumeInspect(ctx, nameOrID)
			id, labels = v.Name, v.Labels
			return err
		})
		return id, labels, err
	case ObjectNetwork:
		err = d.ask(ctx, func(ctx context.Context) error {
			n, err := d.client.NetworkInspect(ctx, nameOrID, network.InspectOptions{})
			id, labels = n.ID, n.Labels
			return err
		})
	case ObjectImage:
		err = d.ask(ctx, func(ctx context.Context) error {
			im, err := d.client.ImageInspect(ctx, nameOrID)
			if err != nil {
				return err
			}
			id = im.ID
			if im.Config != nil {
				labels = im.Config.Labels
			}
			return nil
		})
		return id, labels, err
	default:
		return "", nil, fmt.Errorf("unknown object kind %q", kind)
	}
	if err != nil {
		return "", nil, err
	}
	// Keyed by the full ID dockerd resolved the name to: what that ID
	// labels never changes, wherever the name goes next.
	d.cache.putObject(gen, kind, id, labels)
	return id, labels, nil
}

// CreateVolume implements VolumeCreator with POST /volumes/create.
func (d *DockerInspector) CreateVolume(ctx context.Context, name, driver string, labels map[string]string) (map[string]string, error) {
	if err := checkName("volume", name); err != nil {
		return nil, err
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	v, err := d.client.VolumeCreate(ctx, volume.CreateOptions{Name: name, Driver: driver, Labels: labels})
	if err != nil {
		return nil, err
	}
	return v.Labels, nil
}

// ServicePreviousSpec implements ServiceInspector.
func (d *DockerInspector) ServicePreviousSpec(ctx context.Context, id string) (*swarm.ServiceSpec, bool, error) {
	if err := checkName("service", id); err != nil {
		return nil, false, err
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var s swarm.Service
	err := d.ask(ctx, func(ctx context.Context) (err error) {
		s, _, err = d.client.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
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

// PluginExists implements PluginChecker. A name that is neither a plugin
// reference nor an ID names no plugin.
func (d *DockerInspector) PluginExists(ctx context.Context, nameOrID string) (bool, error) {
	if _, err := reference.ParseAnyReference(nameOrID); err != nil && !validObjectName(nameOrID) {
		return false, nil
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	err := d.ask(ctx, func(ctx context.Context) error {
		_, _, err := d.client.PluginInspectWithRaw(ctx, nameOrID)
		return err
	})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

var _ PluginChecker = (*DockerInspector)(nil)
