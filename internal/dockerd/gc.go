package dockerd

import (
	"context"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
)

// What the tenant garbage collector asks: the SDK's own calls, with the
// SDK's signatures so that its tests can give a fake of the same shape.
// They have no timeout or retry of their own: a gc run is bounded by its
// context, and it judges every failure itself.

// ContainerList lists containers (GET /containers/json).
func (d *Client) ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error) {
	return d.sdk.ContainerList(ctx, options)
}

// ContainerRemove removes a container (DELETE /containers/{id}).
func (d *Client) ContainerRemove(ctx context.Context, id string, options container.RemoveOptions) error {
	return d.sdk.ContainerRemove(ctx, id, options)
}

// NetworkList lists networks (GET /networks).
func (d *Client) NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error) {
	return d.sdk.NetworkList(ctx, options)
}

// NetworkRemove removes a network (DELETE /networks/{id}).
func (d *Client) NetworkRemove(ctx context.Context, id string) error {
	return d.sdk.NetworkRemove(ctx, id)
}

// VolumeList lists volumes (GET /volumes).
func (d *Client) VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error) {
	return d.sdk.VolumeList(ctx, options)
}

// VolumeInspect inspects a volume (GET /volumes/{name}).
func (d *Client) VolumeInspect(ctx context.Context, name string) (volume.Volume, error) {
	return d.sdk.VolumeInspect(ctx, name)
}

// VolumeRemove removes a volume (DELETE /volumes/{name}).
func (d *Client) VolumeRemove(ctx context.Context, name string, force bool) error {
	return d.sdk.VolumeRemove(ctx, name, force)
}
