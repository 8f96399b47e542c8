package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"regexp"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// dockerPruner removes through the Docker API.
type dockerPruner struct {
	c    *client.Client
	log  *log.Logger
	self string // the reaper's own container ID; "" when not in a container
}

func newDockerPruner(logger *log.Logger) (*dockerPruner, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &dockerPruner{c: c, log: logger, self: selfID()}, nil
}

// containerDir finds a container's dir under dockerd's data root in a
// mount source: dockerd binds its hostname, hosts and resolv.conf files
// from there, whatever the cgroup driver or version.
var containerDir = regexp.MustCompile(`/containers/([0-9a-f]{64})/(hostname|hosts|resolv\.conf)`)

// selfID is the ID of the container the reaper runs in. testcontainers-go
// attaches its reaper to the network it creates with its session's labels
// (reaper_default, when there is no default bridge), so the reaper is in
// the way of a network it is asked to remove.
func selfID() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	if m := containerDir.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

func (p *dockerPruner) close() { p.c.Close() }

// prune removes containers first (their networks and volumes are in use
// until they are gone), then networks, volumes and images. Something that
// is gone by the time it is removed counts as removed by someone else.
func (p *dockerPruner) prune(ctx context.Context, sets []filters.Args) (int, []error) {
	removed := 0
	var errs []error
	done := func(kind, id string, err error) {
		switch {
		case err == nil:
			removed++
			p.log.Printf("removed %s %s", kind, short(id))
		case errdefs.IsNotFound(err):
		default:
			errs = append(errs, fmt.Errorf("remove %s %s: %w", kind, short(id), err))
		}
	}
	for _, f := range sets {
		cs, err := p.c.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			errs = append(errs, fmt.Errorf("list containers %v: %w", f, err))
			continue
		}
		for _, c := range cs {
			done("container", c.ID, p.c.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}))
		}
	}
	for _, f := range sets {
		ns, err := p.c.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			errs = append(errs, fmt.Errorf("list networks %v: %w", f, err))
			continue
		}
		for _, n := range ns {
			if p.self != "" {
				// Not connected is an error too; the removal says what matters.
				_ = p.c.NetworkDisconnect(ctx, n.ID, p.self, true)
			}
			done("network", n.ID, p.c.NetworkRemove(ctx, n.ID))
		}
	}
	for _, f := range sets {
		vs, err := p.c.VolumeList(ctx, volume.ListOptions{Filters: f})
		if err != nil {
			errs = append(errs, fmt.Errorf("list volumes %v: %w", f, err))
			continue
		}
		for _, v := range vs.Volumes {
			done("volume", v.Name, p.c.VolumeRemove(ctx, v.Name, true))
		}
	}
	for _, f := range sets {
		f = f.Clone()
		f.Add("dangling", "false")
		is, err := p.c.ImageList(ctx, image.ListOptions{Filters: f})
		if err != nil {
			errs = append(errs, fmt.Errorf("list images %v: %w", f, err))
			continue
		}
		for _, i := range is {
			_, err := p.c.ImageRemove(ctx, i.ID, image.RemoveOptions{Force: true, PruneChildren: true})
			done("image", i.ID, err)
		}
	}
	return removed, errs
}

// short is an ID as docker ps shows it (a volume's name is kept whole).
func short(id string) string {
	if len(id) == 64 {
		return id[:12]
	}
	if len(id) == 71 && id[:7] == "sha256:" {
		return id[7:19]
	}
	return id
}
