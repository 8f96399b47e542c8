package authz

// The owner fact (issue 7 part 2): for a tenant caller, a request that
// targets an existing container by the path variable {name} says whose
// container it is: "self" when its owner label is the caller's owner
// subject (Request.Owner), "other" when it is someone else's, "none" when
// it has no owner label (created outside dockgate, or by a caller who is
// not a tenant, such as the agent that holds the real socket). A container
// that does not exist gets no owner fact: dockerd answers 404 itself.
// Callers who are not tenants get no owner fact.
//
// The container is resolved as dockerd resolves it (name, full ID or ID
// prefix, through GET /containers/{name}/json); the request is still
// forwarded with the name as the client sent it (no full-ID rewrite yet).

// ownerTargets are the container actions whose route names an existing
// container in {name}: every container.* route with {name} but create,
// list and prune (which have none).
var ownerTargets = map[string]bool{
	"container.checkpoint.list":   true,
	"container.checkpoint.create": true,
	"container.checkpoint.delete": true,
	"container.archive.head":      true,
	"container.archive.get":       true,
	"container.archive.put":       true,
	"container.archive.copy":      true,
	"container.export":            true,
	"container.changes":           true,
	"container.inspect":           true,
	"container.top":               true,
	"container.logs":              true,
	"container.stats":             true,
	"container.attach":            true,
	"container.attach.ws":         true,
	"container.kill":              true,
	"container.pause":             true,
	"container.unpause":           true,
	"container.restart":           true,
	"container.start":             true,
	"container.stop":              true,
	"container.wait":              true,
	"container.resize":            true,
	"container.exec":              true,
	"container.rename":            true,
	"container.update":            true,
	"container.delete":            true,
}

// OwnerKind is the fact kind of the owner of the object a request targets.
const OwnerKind = "owner"

// ownerOf says whose an object with these labels is, for the owner subject
// owner of a tenant.
func ownerOf(owner string, labels map[string]string) string {
	v, ok := labels[OwnerLabel]
	switch {
	case !ok:
		return "none"
	case v == owner:
		return "self"
	default:
		return "other"
	}
}

// containerOwnerFacts adds the owner fact of a tenant's request that
// targets an existing container by {name}.
func containerOwnerFacts(x *extraction) error {
	if x.req.Owner == "" || !ownerTargets[x.m.Action] {
		return nil
	}
	name := x.m.Vars["name"]
	if name == "" {
		// dockerd finds no container with an empty name.
		return nil
	}
	in, err := x.inspector()
	if err != nil {
		return err
	}
	_, labels, found, err := in.ContainerOwner(x.ctx, name)
	if err != nil {
		return upstreamError("container "+name, err)
	}
	if !found {
		return nil
	}
	x.add(OwnerKind, ownerOf(x.req.Owner, labels))
	return nil
}
