package authz

import (
	"context"

	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
)

// Inspector answers the questions about dockerd's current state that some
// facts need (a named volume's options, the mounts of a container named in
// VolumesFrom, an image's provenance). *dockerd.Client implements it over
// the upstream socket; tests use a fake. An error that is dockerd's own
// answer to a lookup is a *dockerd.Answer, and a name the client would not
// send is a *dockerd.InvalidName (upstreamError).
type Inspector interface {
	// VolumeOptions returns the driver and driver options of a named volume;
	// found is false when it does not exist.
	VolumeOptions(ctx context.Context, name string) (driver string, opts map[string]string, found bool, err error)
	// ContainerMounts returns what a container takes from the host as
	// dockerd recorded it (its full ID, bind sources, named volumes and
	// devices); found is false when it does not exist.
	ContainerMounts(ctx context.Context, nameOrID string) (m dockerd.ContainerMounts, found bool, err error)
	// ImageProvenance resolves an image reference (name, digest
	// reference, full ID or ID prefix) as dockerd resolves it to run it,
	// and returns the image's ID, the RepoDigests that prove where its
	// content came from (those only a pull from or a push to that
	// repository records, whatever dockerd's image store) and its
	// RepoTags; found is false when no such image exists.
	ImageProvenance(ctx context.Context, ref string) (id string, repoDigests []string, repoTags []string, found bool, err error)
	// ObjectOwner resolves the name or ID of an object of a kind
	// (ObjectContainer, ObjectExec, ObjectVolume, ObjectNetwork,
	// ObjectImage) as dockerd resolves it and returns its full ID (a
	// volume's name) and the labels its owner is read from (an exec's are
	// its container's); found is false when no such object exists.
	ObjectOwner(ctx context.Context, kind, nameOrID string) (id string, labels map[string]string, found bool, err error)
	// Daemon returns what dockerd says of itself (its cgroup version and
	// its version), on which what it does with a setting depends.
	Daemon(ctx context.Context) (dockerd.Daemon, error)
}

// VolumeCreator creates the named volume a tenant's container create binds
// before the create is forwarded, so that it carries the owner labels
// (dockerd would create it unlabelled). It returns the labels of the volume
// dockerd answers with: an existing volume of that name keeps its own.
// *dockerd.Client implements it.
type VolumeCreator interface {
	CreateVolume(ctx context.Context, name, driver string, labels map[string]string) (map[string]string, error)
}

// Extractor reads the facts of one request beyond its endpoint fact. An
// error means the request cannot be judged and is refused (fail closed): a
// *RouteError carries the status to answer (400 malformed, 413 too large).
type Extractor func(ctx context.Context, m *Match, req *Request, in Inspector) ([]policy.Fact, error)
