package authz

import (
	"context"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

var _ ContainerChecker = (*DockerInspector)(nil)

// ContainerImage implements ContainerChecker with GET
// /containers/{id}/json.
func (d *DockerInspector) ContainerImage(ctx context.Context, id string) (string, bool, error) {
	if err := checkName("container", id); err != nil {
		return "", false, err
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var c container.InspectResponse
	err := d.ask(ctx, func(ctx context.Context) (err error) {
		c, err = d.client.ContainerInspect(ctx, id)
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

// RemoveContainer implements ContainerChecker with DELETE
// /containers/{id}?force=1&v=1.
func (d *DockerInspector) RemoveContainer(ctx context.Context, id string) error {
	if err := checkName("container", id); err != nil {
		return err
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	err := d.client.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}
