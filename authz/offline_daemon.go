package authz

import (
	"context"
	"net/http"
	"strings"

	"github.com/dockgate/dockgate/internal/dockerd"
)

// OfflineDaemon answers the questions the facts ask dockerd from what it
// is told, for judging a request where no dockerd is asked (`dockgate
// explain`, a policy test). An image it is not told of is judged as absent
// from the daemon: the image facts of the name as requested (serve judges
// an image that is there by its provenance, and may find local-image
// instead). Any other object it is not told of is an error (500) worded by
// Undeclared: the request cannot be judged without it, and is never judged
// on a guess.
type OfflineDaemon struct {
	Objects []OfflineObject
	Images  []OfflineImage
	// Callers are the containers callers run in, by full ID: who each
	// is (CallerContainers). A caller in a container not here is judged
	// as one dockerd does not know (as * alone).
	Callers map[string]dockerd.CallerContainer
	// Undeclared words the error for an object it was not told of ("volume
	// data", "container web").
	Undeclared func(what string) string
}

// OfflineObject is an existing container, exec, volume, network or image
// as dockerd describes it.
type OfflineObject struct {
	Kind string // ObjectContainer, ObjectExec, ObjectVolume, ObjectNetwork, ObjectImage
	Name string
	ID   string
	// Labels are its labels, the owner label (OwnerLabel) among them.
	Labels map[string]string
	// Binds, Volumes and Devices are what a container takes from the host.
	Binds, Volumes, Devices []string
}

// OfflineImage is an image dockerd has, with its provenance.
type OfflineImage struct {
	Ref, ID               string
	RepoDigests, RepoTags []string
}

func (o *OfflineDaemon) undeclared(what string) error {
	msg := "cannot judge " + what + " without dockerd"
	if o.Undeclared != nil {
		msg = o.Undeclared(what)
	}
	return &RouteError{Status: http.StatusInternalServerError, Message: msg}
}

// object finds an object by name, ID or ID prefix (12 or more
// characters), as dockerd resolves them.
func (o *OfflineDaemon) object(kind, name string) *OfflineObject {
	for i := range o.Objects {
		ob := &o.Objects[i]
		if ob.Kind == kind && (ob.Name == name || ob.ID == name || len(name) >= 12 && strings.HasPrefix(ob.ID, name)) {
			return ob
		}
	}
	return nil
}

func (ob *OfflineObject) id() string {
	if ob.ID != "" {
		return ob.ID
	}
	return ob.Name
}

// ObjectOwner implements Inspector.
func (o *OfflineDaemon) ObjectOwner(_ context.Context, kind, name string) (string, map[string]string, bool, error) {
	if ob := o.object(kind, name); ob != nil {
		return ob.id(), ob.Labels, true, nil
	}
	return "", nil, false, o.undeclared(kind + " " + name)
}

// ContainerMounts implements Inspector.
func (o *OfflineDaemon) ContainerMounts(_ context.Context, name string) (dockerd.ContainerMounts, bool, error) {
	if ob := o.object(ObjectContainer, name); ob != nil {
		return dockerd.ContainerMounts{ID: ob.id(), Binds: ob.Binds, Volumes: ob.Volumes, Devices: ob.Devices}, true, nil
	}
	return dockerd.ContainerMounts{}, false, o.undeclared("container " + name)
}

// VolumeOptions implements Inspector: what a named volume mounts is
// dockerd's to say, never taken as nothing.
func (o *OfflineDaemon) VolumeOptions(_ context.Context, name string) (string, map[string]string, bool, error) {
	return "", nil, false, o.undeclared("volume " + name)
}

// ImageProvenance implements Inspector.
func (o *OfflineDaemon) ImageProvenance(_ context.Context, ref string) (string, []string, []string, bool, error) {
	for _, im := range o.Images {
		if im.Ref == ref || im.ID != "" && im.ID == ref {
			return im.ID, im.RepoDigests, im.RepoTags, true, nil
		}
	}
	return "", nil, nil, false, nil
}

// Daemon implements Inspector: not knowing the dockerd it would stand
// before, it takes a cgroup v2 host and a current dockerd, on which the
// most is a change.
func (o *OfflineDaemon) Daemon(context.Context) (dockerd.Daemon, error) {
	return dockerd.Daemon{CgroupVersion: "2", Version: "29"}, nil
}

// CallerContainer implements CallerContainers.
func (o *OfflineDaemon) CallerContainer(_ context.Context, id string) (dockerd.CallerContainer, bool, error) {
	c, ok := o.Callers[id]
	return c, ok, nil
}
