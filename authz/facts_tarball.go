package authz

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Tarball bodies (image load, build contexts) arrive spooled to a file
// (Match.Spool, Request.BodyFile). They are read here as dockerd reads them:
// decompressed the way archive.DecompressStream decompresses (gzip, bzip2,
// xz, zstd), then walked with archive/tar, the reader dockerd's Untar uses.
// A body dockgate could not decompress would be a body it forwards unread,
// so every compression dockerd accepts is read here.

// maxTarMetaFile bounds a metadata file read out of a tarball
// (manifest.json, index.json, repositories, a Dockerfile).
const maxTarMetaFile = 16 << 20

// spooledTar opens the spooled body as a tar stream; ok is false when the
// request has no body.
func (x *extraction) spooledTar() (tr *tar.Reader, ok bool, err error) {
	f, size, err := x.spooledBody()
	if err != nil || f == nil || size == 0 {
		return nil, false, err
	}
	r, err := decompressed(io.NewSectionReader(f, 0, size))
	if err != nil {
		return nil, false, err
	}
	return tar.NewReader(r), true, nil
}

// decompressed detects the compression by its magic bytes, as dockerd's
// archive.DetectCompression does.
func decompressed(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b, 0x08}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, badBody("malformed gzip body: %v", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, badBody("malformed xz body: %v", err)
		}
		return xr, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		// Concurrency 1 decodes in the caller's goroutine, so the decoder
		// holds nothing once the reader is dropped; the window bound keeps
		// a hostile frame header from claiming gigabytes.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return nil, badBody("malformed zstd body: %v", err)
		}
		return zr, nil
	}
	return br, nil
}

// tarEntryPath is where dockerd's Untar puts an entry, relative to the
// directory it extracts into: leading slashes and ".." are cleaned away.
func tarEntryPath(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// tarError turns a failure to read a tarball into a refusal: dockerd
// would fail on it too, and what it would make of it is unknown.
func tarError(err error) error {
	var re *RouteError
	if errors.As(err, &re) {
		return re
	}
	return badBody("malformed tar body: %v", err)
}

// readTarFile reads the current entry, which must be a regular file of
// at most maxTarMetaFile bytes: a link or directory under a name dockerd
// reads would make it read something else.
func readTarFile(tr *tar.Reader, hdr *tar.Header, what string) ([]byte, error) {
	if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
		return nil, badBody("%s in the tarball is not a regular file", what)
	}
	if hdr.Size > maxTarMetaFile {
		return nil, &RouteError{Status: http.StatusRequestEntityTooLarge, Message: what + " in the tarball is larger than " + formatSize(maxTarMetaFile)}
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return nil, tarError(err)
	}
	return b, nil
}

func formatSize(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// imageLoadFacts: POST /images/load, body a tarball of images as `docker
// save` writes it. The names the load would create are image-target facts
// (a policy keeps its approved namespace write-protected with them): the
// RepoTags of manifest.json, the repo:tag pairs of the legacy
// "repositories" file (which dockerd 20.10 reads when manifest.json is
// absent), and the image names annotated in an OCI index.json
// (io.containerd.image.name, or else org.opencontainers.image.ref.name),
// which daemons with the containerd image store read. Every source is read whatever the daemon, so that no spelling of
// the tarball names an image unseen. A loaded image has no registry
// provenance: running it is a local-image fact.
func imageLoadFacts(x *extraction) error {
	tr, ok, err := x.spooledTar()
	if err != nil || !ok {
		return err
	}
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return tarError(err)
		}
		name := tarEntryPath(hdr.Name)
		switch name {
		case "manifest.json", "repositories", "index.json":
		default:
			continue
		}
		if seen[name] {
			// Untar would keep the last one; a tarball that says two
			// things is refused rather than guessed at.
			return badBody("image.load: the tarball has %s twice", name)
		}
		seen[name] = true
		b, err := readTarFile(tr, hdr, name)
		if err != nil {
			return err
		}
		switch name {
		case "manifest.json":
			err = x.loadManifestFacts(b)
		case "repositories":
			err = x.loadRepositoriesFacts(b)
		case "index.json":
			err = x.loadOCIIndexFacts(b)
		}
		if err != nil {
			return err
		}
	}
}

// loadManifestFacts: manifest.json, [{"Config":…,"RepoTags":[…],"Layers":[…]}].
func (x *extraction) loadManifestFacts(b []byte) error {
	var manifest []struct{ RepoTags []string }
	if err := json.Unmarshal(b, &manifest); err != nil {
		return badBody("image.load: malformed manifest.json: %v", err)
	}
	for _, m := range manifest {
		for _, t := range m.RepoTags {
			if err := x.addLoadedName(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadRepositoriesFacts: the legacy {"repo":{"tag":"id"}}.
func (x *extraction) loadRepositoriesFacts(b []byte) error {
	var repos map[string]map[string]string
	if err := json.Unmarshal(b, &repos); err != nil {
		return badBody("image.load: malformed repositories file: %v", err)
	}
	for repo, tags := range repos {
		for tag := range tags {
			if err := x.addImageName(repo, tag); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadOCIIndexFacts: index.json's manifests and their name annotations.
func (x *extraction) loadOCIIndexFacts(b []byte) error {
	var index struct {
		Manifests []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return badBody("image.load: malformed index.json: %v", err)
	}
	for _, m := range index.Manifests {
		// containerd's import (Engine 29's load) names the image by
		// io.containerd.image.name when it is there and reads nothing
		// else of the entry: `docker save` writes the tag alone ("1") as
		// its ref.name beside it, which names nothing.
		if n := m.Annotations["io.containerd.image.name"]; n != "" {
			if err := x.addLoadedName(n); err != nil {
				return err
			}
			continue
		}
		// Without it, ref.name is the name, even a bare tag ("7" loads as
		// 7:latest): anything that parses as a name is judged as one.
		// What cannot be a name cannot create one.
		if n := m.Annotations["org.opencontainers.image.ref.name"]; n != "" {
			if _, err := reference.ParseNormalizedNamed(n); err == nil {
				if err := x.addLoadedName(n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// addLoadedName adds the image-target fact of a name a load creates: a
// digest reference keeps its digest, any other name its tag (:latest if
// none).
func (x *extraction) addLoadedName(s string) error {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return badBody("image.load: invalid image name %q: %v", s, err)
	}
	x.add(ImageTargetKind, reference.TagNameOnly(named).String())
	return nil
}
