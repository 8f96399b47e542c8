package authz

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

type tarEntry struct {
	name string
	body string
	typ  byte // tar.TypeReg when 0
	link string
}

func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Linkname: e.link}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func xzed(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// spooledFacts runs the extractor on a request whose body is spooled to a
// file, as the proxy spools it.
func spooledFacts(t *testing.T, target string, body []byte) ([]string, error) {
	t.Helper()
	u := parseTarget(t, target)
	m, err := NewRouter().Route(http.MethodPost, u)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Spool {
		t.Fatalf("%s: route does not spool", target)
	}
	req := &Request{Method: http.MethodPost, URL: u, Header: http.Header{"Content-Type": {"application/x-tar"}}, Caller: "user:test"}
	if body != nil {
		f, err := os.Create(filepath.Join(t.TempDir(), "body"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(body); err != nil {
			t.Fatal(err)
		}
		req.BodyFile, req.BodySize = f, int64(len(body))
	}
	facts, err := newExtractor(fakeHost(t))(context.Background(), m, req, newFakeInspector())
	var have []string
	for _, f := range facts {
		have = append(have, f.Kind+" "+f.Value)
	}
	return have, err
}

func TestImageLoadFacts(t *testing.T) {
	const loadTarget = "/v1.41/images/load?quiet=1"
	layer := tarEntry{name: "abc/layer.tar", body: "layer bytes"}
	manifest := tarEntry{name: "manifest.json", body: `[{"Config":"c.json","RepoTags":["reg.example.com/approved/app:1","evil"],"Layers":["abc/layer.tar"]}]`}
	for _, tc := range []struct {
		name   string
		body   []byte
		want   []string
		status int
	}{
		{name: "manifest RepoTags", body: makeTar(t, layer, manifest), want: []string{"image-target reg.example.com/approved/app:1", "image-target docker.io/library/evil:latest"}},
		{name: "gzip-compressed", body: gzipped(t, makeTar(t, layer, manifest)), want: []string{"image-target reg.example.com/approved/app:1", "image-target docker.io/library/evil:latest"}},
		{name: "manifest at the end, under ./", body: makeTar(t, layer, tarEntry{name: "./manifest.json", body: manifest.body}), want: []string{"image-target reg.example.com/approved/app:1", "image-target docker.io/library/evil:latest"}},
		{name: "manifest spelled with ..", body: makeTar(t, layer, tarEntry{name: "x/../manifest.json", body: manifest.body}), want: []string{"image-target reg.example.com/approved/app:1", "image-target docker.io/library/evil:latest"}},
		{name: "legacy repositories file", body: makeTar(t, layer, tarEntry{name: "repositories", body: `{"reg.example.com/approved/app":{"2":"abc"}}`}), want: []string{"image-target reg.example.com/approved/app:2"}},
		{name: "OCI index annotations", body: makeTar(t, tarEntry{name: "oci-layout", body: `{"imageLayoutVersion":"1.0.0"}`}, tarEntry{name: "index.json", body: `{"schemaVersion":2,"manifests":[{"annotations":{"io.containerd.image.name":"reg.example.com/approved/app:3","org.opencontainers.image.ref.name":"3"}}]}`}),
			want: []string{"image-target reg.example.com/approved/app:3"}},
		{name: "OCI ref.name without the containerd name", body: makeTar(t, tarEntry{name: "index.json", body: `{"schemaVersion":2,"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"reg.example.com/approved/app:4"}}]}`}),
			want: []string{"image-target reg.example.com/approved/app:4"}},
		{name: "OCI bare tag ref.name alone loads as a name", body: makeTar(t, tarEntry{name: "index.json", body: `{"schemaVersion":2,"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"7"}}]}`}),
			want: []string{"image-target docker.io/library/7:latest"}},
		{name: "no names: no image fact", body: makeTar(t, layer, tarEntry{name: "manifest.json", body: `[{"Config":"c.json","Layers":["abc/layer.tar"]}]`}), want: nil},
		{name: "no body: no fact", body: nil, want: nil},
		{name: "two manifests refused", body: makeTar(t, manifest, tarEntry{name: "./manifest.json", body: `[]`}), status: 400},
		{name: "manifest as a symlink refused", body: makeTar(t, tarEntry{name: "other.json", body: manifest.body}, tarEntry{name: "manifest.json", typ: tar.TypeSymlink, link: "other.json"}), status: 400},
		{name: "manifest as a hard link refused", body: makeTar(t, tarEntry{name: "other.json", body: manifest.body}, tarEntry{name: "manifest.json", typ: tar.TypeLink, link: "other.json"}), status: 400},
		{name: "invalid RepoTag refused", body: makeTar(t, tarEntry{name: "manifest.json", body: `[{"RepoTags":["Evil:1"]}]`}), status: 400},
		{name: "malformed manifest refused", body: makeTar(t, tarEntry{name: "manifest.json", body: `[{"RepoTags":`}), status: 400},
		{name: "xz-compressed", body: xzed(t, makeTar(t, layer, manifest)), want: []string{"image-target reg.example.com/approved/app:1", "image-target docker.io/library/evil:latest"}},
		{name: "zstd-compressed", body: zstded(t, makeTar(t, layer, manifest)), want: []string{"image-target reg.example.com/approved/app:1", "image-target docker.io/library/evil:latest"}},
		{name: "malformed xz refused", body: append([]byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, make([]byte, 100)...), status: 400},
		{name: "malformed zstd refused", body: append([]byte{0x28, 0xb5, 0x2f, 0xfd}, make([]byte, 100)...), status: 400},
		{name: "truncated tar refused", body: makeTar(t, layer, manifest)[:1024+512+20], status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			have, err := spooledFacts(t, loadTarget, tc.body)
			if tc.status != 0 {
				var re *RouteError
				if !errors.As(err, &re) || re.Status != tc.status {
					t.Fatalf("want refusal %d, got %v, %v", tc.status, have, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(have, tc.want) {
				t.Fatalf("facts %q, want %q", have, tc.want)
			}
		})
	}
}
