package dockerd

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dockgate/dockgate/internal/dockerd/dockerdtest"
)

func TestProvenRepoDigests(t *testing.T) {
	const (
		idx    = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		config = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
		mfst   = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	)
	type pull = []string
	rec := func(id string, descriptor bool, pulled pull, digests ...string) imageRecord {
		im := imageRecord{ID: id, RepoDigests: digests}
		if descriptor {
			im.Descriptor = &struct {
				Digest string `json:"digest"`
			}{Digest: id}
		}
		if pulled != nil {
			im.Identity = &struct {
				Pull []struct {
					Repository string `json:"Repository"`
				} `json:"Pull"`
			}{}
			for _, r := range pulled {
				im.Identity.Pull = append(im.Identity.Pull, struct {
					Repository string `json:"Repository"`
				}{r})
			}
		}
		return im
	}
	for _, tc := range []struct {
		name         string
		im           imageRecord
		want, verify []string
	}{
		{"classic store: pulled", rec(config, false, nil, "reg/approved/app@"+mfst), []string{"reg/approved/app@" + mfst}, nil},
		{"classic store: nothing pulled", rec(config, false, nil), nil, nil},
		{"containerd store: a tag made here", rec(idx, true, pull{}, "reg/approved/app@"+idx, "ci.local/x@"+idx), nil, nil},
		{"containerd store: no Identity (API < 1.53)", rec(idx, true, nil, "reg/approved/app@"+idx), nil, nil},
		// Identity names candidates only: a BuildKit build FROM a local
		// image labels it as pulled from its name.
		{"containerd store: pulled from one of its names", rec(idx, true, pull{"reg/approved/app"}, "reg/approved/app@"+idx, "ci.local/x@"+idx), nil, []string{"reg/approved/app@" + idx}},
		{"containerd store: Docker Hub short names", rec(idx, true, pull{"docker.io/library/busybox"}, "busybox@"+idx), nil, []string{"busybox@" + idx}},
		{"containerd store: pulled from a repository it has no name in", rec(idx, true, pull{"reg/other/app"}, "reg/approved/app@"+idx), nil, nil},
		{"containerd store: a digested name that is not its ID", rec(idx, true, pull{"reg/approved/app"}, "reg/approved/app@"+mfst), nil, nil},
		{"containerd store without Descriptor (API < 1.48): digest is the ID", rec(idx, false, nil, "reg/approved/app@"+idx), nil, nil},
		// containerd records the registry's host without its port.
		{"containerd store: a registry with a port", rec(idx, true, pull{"127.0.0.1/approved/app"}, "127.0.0.1:5000/approved/app@"+idx, "ci.local/x@"+idx), nil, []string{"127.0.0.1:5000/approved/app@" + idx}},
		{"containerd store: another path on the host", rec(idx, true, pull{"127.0.0.1/other/app"}, "127.0.0.1:5000/approved/app@"+idx), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, verify := provenRepoDigests(tc.im)
			if !slices.Equal(got, tc.want) || !slices.Equal(verify, tc.verify) {
				t.Errorf("got %v (verify %v), want %v (verify %v)", got, verify, tc.want, tc.verify)
			}
		})
	}
}

// identityDockerd is dockerd 29 with the containerd image store: every
// name has a RepoDigest, and Identity says which were pulled. It answers
// Identity only to requests at API 1.53 or later, as dockerd does.
type identityDockerd struct {
	api string
	// serves: the registry serves the image under its approved name.
	serves bool
	mu     sync.Mutex
	paths  []string
}

func (f *identityDockerd) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.paths)
}

func (f *identityDockerd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.paths = append(f.paths, r.URL.Path)
	f.mu.Unlock()
	w.Header().Set("Api-Version", f.api)
	w.Header().Set("Content-Type", "application/json")
	const id = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	v := dockerdtest.VersionPrefix.FindString(r.URL.Path)
	switch p := strings.TrimPrefix(r.URL.Path, v); p {
	case "/_ping":
		_, _ = w.Write([]byte("OK"))
	case "/images/reg.example.com/approved/app:1/json":
		im := map[string]any{"Id": id, "Descriptor": map[string]any{"digest": id},
			"RepoTags":    []string{"reg.example.com/approved/app:1", "ci.local/x:1"},
			"RepoDigests": []string{"reg.example.com/approved/app@" + id, "ci.local/x@" + id}}
		if v >= "/v1.53" {
			im["Identity"] = map[string]any{"Pull": []map[string]string{{"Repository": "reg.example.com/approved/app"}}}
		}
		_ = json.NewEncoder(w).Encode(im)
	case "/distribution/reg.example.com/approved/app@" + id + "/json":
		if f.serves {
			_ = json.NewEncoder(w).Encode(map[string]any{"Descriptor": map[string]any{"digest": id, "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 405}})
			return
		}
		w.WriteHeader(404)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "manifest unknown"})
	default:
		w.WriteHeader(404)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "No such image"})
	}
}

func TestClientReadsIdentity(t *testing.T) {
	for _, tc := range []struct {
		name, api, wantPath string
		serves              bool
		want                int
	}{
		{"1.56, the registry serves it", "1.56", "/v1.53/images/reg.example.com/approved/app:1/json", true, 1},
		// Identity was forged (a BuildKit build FROM the local name): no proof.
		{"1.56, the registry does not serve it", "1.56", "/v1.53/images/reg.example.com/approved/app:1/json", false, 0},
		// An Engine of the containerd store before Identity: no proof.
		{"1.48", "1.48", "/v1.48/images/reg.example.com/approved/app:1/json", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &identityDockerd{api: tc.api, serves: tc.serves}
			in, err := New(dockerdtest.Serve(t, fake))
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			_, digests, tags, found, err := in.ImageProvenance(context.Background(), "reg.example.com/approved/app:1")
			if err != nil || !found || len(tags) != 2 {
				t.Fatalf("got %v %v %v %v", digests, tags, found, err)
			}
			if len(digests) != tc.want || (tc.want == 1 && !strings.HasPrefix(digests[0], "reg.example.com/approved/app@")) {
				t.Errorf("proven RepoDigests %v, want %d of reg.example.com/approved/app", digests, tc.want)
			}
			if asked := fake.asked(); !slices.Contains(asked, tc.wantPath) {
				t.Errorf("asked %v, want %s", asked, tc.wantPath)
			}
		})
	}
}
