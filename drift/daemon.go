package drift

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// daemon is dockerd's own view, read-only: its recent events and the
// objects it has, with their create times.
type daemon struct {
	c *client.Client
}

func dial(upstream string) (*daemon, error) {
	c, err := client.NewClientWithOpts(client.WithHost(upstream), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("dockerd at %s: %w", upstream, err)
	}
	return &daemon{c: c}, nil
}

func (d *daemon) Close() error { return d.c.Close() }

// events are dockerd's events from since to until. dockerd keeps only its
// most recent events (256 in memory): older objects are found by list.
func (d *daemon) events(ctx context.Context, since, until time.Time) ([]events.Message, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, errs := d.c.Events(ctx, events.ListOptions{
		Since: fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		Until: fmt.Sprintf("%d.%09d", until.Unix(), until.Nanosecond()),
	})
	var out []events.Message
	for {
		select {
		case m := <-msgs:
			out = append(out, m)
		case err := <-errs:
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("dockerd's events: %w", err)
		}
	}
}

func (d *daemon) containers(ctx context.Context) ([]container.Summary, error) {
	cs, err := d.c.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("dockerd's containers: %w", err)
	}
	return cs, nil
}

func (d *daemon) volumes(ctx context.Context) ([]*volume.Volume, error) {
	vs, err := d.c.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("dockerd's volumes: %w", err)
	}
	return vs.Volumes, nil
}

func (d *daemon) networks(ctx context.Context) ([]network.Summary, error) {
	ns, err := d.c.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("dockerd's networks: %w", err)
	}
	return ns, nil
}

// inspect is what a container takes from the host, as dockerd says; ok is
// false when the container is gone.
func (d *daemon) inspect(ctx context.Context, id string) (privileged bool, binds []string, ok bool, err error) {
	c, err := d.c.ContainerInspect(ctx, id)
	if client.IsErrNotFound(err) {
		return false, nil, false, nil
	}
	if err != nil {
		return false, nil, false, fmt.Errorf("inspect container %s: %w", id, err)
	}
	for _, m := range c.Mounts {
		if m.Type == "bind" {
			binds = append(binds, m.Source)
		}
	}
	return c.HostConfig != nil && c.HostConfig.Privileged, binds, true, nil
}
