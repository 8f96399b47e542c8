package policy

// Fact is one thing a request would do, in the policy's vocabulary (BRIEF
// §3): Kind is a fact kind such as "bind", Value its normalized value.
type Fact struct {
	Kind  string
	Value string
}

// FactResult is one fact of a request with the decision on it.
type FactResult struct {
	Kind     string `json:"kind"`
	Value    string `json:"value"`
	Decision string `json:"decision"`
	Rule     string `json:"rule,omitempty"`
}

// OwnerKind is the fact kind of the owner of the object a request targets.
const OwnerKind = "owner"

// ReplaceablePathKind is the fact kind of a host path the caller could
// redirect after the decision; its value is the path as resolved now.
const ReplaceablePathKind = "replaceable-path"

// DockerSocketKind is the fact kind of a bind of a Docker socket; its
// value is the host path as resolved now. Allowing it gives the container
// dockgate's own socket, never dockerd's (docs/containers.md).
const DockerSocketKind = "docker-socket"

// SignatureKind is the fact kind of who signed an image (BRIEF §3): its
// values are key:<name> for each key of the policy that verifies a
// signature of the image's digest, or SignatureUnsigned, or
// SignatureUnverified when the registry could not be asked.
const (
	SignatureKind       = "signature"
	SignatureUnsigned   = "unsigned"
	SignatureUnverified = "unverified"
)

// factKinds are the fact kinds a policy may name: BRIEF §3's table, plus
// owner (tenancy: the owner label of the object a request touches),
// replaceable-path (a host path the caller could redirect after the
// decision) and network-option (a network's driver options).
var factKinds = []string{
	"endpoint", "image", "local-image", "image-target", "privileged", "bind", ReplaceablePathKind, DockerSocketKind, "volume-driver",
	"volume-option", "device", "capability", "namespace", "security-opt",
	"sysctl", "runtime", "cgroup-parent", "log-driver", "port", "annotation",
	"resource", "network-driver", "network-option", "build", OwnerKind, SignatureKind,
}

// FactKinds returns the fact kinds a policy may name.
func FactKinds() []string { return append([]string(nil), factKinds...) }
