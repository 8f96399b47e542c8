package authz

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
	"github.com/dockgate/dockgate/internal/dockerd/dockerdtest"
)

// The facts through the real dockerd client, against a fake dockerd: what
// the client answers is what the facts read, and its errors become the
// statuses the request is refused with.
func TestFactsThroughDockerdClient(t *testing.T) {
	in, err := dockerd.New(dockerdtest.Serve(t, &dockerdtest.Objects{}))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx := context.Background()

	for _, tc := range []struct {
		name, kind, object string
		status             int
		message            string
	}{
		{"network name two networks share", ObjectNetwork, "reaper_default", http.StatusBadRequest, "network reaper_default is ambiguous (2 matches found based on name)"},
		{"conflict", ObjectVolume, "busy", http.StatusConflict, "volume is in use"},
	} {
		t.Run("dockerd's answer to an owner lookup: "+tc.name, func(t *testing.T) {
			_, _, found, err := in.ObjectOwner(ctx, tc.kind, tc.object)
			if found || err == nil {
				t.Fatalf("got found=%v err=%v, want dockerd's %d %q", found, err, tc.status, tc.message)
			}
			re, ok := upstreamError(tc.kind+" "+tc.object, err).(*RouteError)
			if !ok || re.Status != tc.status || re.Message != tc.message || !re.Dockerd {
				t.Fatalf("answered %#v, want dockerd's %d %q", re, tc.status, tc.message)
			}
		})
	}
	t.Run("a 500 is no answer to pass on", func(t *testing.T) {
		_, _, _, err := in.ObjectOwner(ctx, ObjectContainer, "broken")
		if re, ok := upstreamError("container broken", err).(*RouteError); !ok || re.Status != http.StatusBadGateway {
			t.Fatalf("answered %#v, want 502", re)
		}
	})
	t.Run("a name the client does not send is a malformed request", func(t *testing.T) {
		for _, c := range []struct {
			kind, name, message string
		}{
			{ObjectNetwork, "a/b", `invalid network name "a/b"`},
			{ObjectVolume, "../x", `invalid volume name "../x"`},
			{ObjectImage, "Upper", `invalid image reference "Upper": invalid reference format: repository name (library/Upper) must be lowercase`},
		} {
			_, _, _, err := in.ObjectOwner(ctx, c.kind, c.name)
			re, ok := upstreamError(c.kind+" "+c.name, err).(*RouteError)
			if !ok || re.Status != http.StatusBadRequest || re.Message != c.message || re.Dockerd {
				t.Errorf("%s %q: answered %#v, want dockgate's 400 %q", c.kind, c.name, re, c.message)
			}
		}
	})
	t.Run("run facts through the real client", func(t *testing.T) {
		extract := newExtractor(fakeHost(t))
		for ref, want := range map[string]string{
			"reg.example.com/approved/app:1": "image reg.example.com/approved/app:1",
			"mine:1":                         "local-image docker.io/library/mine:1",
		} {
			got, err := runFactCase(t, NewRouter(), extract, in, factCase{target: createTarget, body: `{"Image":"` + ref + `"}`})
			if err != nil || len(got) == 0 || got[0].Kind+" "+got[0].Value != want {
				t.Errorf("%s: got %v %v, want %s first", ref, got, err, want)
			}
		}
	})
	t.Run("facts through the real client", func(t *testing.T) {
		extract := newExtractor(fakeHost(t))
		got, err := runFactCase(t, NewRouter(), extract, in, factCase{target: createTarget, body: create(`{"VolumesFrom":["builder"],"Binds":["bindvol:/d"]}`)})
		if err != nil {
			t.Fatal(err)
		}
		want := []policy.Fact{{Kind: "image", Value: "docker.io/library/busybox:latest"}, {Kind: "bind", Value: "/etc"}, {Kind: "bind", Value: "/srv/ci-cache"}}
		if len(got) != len(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
	})
}

func TestDockerdUnreachable(t *testing.T) {
	in, err := dockerd.New("unix://" + filepath.Join(t.TempDir(), "missing.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	extract := newExtractor(fakeHost(t))
	_, err = runFactCase(t, NewRouter(), extract, in, factCase{target: createTarget, body: create(`{"Binds":["v:/d"]}`)})
	var re *RouteError
	if !errors.As(err, &re) || re.Status != http.StatusBadGateway {
		t.Fatalf("want a 502 refusal, got %v", err)
	}
}
