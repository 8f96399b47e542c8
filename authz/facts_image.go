package authz

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/opencontainers/go-digest"

	"github.com/dockgate/dockgate/authz/internal/strictjson"
)

// Image facts. Values are references normalized with
// github.com/distribution/reference as dockerd normalizes them:
// "busybox" is docker.io/library/busybox:latest, "registry:5000/a/b@sha256:…"
// keeps its digest. A reference dockerd would refuse is refused (400).

// idLike matches what dockerd's image lookup may also read as an image ID
// or ID prefix (daemon/images GetImage: digest set search after the name
// lookup fails): hex, optionally after "sha256:".
var idLike = regexp.MustCompile(`^(sha256:)?([0-9a-f]{1,64})$`)

// addImageInUse adds the image facts of a reference used to run or read an
// image (container create, the source of a tag, a service). An untagged
// name means :latest. A full ID is sha256:<hex>; a string that is also an
// ID prefix (all hex) yields both its name and sha256:<prefix>, since
// dockerd falls back to the ID when no such name exists.
func (x *extraction) addImageInUse(s string) error {
	if s == "" {
		return badBody("%s: empty image reference", x.m.Action)
	}
	ref, err := reference.ParseAnyReference(s)
	if err != nil {
		return badBody("invalid image reference %q: %v", s, err)
	}
	if _, named := ref.(reference.Named); !named {
		d, ok := ref.(reference.Digested)
		if !ok {
			return badBody("invalid image reference %q", s)
		}
		x.add("image", d.Digest().String())
		return nil
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return badBody("invalid image reference %q: %v", s, err)
	}
	x.add("image", reference.TagNameOnly(named).String())
	if m := idLike.FindStringSubmatch(s); m != nil {
		x.add("image", "sha256:"+m[2])
	}
	return nil
}

// ImageTargetKind is the fact kind of a name a request gives an image
// (tag, commit, import, load, build t= and outputs). It is not the image
// kind: a row that lets a caller pull and run from a namespace must not let
// it put names there, or it could mint "approved" names for any content.
const ImageTargetKind = "image-target"

// addImageName adds the image-target fact of a name an image will be given
// (tag target, commit, import, build t=, a legacy load "repositories"
// entry): repo, with tag when tag is set, and :latest when neither names
// one (the reference store's AddTag adds it).
func (x *extraction) addImageName(repo, tag string) error {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return badBody("invalid repository name %q: %v", repo, err)
	}
	if _, canonical := named.(reference.Canonical); canonical {
		return badBody("cannot name an image with a digest reference %q", repo)
	}
	if tag != "" {
		tagged, err := reference.WithTag(reference.TrimNamed(named), tag)
		if err != nil {
			return badBody("invalid tag %q: %v", tag, err)
		}
		named = tagged
	}
	x.add(ImageTargetKind, reference.TagNameOnly(named).String())
	return nil
}

// addImageTransfer adds the image fact of a pull or push: fromImage (or
// the path name) with tag, where the tag may be a digest. Without any tag
// dockerd transfers every tag of the repository (pull -a), so the value is
// the bare repository name: a policy that allows only some tags does not
// allow it.
func (x *extraction) addImageTransfer(image, tag string) error {
	_, err := x.addImageTransferRef(image, tag)
	return err
}

// addImageTransferRef is addImageTransfer, returning the reference.
func (x *extraction) addImageTransferRef(image, tag string) (reference.Named, error) {
	// daemon/images PullImage: "pull -a" may send a trailing ':'.
	image = strings.TrimSuffix(image, ":")
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, badBody("invalid image reference %q: %v", image, err)
	}
	if tag != "" {
		if dgst, derr := digest.Parse(tag); derr == nil {
			named, err = reference.WithDigest(reference.TrimNamed(named), dgst)
		} else {
			named, err = reference.WithTag(named, tag)
		}
		if err != nil {
			return nil, badBody("invalid tag %q: %v", tag, err)
		}
	}
	x.add("image", named.String())
	return named, nil
}

// imagePullFacts: POST /images/create?fromImage=&tag= (pull).
func imagePullFacts(x *extraction) error {
	image, err := x.formValue("fromImage")
	if err != nil {
		return err
	}
	if image == "" {
		// The route was named from the query; dockerd decides pull or
		// import on the merged form, where a form body comes first.
		return badBody("a form body makes this pull an import; send the parameters in the query")
	}
	tag, err := x.formValue("tag")
	if err != nil {
		return err
	}
	named, err := x.addImageTransferRef(image, tag)
	if err != nil {
		return err
	}
	x.addPullSignatures(named)
	return nil
}

// imageImportFacts: POST /images/create?fromSrc=&repo=&tag= (import). The
// image-target fact is the name the imported image gets, if any.
func imageImportFacts(x *extraction) error {
	q, err := x.form()
	if err != nil {
		return err
	}
	if q.Get("fromImage") != "" {
		return badBody("a form body makes this import a pull; send the parameters in the query")
	}
	if err := x.addCreatedImage("import", q); err != nil {
		return err
	}
	return x.labelByChanges()
}

// distributionInspectFacts: GET /distribution/{name}/json, which makes
// dockerd fetch the manifest of name from its registry: the image fact of
// that reference, read as dockerd's handler reads it (ParseAnyReference,
// :latest when untagged), so that a caller reaches only registries and
// repositories it may pull from. A bare image ID names no registry (dockerd
// answers "no manifest found for full image ID"); it is the ID's image
// fact, as elsewhere.
func distributionInspectFacts(x *extraction) error {
	s := x.m.Vars["name"]
	ref, err := reference.ParseAnyReference(s)
	if err != nil {
		return badBody("invalid image reference %q: %v", s, err)
	}
	switch r := ref.(type) {
	case reference.Named:
		x.add("image", reference.TagNameOnly(r).String())
	case reference.Digested:
		x.add("image", r.Digest().String())
	default:
		return badBody("invalid image reference %q", s)
	}
	return nil
}

// imagePushFacts: POST /images/{name}/push?tag=.
func imagePushFacts(x *extraction) error {
	tag, err := x.formValue("tag")
	if err != nil {
		return err
	}
	return x.addImageTransfer(x.m.Vars["name"], tag)
}

// imageTagFacts: POST /images/{name}/tag?repo=&tag=: the source image (an
// image fact) and the new name (an image-target fact).
func imageTagFacts(x *extraction) error {
	if err := x.addImageInUse(x.m.Vars["name"]); err != nil {
		return err
	}
	repo, tag, err := x.repoTag()
	if err != nil {
		return err
	}
	if err := x.addImageName(repo, tag); err != nil {
		return err
	}
	return x.pinImagePathVar("name")
}

// imageCommitFacts: POST /commit?container=&repo=&tag=, body a container
// Config decoded by the create decoder (runconfig.DecodeConfig); an empty
// body is allowed.
func imageCommitFacts(x *extraction) error {
	body, err := x.jsonBody()
	if err != nil {
		return err
	}
	if len(body) > 0 {
		var w container.CreateRequest
		if err := decodeStrictJSON(body, &w, strictjson.ContainerCreate()); err != nil {
			return err
		}
		if w.Config != nil {
			if err := checkOwnerLabels("commit config Labels", w.Config.Labels); err != nil {
				return err
			}
		}
	}
	q, err := x.form()
	if err != nil {
		return err
	}
	if err := x.addCreatedImage("commit", q); err != nil {
		return err
	}
	return x.labelByChanges()
}

// buildFacts: POST /build. The body is the build context; what the build
// may do is in the query (api/server/router/build newImageBuildOptions):
// networkmode, remote, t, cachefrom, cgroupparent, outputs.
func buildFacts(x *extraction) error {
	q, err := x.form()
	if err != nil {
		return err
	}
	switch mode := q.Get("networkmode"); {
	case mode == "" || mode == "default" || mode == "bridge" || mode == "none":
	case mode == "host":
		x.add("build", "network=host")
	case strings.HasPrefix(mode, "container:"):
		// The classic builder runs its steps in that container's
		// network namespace.
		x.add("build", "network=container")
		if name := strings.TrimPrefix(mode, "container:"); name != "" {
			id, err := x.containerRef("build networkmode", name)
			if err != nil {
				return err
			}
			if id != "" {
				if err := x.setFirstQueryValue("networkmode", "container:"+id); err != nil {
					return err
				}
			}
		}
	default:
		x.add("build", "network="+mode)
	}
	// remote=client-session is BuildKit's "the context comes over the
	// session" (builder/remotecontext ClientSessionRemote), and with
	// BuildKit remote=upload-request "another request uploads it"
	// (builder-next): neither is a fetch.
	if r := q.Get("remote"); r != "" && r != "client-session" && !(r == "upload-request" && q.Get("version") == "2") {
		x.add("build", "remote-context")
	}
	if err := checkOwnerLabelsJSON("build labels", q.Get("labels")); err != nil {
		return err
	}
	if err := x.labelBuild(q.Get("labels")); err != nil {
		return err
	}
	if cg := q.Get("cgroupparent"); cg != "" {
		x.add("cgroup-parent", cg)
	}
	// sanitizeRepoAndTags: empty names are skipped, digests refused.
	for _, t := range q["t"] {
		if t == "" {
			continue
		}
		if err := x.addImageName(t, ""); err != nil {
			return err
		}
	}
	if raw := q.Get("cachefrom"); raw != "" {
		var refs []string
		if err := json.Unmarshal([]byte(raw), &refs); err != nil {
			return badBody("invalid cachefrom: %v", err)
		}
		for _, r := range refs {
			if err := x.addImageInUse(r); err != nil {
				return err
			}
		}
	}
	if raw := q.Get("outputs"); raw != "" {
		outs, err := buildOutputs(raw)
		if err != nil {
			return err
		}
		for _, o := range outs {
			x.add("build", "output="+o.Type)
			// image outputs name (and may push) the result.
			for _, n := range strings.Split(o.Attrs["name"], ",") {
				if n == "" {
					continue
				}
				if err := x.addImageName(n, ""); err != nil {
					return err
				}
			}
		}
	}
	return x.dockerfileFacts(q)
}

// buildOutput is one entry of a build's outputs parameter (API 1.40 on).
type buildOutput struct {
	Type  string
	Attrs map[string]string
}

// buildOutputs decodes a build's outputs parameter.
func buildOutputs(raw string) ([]buildOutput, error) {
	var outs []buildOutput
	if err := json.Unmarshal([]byte(raw), &outs); err != nil {
		return nil, badBody("invalid outputs: %v", err)
	}
	return outs, nil
}

// addImageRun adds the facts of an image that a container (or a service's
// task) would run, judged by provenance (BRIEF §3, §7 item 7): dockerd is
// asked which image the reference resolves to (name first, then ID
// prefix, as container create resolves it), and an `image` fact is granted
// only for a repository the image's content is proven to come from: a
// RepoDigest of that repository, which only a pull from (or a push to) the
// registry records. A name the image carries without such proof (tagged,
// built, loaded, imported or committed here) is a `local-image` fact
// instead.
//
//   - By name (repo:tag): `image repo:tag` and `image repo@sha256:…` for
//     each RepoDigest of repo when there is one, else `local-image
//     repo:tag`.
//   - By digest reference (repo@sha256:…): dockerd finds it only through a
//     RepoDigest, so it is `image repo@sha256:…`.
//   - By full ID or ID prefix: `image repo@sha256:…` for every RepoDigest
//     (each must be allowed), else `local-image sha256:<full ID>`.
//   - Not on the daemon: the `image` facts of the name as requested
//     (addImageInUse); create fails, and a service's nodes pull it.
//
// The image a name points to may change between this question and
// dockerd's act; what it resolved to here is noted (noteImage), and the
// request is pinned to it or checked again at the act (pin_image.go).
func (x *extraction) addImageRun(s string) error {
	if s == "" {
		return badBody("%s: empty image reference", x.m.Action)
	}
	ref, err := reference.ParseAnyReference(s)
	if err != nil {
		return badBody("invalid image reference %q: %v", s, err)
	}
	if x.buildKitResolves() {
		x.addBuildKitImageSignature(s)
	}
	in, err := x.inspector()
	if err != nil {
		return err
	}
	id, repoDigests, repoTags, found, err := in.ImageProvenance(x.ctx, s)
	if err != nil {
		return upstreamError("image "+s, err)
	}
	x.noteImage(s, id, found)
	if !found {
		x.addAbsentImageSignature(s)
		return x.addImageInUse(s)
	}
	var proofs []reference.Canonical
	for _, rd := range repoDigests {
		n, err := reference.ParseNormalizedNamed(rd)
		if err != nil {
			continue
		}
		if c, ok := n.(reference.Canonical); ok {
			proofs = append(proofs, c)
		}
	}
	if _, isNamed := ref.(reference.Named); isNamed {
		named, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			return badBody("invalid image reference %q: %v", s, err)
		}
		if resolvedByName(named, repoTags, proofs) {
			repo := named.Name()
			var matching []reference.Canonical
			for _, p := range proofs {
				if p.Name() == repo {
					matching = append(matching, p)
				}
			}
			value := reference.TagNameOnly(named).String()
			if len(matching) == 0 {
				x.add("local-image", value)
				x.addLocalImageSignature(value)
				return nil
			}
			x.add("image", value)
			for _, p := range matching {
				x.add("image", p.String())
			}
			if !x.buildKitResolves() {
				x.addSignatures(matching)
			}
			return nil
		}
	}
	// Resolved by ID or ID prefix.
	if len(proofs) == 0 {
		x.add("local-image", id)
		x.addLocalImageSignature(id)
		return nil
	}
	for _, p := range proofs {
		x.add("image", p.String())
	}
	if !x.buildKitResolves() {
		x.addSignatures(proofs)
	}
	return nil
}

// resolvedByName reports whether dockerd's lookup of named finds the image
// through its name (reference store) rather than as an ID prefix: a digest
// reference through a RepoDigest, any other name through a RepoTag
// (":latest" when untagged).
func resolvedByName(named reference.Named, repoTags []string, proofs []reference.Canonical) bool {
	if c, ok := named.(reference.Canonical); ok {
		want := reference.TrimNamed(named).Name() + "@" + c.Digest().String()
		for _, p := range proofs {
			if p.String() == want {
				return true
			}
		}
		return false
	}
	want := reference.TagNameOnly(named).String()
	for _, t := range repoTags {
		n, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			continue
		}
		if n.String() == want {
			return true
		}
	}
	return false
}

// addCreatedImage judges what an import or a commit makes: its Dockerfile
// `changes` may not set the owner label, and the name it gives the image
// with repo= and tag=, if any, is an image-target fact.
func (x *extraction) addCreatedImage(what string, q url.Values) error {
	if err := checkOwnerChanges(what+" changes", q["changes"]); err != nil {
		return err
	}
	repo, tag, err := x.repoTag()
	if err != nil || repo == "" {
		return err
	}
	return x.addImageName(repo, tag)
}

// repoTag reads the repo= and tag= parameters that name the image an
// import, a commit or a tag creates.
func (x *extraction) repoTag() (repo, tag string, err error) {
	if repo, err = x.formValue("repo"); err != nil {
		return "", "", err
	}
	tag, err = x.formValue("tag")
	return repo, tag, err
}
