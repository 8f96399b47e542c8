package dockerd

import (
	"context"
	"fmt"
)

// TagImage gives image (a reference dockerd resolves, such as
// repository@digest) the name repo:tag (POST /images/{image}/tag): the tag
// a client asked for of a pull dockgate forwarded as a pull of the digest
// it verified.
func (d *Client) TagImage(ctx context.Context, image, repo, tag string) error {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	if err := d.sdk.ImageTag(ctx, image, repo+":"+tag); err != nil {
		return fmt.Errorf("tag %s as %s:%s: %w", image, repo, tag, err)
	}
	return nil
}
