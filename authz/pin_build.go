package authz

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/registry"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/opencontainers/go-digest"
)

// A classic build's FROM bases pinned to what was judged. The builder resolves each FROM name when it reaches that step, long
// after the decision; a re-tag in between would have it build on (and RUN
// the steps of) an image nobody judged. So every FROM whose base was found
// on the daemon while judging is forwarded as `FROM [flags] sha256:<ID>
// [AS name]`: the Dockerfile in the forwarded context is rewritten, line
// numbers kept, and the proxy forwards that context instead of the one
// received (Request.RewriteSpool). dockerd's classic builder looks an ID up
// like any reference (daemon GetImage), so the build is the same.
//
// A base not on the daemon when judged is pinned to the digest its
// registry serves under that name then (registryPin): forwarded as
// `FROM name@sha256:<digest>`, the builder pulls exactly that content, or
// uses a local image only if it is that content. Left by name, the
// builder would use whatever got the name locally in between (a re-tag, or
// Engine 29's non-atomic one, which leaves the name missing for a moment:
// the race that found this).
//
// Not pinned: every base of a build with pull=1 (the builder pulls each
// name again, and cannot pull an ID), and COPY --from images.

// basePin is one FROM instruction to forward pinned.
type basePin struct {
	start, end int // its lines in the Dockerfile, from 1
	flags      []string
	// id is the image ID judged, or for a base not on the daemon, ""
	// until registryPin sets the digest reference the registry serves.
	id, stage string
	// ref is the base as the FROM names it (ARGs expanded).
	ref string
}

// RegistryResolver asks a registry, through dockerd, which manifest it
// serves under a name (GET /distribution/{name}/json) with the caller's
// credentials for that registry (X-Registry-Auth, "" for none).
// *dockerd.Client implements it.
type RegistryResolver interface {
	RegistryDigest(ctx context.Context, ref, encodedAuth string) (digest.Digest, error)
}

// noteBuildBase records the FROM instruction n, whose base image the facts
// judged, to be forwarded pinned to the image ID it resolved to.
func (x *extraction) noteBuildBase(n *parser.Node, image, stage string, stages []string) {
	if image == "scratch" {
		return
	}
	for _, s := range stages {
		if s != "" && strings.EqualFold(s, image) {
			return
		}
	}
	x.basePins = append(x.basePins, basePin{start: n.StartLine, end: n.EndLine, flags: n.Flags, id: x.images[image], stage: stage, ref: image})
}

// pinBuildBases has the proxy forward the context with the Dockerfile at
// dfPath rewritten so that its FROM lines name the images judged.
func (x *extraction) pinBuildBases(q map[string][]string, dfPath string, df []byte) error {
	if len(x.basePins) == 0 || boolValue(first(q["pull"])) {
		return nil
	}
	for i := range x.basePins {
		if x.basePins[i].id != "" {
			continue
		}
		ref, err := x.registryPin(x.basePins[i].ref)
		if err != nil {
			return err
		}
		if ref == "" {
			return nil // explain: nothing is forwarded
		}
		x.basePins[i].id = ref
	}
	pinned, err := pinnedDockerfile(df, x.basePins)
	if err != nil {
		return err
	}
	f, size, err := x.spooledBody()
	if err != nil {
		return err
	}
	x.req.RewriteSpool = func(dst io.Writer) error {
		return rewriteContext(io.NewSectionReader(f, 0, size), dst, dfPath, pinned)
	}
	return nil
}

// registryPin returns the digest reference (name@sha256:…) the registry
// of a FROM base that is not on the daemon serves under its name now, and
// adds its image fact, so that a row pinning or revoking digests judges
// it. It asks with the caller's credentials for that registry from the
// build's X-Registry-Config. A registry that does not answer fails the
// build closed (502): the base cannot be pinned. "" when the inspector
// cannot ask registries (explain, which never forwards).
func (x *extraction) registryPin(base string) (string, error) {
	rr, ok := x.in.(RegistryResolver)
	if !ok {
		return "", nil
	}
	named, err := reference.ParseNormalizedNamed(base)
	if err != nil {
		return "", badBody("build: invalid FROM image %q: %v", base, err)
	}
	if c, ok := named.(reference.Canonical); ok {
		// Content-addressed already; dockerd did not have it.
		return c.String(), nil
	}
	named = reference.TagNameOnly(named)
	d, err := rr.RegistryDigest(x.ctx, named.String(), registryAuthFor(x.req.Header.Get("X-Registry-Config"), reference.Domain(named)))
	if err != nil {
		return "", &RouteError{Status: http.StatusBadGateway, Message: fmt.Sprintf("build: FROM %s is not on the daemon, and its registry did not say which image that name is (%v): pull it first, or build with --pull", base, err)}
	}
	c, err := reference.WithDigest(reference.TrimNamed(named), d)
	if err != nil {
		return "", &RouteError{Status: http.StatusBadGateway, Message: fmt.Sprintf("build: FROM %s: the registry answered an invalid digest %q", base, d)}
	}
	x.add("image", c.String())
	return c.String(), nil
}

// registryAuthFor picks the credentials for the registry at domain from a
// build's X-Registry-Config (base64url JSON: server address → AuthConfig,
// as the docker CLI sends it) and encodes them as an X-Registry-Auth
// value; "" when there are none (an anonymous lookup).
func registryAuthFor(config, domain string) string {
	if config == "" {
		return ""
	}
	raw, err := base64.URLEncoding.DecodeString(config)
	if err != nil {
		return ""
	}
	var auths map[string]registry.AuthConfig
	if json.Unmarshal(raw, &auths) != nil {
		return ""
	}
	for key, a := range auths {
		host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://"), "/")
		host, _, _ = strings.Cut(host, "/")
		if host == "index.docker.io" || host == "registry-1.docker.io" {
			host = "docker.io"
		}
		if host == domain {
			enc, err := registry.EncodeAuthConfig(a)
			if err != nil {
				return ""
			}
			return enc
		}
	}
	return ""
}

// boolValue is dockerd's httputils.BoolValue.
func boolValue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// pinnedDockerfile rewrites the FROM instructions pins name, each onto its
// first line (the lines it continued onto left empty, so that the
// builder's messages keep their line numbers), and checks that the result
// parses to the same instructions with the IDs as bases.
func pinnedDockerfile(df []byte, pins []basePin) ([]byte, error) {
	lines := bytes.SplitAfter(df, []byte("\n"))
	for _, p := range pins {
		if p.start < 1 || p.end < p.start || p.end > len(lines) {
			return nil, &RouteError{Status: http.StatusInternalServerError, Message: fmt.Sprintf("build: cannot pin the FROM on lines %d-%d of a Dockerfile of %d lines", p.start, p.end, len(lines))}
		}
		var b strings.Builder
		b.WriteString("FROM ")
		for _, f := range p.flags {
			b.WriteString(f + " ")
		}
		b.WriteString(p.id)
		if p.stage != "" {
			b.WriteString(" AS " + p.stage)
		}
		b.WriteString("\n")
		lines[p.start-1] = []byte(b.String())
		for i := p.start; i < p.end; i++ {
			lines[i] = []byte("\n")
		}
	}
	out := bytes.Join(lines, nil)
	if err := checkPinnedBases(df, out, pins); err != nil {
		return nil, &RouteError{Status: http.StatusInternalServerError, Message: "build: pinning the FROM images: " + err.Error()}
	}
	return out, nil
}

// checkPinnedBases parses both Dockerfiles: the same instructions, and
// each pinned FROM naming its ID.
func checkPinnedBases(before, after []byte, pins []basePin) error {
	a, err := parser.Parse(bytes.NewReader(before))
	if err != nil {
		return err
	}
	b, err := parser.Parse(bytes.NewReader(after))
	if err != nil {
		return err
	}
	if len(a.AST.Children) != len(b.AST.Children) {
		return fmt.Errorf("%d instructions became %d", len(a.AST.Children), len(b.AST.Children))
	}
	want := map[int]string{}
	for _, p := range pins {
		want[p.start] = p.id
	}
	for i, n := range b.AST.Children {
		if !strings.EqualFold(n.Value, a.AST.Children[i].Value) {
			return fmt.Errorf("instruction %d changed from %s to %s", i+1, a.AST.Children[i].Value, n.Value)
		}
		if id, ok := want[n.StartLine]; ok && (!strings.EqualFold(n.Value, "from") || n.Next == nil || n.Next.Value != id) {
			return fmt.Errorf("line %d does not start from %s", n.StartLine, id)
		}
	}
	return nil
}

// rewriteContext copies the build context src (compressed or not) to dst
// as a plain tar, with the file at dfPath replaced by df.
func rewriteContext(src io.Reader, dst io.Writer, dfPath string, df []byte) error {
	r, err := decompressed(src)
	if err != nil {
		return err
	}
	tr, tw := tar.NewReader(r), tar.NewWriter(dst)
	replaced := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return tarError(err)
		}
		if tarEntryPath(hdr.Name) == dfPath && hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(df))
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("build context: %w", err)
			}
			if _, err := tw.Write(df); err != nil {
				return fmt.Errorf("build context: %w", err)
			}
			replaced = true
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("build context: %s: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("build context: %s: %w", hdr.Name, err)
		}
	}
	if !replaced {
		return fmt.Errorf("build context: no %s to pin", dfPath)
	}
	return tw.Close()
}
