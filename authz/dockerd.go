package authz

import "github.com/dockgate/dockgate/internal/dockerd"

// The facts ask dockerd through internal/dockerd's client. The interfaces
// here say what the facts need of it, where they are used, and tests give
// fakes; the client is the one implementation.
var (
	_ Inspector        = (*dockerd.Client)(nil)
	_ ServiceInspector = (*dockerd.Client)(nil)
	_ VolumeCreator    = (*dockerd.Client)(nil)
	_ PluginChecker    = (*dockerd.Client)(nil)
	_ ContainerChecker = (*dockerd.Client)(nil)
	_ RegistryResolver = (*dockerd.Client)(nil)
	_ ContainerNames   = (*dockerd.Client)(nil)
)

// The kinds of object whose owner ObjectOwner reads. They are dockerd's
// (the client maps each to its inspect endpoint), named here for the many
// facts that use them.
const (
	ObjectContainer = dockerd.ObjectContainer
	ObjectExec      = dockerd.ObjectExec
	ObjectVolume    = dockerd.ObjectVolume
	ObjectNetwork   = dockerd.ObjectNetwork
	ObjectImage     = dockerd.ObjectImage
	// ObjectPlugin is only asked whether it exists, for a refused lookup
	// (probe.go).
	ObjectPlugin = "plugin"
)
