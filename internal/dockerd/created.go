package dockerd

import (
	"context"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

// What the check of a created container asks: the image dockerd created
// it from, and its removal when that is not the image judged.

// ContainerImage returns the image ID of the container id (GET
// /containers/{id}/json); found is false when there is no such container.
func (d *Client) ContainerImage(ctx context.Context, id string) (string, bool, error) {
	if err := checkName("container", id); err != nil {
		return "", false, err
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var c container.InspectResponse
	err := d.ask(ctx, func(ctx context.Context) (err error) {
		c, err = d.sdk.ContainerInspect(ctx, id)
		return err
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", false, nil
		}
		return "", false, err
	}
	return c.Image, true, nil
}

// RemoveContainer removes the container id, running or not, with its
// anonymous volumes (DELETE /containers/{id}?force=1&v=1). A container
// already gone is no error.
func (d *Client) RemoveContainer(ctx context.Context, id string) error {
	if err := checkName("container", id); err != nil {
		return err
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	err := d.sdk.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}
