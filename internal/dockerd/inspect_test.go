package dockerd

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/dockerd/dockerdtest"
)

func TestClientInspect(t *testing.T) {
	fake := &dockerdtest.Objects{}
	in, err := New(dockerdtest.Serve(t, fake))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx := context.Background()

	t.Run("volume options", func(t *testing.T) {
		driver, opts, found, err := in.VolumeOptions(ctx, "bindvol")
		if err != nil || !found || driver != "local" || opts["device"] != "/etc" || opts["o"] != "bind" {
			t.Fatalf("got %q %v %v %v", driver, opts, found, err)
		}
	})
	t.Run("volume not found", func(t *testing.T) {
		_, _, found, err := in.VolumeOptions(ctx, "nope")
		if err != nil || found {
			t.Fatalf("got found=%v err=%v", found, err)
		}
	})
	t.Run("container mounts", func(t *testing.T) {
		m, found, err := in.ContainerMounts(ctx, "builder")
		if err != nil || !found || m.ID != "abc" || strings.Join(m.Binds, ",") != "/srv/ci-cache" || strings.Join(m.Volumes, ",") != "bindvol" || strings.Join(m.Devices, ",") != "/dev/fuse" {
			t.Fatalf("got %+v %v %v", m, found, err)
		}
	})
	t.Run("container not found", func(t *testing.T) {
		_, found, err := in.ContainerMounts(ctx, "nope")
		if err != nil || found {
			t.Fatalf("got found=%v err=%v", found, err)
		}
	})
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
			var da *Answer
			if found || !errors.As(err, &da) || da.Status != tc.status || da.Message != tc.message {
				t.Fatalf("got found=%v err=%v (%#v), want dockerd's %d %q", found, err, da, tc.status, tc.message)
			}
		})
	}
	t.Run("a 500 is no answer to pass on", func(t *testing.T) {
		_, _, _, err := in.ObjectOwner(ctx, ObjectContainer, "broken")
		var da *Answer
		if err == nil || errors.As(err, &da) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("daemon error is an error", func(t *testing.T) {
		_, found, err := in.ContainerMounts(ctx, "broken")
		if err == nil || found {
			t.Fatalf("got found=%v err=%v", found, err)
		}
	})
	t.Run("service previous spec", func(t *testing.T) {
		spec, found, err := in.ServicePreviousSpec(ctx, "web")
		if err != nil || !found || spec == nil || spec.TaskTemplate.ContainerSpec == nil || spec.TaskTemplate.ContainerSpec.CapabilityAdd[0] != "SYS_ADMIN" {
			t.Fatalf("got %+v %v %v", spec, found, err)
		}
		spec, found, err = in.ServicePreviousSpec(ctx, "fresh")
		if err != nil || !found || spec != nil {
			t.Fatalf("fresh: got %+v %v %v", spec, found, err)
		}
	})
	t.Run("names that leave the path segment are never sent", func(t *testing.T) {
		for _, name := range []string{"../containers/json", "a/b", "x?all=1", "x#y", "", "%2e%2e"} {
			if _, _, _, err := in.VolumeOptions(ctx, name); err == nil {
				t.Errorf("volume %q: no error", name)
			}
			if _, _, err := in.ContainerMounts(ctx, name); err == nil {
				t.Errorf("container %q: no error", name)
			}
			// No container or exec can have such a name: not found, as
			// dockerd answers (a client falls back on its 404).
			for _, kind := range []string{ObjectContainer, ObjectExec} {
				if _, _, found, err := in.ObjectOwner(ctx, kind, name); err != nil || found {
					t.Errorf("%s %q: found %v, err %v; want not found", kind, name, found, err)
				}
			}
			var bad *InvalidName
			if _, _, _, err := in.ObjectOwner(ctx, ObjectNetwork, name); !errors.As(err, &bad) {
				t.Errorf("network %q: %v, want an invalid name", name, err)
			}
		}
		for _, p := range fake.Paths() {
			if strings.Contains(p, "..") || strings.Contains(p, "/a/b") || strings.Contains(p, "%") {
				t.Errorf("sent %q", p)
			}
		}
	})
	t.Run("image provenance", func(t *testing.T) {
		id, digests, tags, found, err := in.ImageProvenance(ctx, "reg.example.com/approved/app:1")
		if err != nil || !found || id != "sha256:1111" || len(digests) != 1 || len(tags) != 2 {
			t.Fatalf("got %q %v %v %v %v", id, digests, tags, found, err)
		}
		if _, _, _, found, err := in.ImageProvenance(ctx, "nope"); err != nil || found {
			t.Fatalf("not found: got found=%v err=%v", found, err)
		}
		if _, _, _, _, err := in.ImageProvenance(ctx, "broken"); err == nil {
			t.Fatal("daemon error: no error")
		}
		for _, ref := range []string{"../containers/json", "x?all=1", "x#y", "", "%2e%2e", "Upper"} {
			if _, _, _, _, err := in.ImageProvenance(ctx, ref); err == nil {
				t.Errorf("image %q: no error", ref)
			}
		}
	})
}
