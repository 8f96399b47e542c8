package authz

import (
	"path"
	"strings"

	"github.com/moby/buildkit/solver/pb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The facts of raw LLB: the definitions a client solves itself (buildx's
// gateway builds, the Go client's Solve with a Definition) and the inputs
// it gives a frontend. Every op is judged, reachable or not: what
// BuildKit may run is what the definition holds.

// llbFacts judges every op of def; what names it in messages.
func (x *extraction) llbFacts(what string, def *pb.Definition) error {
	for i, dt := range def.GetDef() {
		var op pb.Op
		if err := proto.Unmarshal(dt, &op); err != nil {
			return badBody("BuildKit LLB %s: op %d: cannot decode: %v", what, i, err)
		}
		if hasUnknownFields(op.ProtoReflect()) {
			x.add("build", buildKitFact)
		}
		switch o := op.Op.(type) {
		case nil:
			// The last op of a definition only points at its result.
		case *pb.Op_Source:
			if err := x.llbSourceFacts(o.Source.GetIdentifier()); err != nil {
				return err
			}
		case *pb.Op_Exec:
			if err := x.llbExecFacts(what, i, o.Exec); err != nil {
				return err
			}
		case *pb.Op_File, *pb.Op_Merge, *pb.Op_Diff:
			// Files moved between the build's own results.
		default:
			// A nested build (BuildOp) solves a definition dockgate
			// would have to fetch to read.
			x.add("build", buildKitFact)
		}
	}
	return nil
}

// llbSourceFacts: where a source op fetches from. A docker-image source
// is judged as a FROM base (by provenance); git and http sources are a
// remote context; the client's local files are fine; anything else
// (oci-layout, blobs) is not judged.
func (x *extraction) llbSourceFacts(id string) error {
	scheme, rest, ok := strings.Cut(id, "://")
	if !ok {
		return badBody("BuildKit LLB source %q: no scheme", id)
	}
	switch scheme {
	case "docker-image":
		return x.addImageRun(rest)
	case "git", "https", "http":
		x.add("build", "remote-context")
	case "local":
	default:
		x.add("build", buildKitFact)
	}
	return nil
}

// llbExecFacts: what an exec op's process may do beyond BuildKit's
// sandbox.
func (x *extraction) llbExecFacts(what string, i int, e *pb.ExecOp) error {
	switch e.GetNetwork() {
	case pb.NetMode_UNSET, pb.NetMode_NONE:
	case pb.NetMode_HOST:
		x.add("build", "network=host")
	default:
		return badBody("BuildKit LLB %s: op %d: unknown network mode %d", what, i, e.GetNetwork())
	}
	switch e.GetSecurity() {
	case pb.SecurityMode_SANDBOX:
	case pb.SecurityMode_INSECURE:
		x.add("privileged", "build")
	default:
		return badBody("BuildKit LLB %s: op %d: unknown security mode %d", what, i, e.GetSecurity())
	}
	if cg := e.GetMeta().GetCgroupParent(); cg != "" {
		x.add("cgroup-parent", cg)
	}
	for _, d := range e.GetCdiDevices() {
		x.add("device", cdiDevice(d.GetName()))
	}
	for _, m := range e.GetMounts() {
		switch m.GetMountType() {
		case pb.MountType_BIND, pb.MountType_SECRET, pb.MountType_SSH, pb.MountType_CACHE, pb.MountType_TMPFS:
			// Mounts of the build's own results, the client's secrets
			// and agents, BuildKit's cache, memory.
		default:
			return badBody("BuildKit LLB %s: op %d: unknown mount type %d", what, i, m.GetMountType())
		}
	}
	return nil
}

// inlineDockerfile returns the Dockerfile a frontend input holds when the
// input is one file named name made from nothing (buildx's `-f -`: a
// scratch FileOp mkfile), false for any other input.
func inlineDockerfile(def *pb.Definition, name string) ([]byte, bool, error) {
	var df []byte
	found := false
	for i, dt := range def.GetDef() {
		var op pb.Op
		if err := proto.Unmarshal(dt, &op); err != nil {
			return nil, false, badBody("BuildKit dockerfile input: op %d: cannot decode: %v", i, err)
		}
		if hasUnknownFields(op.ProtoReflect()) {
			return nil, false, nil
		}
		switch o := op.Op.(type) {
		case nil:
		case *pb.Op_File:
			actions := o.File.GetActions()
			if found || len(actions) != 1 || len(op.GetInputs()) != 0 {
				return nil, false, nil
			}
			mk := actions[0].GetMkfile()
			if mk == nil || path.Clean("/"+mk.GetPath()) != path.Clean("/"+name) {
				return nil, false, nil
			}
			df, found = mk.GetData(), true
		default:
			return nil, false, nil
		}
	}
	return df, found, nil
}

// hasUnknownFields reports whether m or any message in it has fields its
// generated type does not know: a newer client's, whose meaning dockgate
// cannot judge.
func hasUnknownFields(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	unknown := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				return true
			}
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				unknown = hasUnknownFields(mv.Message())
				return !unknown
			})
		case fd.IsList():
			if fd.Message() == nil {
				return true
			}
			for i := 0; i < v.List().Len() && !unknown; i++ {
				unknown = hasUnknownFields(v.List().Get(i).Message())
			}
		case fd.Message() != nil:
			unknown = hasUnknownFields(v.Message())
		}
		return !unknown
	})
	return unknown
}
