package dockerd

import (
	"context"
	"maps"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

// CallerContainer is what dockerd says of the container a caller of
// dockgate runs in: what its subjects are read from (docs/containers.md).
type CallerContainer struct {
	// ID is the container's full ID.
	ID string
	// Name is its current name, without dockerd's leading "/".
	Name string
	// Image is the image name it was created from (Config.Image), as
	// its creator wrote it.
	Image string
	// Labels are the container's labels, which include those it took
	// from its image.
	Labels map[string]string
	// ImageLabels are the labels of the image it runs, so that a label
	// only the image's author set can be told from one set at create;
	// ImageKnown says dockerd still has that image to ask.
	ImageLabels map[string]string
	ImageKnown  bool
	// Writable are the host paths the container mounts writable (binds
	// and volumes, as dockerd recorded them): the only host paths a
	// process in it can change.
	Writable []string
}

// CallerContainer returns what dockerd says of the container with the full
// ID id; found is false when dockerd has no such container (another
// daemon's, or one removed since the caller connected). The answer is
// cached by ID while the event stream is up and dropped on the container's
// rename and destroy events: its name is the one thing that changes. The
// maps returned are shared and must not be changed.
func (d *Client) CallerContainer(ctx context.Context, id string) (CallerContainer, bool, error) {
	if !isFullID(id) {
		return CallerContainer{}, false, invalidName("invalid container ID %q", id)
	}
	if c, ok := d.cache.caller(id); ok {
		return c, true, nil
	}
	gen, renames := d.cache.callerGeneration()
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var c CallerContainer
	var imageID string
	err := d.ask(ctx, func(ctx context.Context) error {
		in, err := d.sdk.ContainerInspect(ctx, id)
		if err != nil {
			return err
		}
		c = CallerContainer{ID: in.ID, Name: strings.TrimPrefix(in.Name, "/")}
		imageID = in.Image
		for _, m := range in.Mounts {
			if m.RW && m.Source != "" {
				c.Writable = append(c.Writable, m.Source)
			}
		}
		if in.Config != nil {
			c.Image, c.Labels = in.Config.Image, in.Config.Labels
		}
		return nil
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			d.cache.forgetCaller(id)
			return CallerContainer{}, false, nil
		}
		return CallerContainer{}, false, answered(err)
	}
	if c.ID != id {
		// dockerd resolves a full ID to that container before any name:
		// anything else is not the container the kernel named.
		return CallerContainer{}, false, nil
	}
	if imageID != "" {
		err = d.ask(ctx, func(ctx context.Context) error {
			im, err := d.sdk.ImageInspect(ctx, imageID)
			if err != nil {
				return err
			}
			c.ImageKnown = true
			if im.Config != nil {
				c.ImageLabels = maps.Clone(im.Config.Labels)
			}
			return nil
		})
		// An image gone while its container runs leaves no way to tell
		// its author's labels from the creator's: ImageKnown stays false
		// and no label is trusted.
		if err != nil && !cerrdefs.IsNotFound(err) {
			return CallerContainer{}, false, answered(err)
		}
	}
	d.cache.putCaller(gen, renames, c)
	return c, true, nil
}
