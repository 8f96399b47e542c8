package dockerd

import (
	"context"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/volume"
)

// VolumeOptions returns the driver and driver options of a named volume;
// found is false when it does not exist.
func (d *Client) VolumeOptions(ctx context.Context, name string) (string, map[string]string, bool, error) {
	if err := checkName("volume", name); err != nil {
		return "", nil, false, err
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var v volume.Volume
	err := d.ask(ctx, func(ctx context.Context) (err error) {
		v, err = d.sdk.VolumeInspect(ctx, name)
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

// CreateVolume creates the named volume with POST /volumes/create and
// returns the labels of the volume dockerd answers with: an existing
// volume of that name keeps its own. It is not retried: a create is not
// idempotent.
func (d *Client) CreateVolume(ctx context.Context, name, driver string, labels map[string]string) (map[string]string, error) {
	if err := checkName("volume", name); err != nil {
		return nil, err
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	v, err := d.sdk.VolumeCreate(ctx, volume.CreateOptions{Name: name, Driver: driver, Labels: labels})
	if err != nil {
		return nil, err
	}
	return v.Labels, nil
}
