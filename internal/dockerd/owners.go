package dockerd

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/network"
)

// The kinds of object whose owner ObjectOwner reads.
const (
	ObjectContainer = "container"
	ObjectExec      = "exec"
	ObjectVolume    = "volume"
	ObjectNetwork   = "network"
	ObjectImage     = "image"
)

// ObjectOwner resolves the name or ID of an object of a kind
// (ObjectContainer, ObjectExec, ObjectVolume, ObjectNetwork, ObjectImage)
// with dockerd's inspect endpoints, which resolve names and IDs as the
// request being judged will be, and returns its full ID (a volume's name)
// and the labels its owner is read from (an exec's are its container's);
// found is false when no such object exists. Containers, networks and
// execs named by full ID, and containers by a name dockerd resolved
// before (name_cache.go), are answered from the owner cache when it holds
// them; the labels returned are shared and must not be changed.
func (d *Client) ObjectOwner(ctx context.Context, kind, nameOrID string) (string, map[string]string, bool, error) {
	if kind == ObjectImage {
		if _, err := reference.ParseAnyReference(nameOrID); err != nil {
			return "", nil, false, invalidName("invalid image reference %q: %v", nameOrID, err)
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
	// all along, and a name only if no name changed meanwhile.
	at := d.cache.begin()
	ctx, cancel := d.bound(ctx)
	defer cancel()
	id, labels, err := d.objectOwner(ctx, at, kind, nameOrID)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			switch {
			case cacheable(kind, nameOrID):
				d.cache.forget(kind, nameOrID)
			case kind == ObjectContainer:
				d.cache.forgetName(nameOrID)
			}
			return "", nil, false, nil
		}
		return "", nil, false, answered(err)
	}
	return id, labels, true, nil
}

// cachedOwner answers from the cache alone: an exec only when its
// container's labels are cached too.
func (d *Client) cachedOwner(kind, nameOrID string) (string, map[string]string, bool) {
	if kind == ObjectContainer && !isFullID(nameOrID) {
		return d.cache.named(nameOrID)
	}
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

// objectOwner asks dockerd, and caches what never changes, and a name
// dockerd resolved as a name, if nothing changed since at.
func (d *Client) objectOwner(ctx context.Context, at lookupStart, kind, nameOrID string) (id string, labels map[string]string, err error) {
	gen := at.gen
	var resolved string // a container's name, as dockerd answered it
	switch kind {
	case ObjectContainer:
		err = d.ask(ctx, func(ctx context.Context) error {
			c, err := d.sdk.ContainerInspect(ctx, nameOrID)
			if err != nil {
				return err
			}
			id, resolved = c.ID, c.Name
			if c.Config != nil {
				labels = c.Config.Labels
			}
			labels, err = d.withoutImageRecords(ctx, c.Image, labels)
			return err
		})
	case ObjectExec:
		// An exec has no labels: it is its container's.
		var containerID string
		err = d.ask(ctx, func(ctx context.Context) error {
			e, err := d.sdk.ContainerExecInspect(ctx, nameOrID)
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
		_, labels, err = d.objectOwner(ctx, at, ObjectContainer, containerID)
		if err == nil {
			d.cache.putExec(gen, id, containerID)
		}
		return id, labels, err
	case ObjectVolume:
		err = d.ask(ctx, func(ctx context.Context) error {
			v, err := d.sdk.VolumeInspect(ctx, nameOrID)
			id, labels = v.Name, v.Labels
			return err
		})
		return id, labels, err
	case ObjectNetwork:
		err = d.ask(ctx, func(ctx context.Context) error {
			n, err := d.sdk.NetworkInspect(ctx, nameOrID, network.InspectOptions{})
			id, labels = n.ID, n.Labels
			return err
		})
	case ObjectImage:
		err = d.ask(ctx, func(ctx context.Context) error {
			im, err := d.sdk.ImageInspect(ctx, nameOrID)
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
	if kind == ObjectContainer {
		d.cache.putName(at, nameOrID, resolved, id)
	}
	return id, labels, nil
}

// withoutImageRecords drops a container's owner label unless it is
// dockgate's record (ReadRecords): one that is its image's is not, since
// an image's author may write any label and an administrator's container
// of an image labelled as a tenant's would otherwise be that tenant's. An
// owner label no creator record vouches for, set when the container was
// created (by dockgate before it recorded creators, or by an
// administrator), stays: tenancy read it so before.
func (d *Client) withoutImageRecords(ctx context.Context, imageID string, labels map[string]string) (map[string]string, error) {
	if labels[OwnerRecordLabel] == "" {
		return labels, nil
	}
	var fromImage map[string]string
	imageKnown := false
	im, err := d.sdk.ImageInspect(ctx, imageID)
	switch {
	case err == nil:
		imageKnown = true
		if im.Config != nil {
			fromImage = im.Config.Labels
		}
	case !cerrdefs.IsNotFound(err):
		return nil, err
	}
	if r := ReadRecords(labels, fromImage, imageKnown); r.Owner == labels[OwnerRecordLabel] {
		return labels, nil
	}
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		if k != OwnerRecordLabel {
			out[k] = v
		}
	}
	return out, nil
}
