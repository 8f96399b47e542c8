package authz

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/dockgate/dockgate/authz/policy"
)

// The owner fact (docs/tenancy.md): for a tenant caller,
// a request that names an existing object (a container, exec, volume,
// network or labelled image, in its path, query or body, and any image it
// deletes or untags) says whose it is: "self" when its owner label is the
// caller's owner subject (Request.Owner), "other" when it is someone
// else's, "none" when it has no owner label (created outside dockgate, or
// by a caller who is not a tenant, such as the agent that holds the real
// socket). An object that does not exist gets no owner fact: dockerd
// answers 404 itself. Callers who are not tenants get no owner fact.
//
// Objects are resolved as dockerd resolves them (its inspect endpoints),
// and containers and networks are forwarded by the full ID that was
// judged (pinPathVar), so that a rename or a new ID prefix in between
// cannot redirect the request.

// ownerTarget says which object a route names in a path variable, and
// whether the request is forwarded with that object's full ID.
type ownerTarget struct {
	kind, pathVar string
	pin           bool
	// unlabelledNone makes an image without an owner label "none" rather
	// than no fact: removing or untagging a shared base image breaks
	// every tenant that uses it, where reading or tagging it does not.
	unlabelledNone bool
	// query reads the owner facts of the objects the query names
	// (image.commit's container, image.save's images), before the one the
	// path names.
	query func(x *extraction) error
}

// The targets of the route table (routes.go): every container.* route with
// {name} but create, list and prune (which have none), the exec, volume and
// network routes with an ID or name, and the image routes that read, move
// or remove a named image.
var (
	containerTarget = ownerTarget{kind: ObjectContainer, pathVar: "name", pin: true}
	// Networks resolve by name, ID and ID prefix like containers.
	networkTarget = ownerTarget{kind: ObjectNetwork, pathVar: "id", pin: true}
	// Exec IDs and volume names are looked up exactly: nothing to pin.
	execTarget        = ownerTarget{kind: ObjectExec, pathVar: "name"}
	execInspectTarget = ownerTarget{kind: ObjectExec, pathVar: "id"}
	volumeTarget      = ownerTarget{kind: ObjectVolume, pathVar: "name"}
	// Image requests keep their name: a tag or push names the repository,
	// and deleting by name untags where deleting by ID removes.
	imageTarget = ownerTarget{kind: ObjectImage, pathVar: "name"}
	// image.save names images in its path and in its query (names).
	imageSaveTarget = ownerTarget{kind: ObjectImage, pathVar: "name", query: saveNamesOwner}
	// DELETE /images/{name} resolves name as inspect does (GetImage: a
	// reference, then an ID or ID prefix) and untags or removes that
	// image.
	imageDeleteTarget = ownerTarget{kind: ObjectImage, pathVar: "name", unlabelledNone: true}
	// image.commit names its container in the query only; it is a target
	// so that its caller's owner is known.
	commitTarget = ownerTarget{query: commitContainerOwner}
)

// predefinedNetworks are dockerd's own networks (runconfig's
// IsPreDefinedNetwork): shared by everyone, owned by no tenant, and
// inspected by clients such as testcontainers to find the host's address.
var predefinedNetworks = map[string]bool{"bridge": true, "host": true, "none": true, "default": true}

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

// ownerFacts adds the owner fact of a tenant's request that targets an
// existing object by its path (Route.target) or names containers and
// images in its query, and pins the object to its full ID. References in
// bodies are read by the extractor of each body (containerRef).
func ownerFacts(x *extraction) error {
	t := x.m.target
	if x.req.Owner == "" || t == nil {
		return nil
	}
	if t.query != nil {
		if err := t.query(x); err != nil {
			return err
		}
	}
	if t.kind == "" {
		return nil
	}
	name := x.m.Vars[t.pathVar]
	what := t.kind + " " + name
	if id, ok := x.pinned[t.pathVar]; ok && t.kind == ObjectContainer {
		// Already resolved and judged by its full ID (the host paths of
		// a start): ask about that same container, which the owner cache
		// can answer, rather than resolve the name a second time.
		name = id
	}
	if name == "" || t.kind == ObjectNetwork && predefinedNetworks[name] {
		// dockerd finds no object with an empty name.
		return nil
	}
	id, err := x.objectOwnerOf(t.kind, name, what, t.unlabelledNone)
	if err != nil {
		return err
	}
	if id == "" {
		x.notFound(t.kind, x.m.Vars[t.pathVar])
		return nil
	}
	if !t.pin {
		return nil
	}
	return x.pinPathVar(t.pathVar, id)
}

// notFoundMessages are dockerd's messages for an object it does not have.
var notFoundMessages = map[string]string{
	ObjectContainer: "No such container: %s",
	ObjectExec:      "No such exec instance: %s",
	ObjectImage:     "No such image: %s",
	ObjectVolume:    "get %s: no such volume",
	ObjectNetwork:   "network %s not found",
}

// notFound makes a tenant's request that names an object dockerd does
// not have answered as dockerd would answer it (404, on which clients
// fall back: `docker inspect NAME` tries a container, then an image),
// once its facts are all allowed; a refusal of one of them comes first.
// It is never forwarded by that name: another tenant could create an
// object of the name before dockerd acts, and the request would reach an
// object nobody judged.
func (x *extraction) notFound(kind, name string) {
	if x.req.missing != nil {
		return
	}
	msg, ok := notFoundMessages[kind]
	if !ok {
		msg = "no such object: %s"
	}
	x.req.missing = &RouteError{Status: http.StatusNotFound, Message: fmt.Sprintf(msg, name), Dockerd: true}
}

// commitContainerOwner: the container image.commit names in its query,
// forwarded by the full ID judged.
func commitContainerOwner(x *extraction) error {
	name, err := x.formValue("container")
	if err != nil || name == "" {
		return err
	}
	id, err := x.containerRef("commit container", name)
	if err != nil || id == "" {
		return err
	}
	return x.setFirstQueryValue("container", id)
}

// saveNamesOwner: the images image.save names in its query.
func saveNamesOwner(x *extraction) error {
	q, err := x.form()
	if err != nil {
		return err
	}
	for _, name := range q["names"] {
		if _, err := x.objectOwner(ObjectImage, name, "image "+name); err != nil {
			return err
		}
	}
	return nil
}

// containerRef adds the owner fact of a container a tenant's request names
// (in a body or query: VolumesFrom, a container: namespace, a link, the
// container a network connect names) and returns its full ID, "" when
// the caller is no tenant or no such container exists (dockerd refuses
// the request then).
func (x *extraction) containerRef(where, name string) (string, error) {
	return x.containerRefOf(where, name, name)
}

// containerRefOf is containerRef of the container lookup (a full ID
// already judged) that the request names as name.
func (x *extraction) containerRefOf(where, name, lookup string) (string, error) {
	if x.req.Owner == "" {
		return "", nil
	}
	id, err := x.objectOwner(ObjectContainer, lookup, where+" "+name)
	if err == nil && id == "" {
		x.notFound(ObjectContainer, name)
	}
	return id, err
}

// objectOwner resolves an object through dockerd and adds its owner fact.
// Images are owned only when they carry the owner label (built or
// committed by a tenant): base images belong to nobody and everybody.
func (x *extraction) objectOwner(kind, name, what string) (string, error) {
	return x.objectOwnerOf(kind, name, what, false)
}

// objectOwnerOf is objectOwner; with unlabelledNone an image without an
// owner label is "none" too, as every other kind of object is.
func (x *extraction) objectOwnerOf(kind, name, what string, unlabelledNone bool) (string, error) {
	in, err := x.inspector()
	if err != nil {
		return "", err
	}
	id, labels, found, err := in.ObjectOwner(x.ctx, kind, name)
	if err != nil {
		return "", upstreamError(what, err)
	}
	if !found {
		return "", nil
	}
	if _, labelled := labels[OwnerLabel]; kind != ObjectImage || labelled || unlabelledNone {
		o := ownerOf(x.req.Owner, labels)
		x.add(policy.OwnerKind, o)
		x.noteOwner(o, kind, what, id, labels)
	}
	return id, nil
}

// noteOwner says, for the refusal of an owner fact, which object it is
// (name and short ID) and whose. The first object of each value is the one
// named: the refusal names the first refused fact.
func (x *extraction) noteOwner(owner, kind, what, id string, labels map[string]string) {
	f := policy.Fact{Kind: policy.OwnerKind, Value: owner}
	if owner == "self" || x.req.notes[f] != "" {
		return
	}
	if short := shortID(id); short != "" && !strings.HasSuffix(what, " "+short) && !strings.HasSuffix(what, " "+id) {
		what += " (" + short + ")"
	}
	switch {
	case owner == "other" && labels[OwnerLabel] == "":
		x.req.note(f, what+" has an empty owner label, so it is no tenant's own")
	case owner == "other":
		x.req.note(f, what+" is owned by "+labels[OwnerLabel])
	case kind == ObjectImage:
		x.req.note(f, what+" has no owner label: it was pulled, loaded or made outside dockgate, and tenants share it")
	default:
		x.req.note(f, what+" was created outside dockgate, so no tenant owns it")
	}
}

// shortID is the 12-digit form of a full ID as docker prints it, "" for
// what is no hex ID (a volume's name).
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) < 12 {
		return ""
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ""
		}
	}
	return id[:12]
}
