package e2e

// Tenancy: a tenant's lists, event stream, disk usage and
// prunes are limited to its own objects. Two tenants (uids 65534 and
// 65533) and root create through dockgate; an "agent" creates directly on
// dockerd. What each sees is compared with what dockerd itself holds, and
// what the prunes removed is checked on dockerd.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// tnsPredefined lists, directly on dockerd, its own networks (bridge,
// host, none) that exist.
func tnsPredefined(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	ns, err := c.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range ns {
		if n.Name == "bridge" || n.Name == "host" || n.Name == "none" {
			names = append(names, n.Name)
		}
	}
	return names
}

// tnsOwned lists, directly on dockerd, the names of the containers,
// volumes and networks whose owner label is owner.
func tnsOwned(t *testing.T, c *client.Client, owner string) (containers, volumes, networks []string) {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", tnOwnerKey+"="+owner))
	cs, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatalf("list containers on dockerd: %v", err)
	}
	for _, ct := range cs {
		for _, n := range ct.Names {
			containers = append(containers, strings.TrimPrefix(n, "/"))
		}
	}
	vs, err := c.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		t.Fatalf("list volumes on dockerd: %v", err)
	}
	for _, v := range vs.Volumes {
		volumes = append(volumes, v.Name)
	}
	ns, err := c.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Fatalf("list networks on dockerd: %v", err)
	}
	for _, n := range ns {
		networks = append(networks, n.Name)
	}
	slices.Sort(containers)
	slices.Sort(volumes)
	slices.Sort(networks)
	return containers, volumes, networks
}

// tnsLines is the sorted non-empty lines of a command's output.
func tnsLines(out string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			ls = append(ls, l)
		}
	}
	slices.Sort(ls)
	return ls
}

func TestTenancyScope(t *testing.T) {
	_, c, a, b, root := tnBed(t, tnPolicy(t))
	env := testbed.Shared(t)
	img := testbed.DefaultImage

	who := []struct {
		tag string
		u   *tnUser // nil: the agent, directly on dockerd
	}{{"a", a}, {"b", b}, {"root", root}, {"agent", nil}}
	ctrName := func(tag string) string { return "e2e-tns-ctr-" + tag }
	volName := func(tag string) string { return "e2e-tns-vol-" + tag }
	netName := func(tag string) string { return "e2e-tns-net-" + tag }
	var vols, nets []string
	for _, w := range who {
		vols = append(vols, volName(w.tag))
		nets = append(nets, netName(w.tag))
	}
	imgA, imgB := "ci.local/e2e-tns-img-a:1", "ci.local/e2e-tns-img-b:1"
	t.Cleanup(func() {
		tnCleanup(t, c, vols, nets)
		ctx, cancel := azCtx()
		defer cancel()
		for _, ref := range []string{imgA, imgB} {
			c.ImageRemove(ctx, ref, dockerimage.RemoveOptions{Force: true, PruneChildren: true})
		}
	})

	since := time.Now().Add(-time.Second)
	for _, w := range who {
		if w.u == nil {
			continue
		}
		w.u.must("create", "--name", ctrName(w.tag), "--label", tnTestLabel, img, "true")
		w.u.must("volume", "create", "--label", tnTestLabel, volName(w.tag))
		w.u.must("network", "create", "--internal", "--label", tnTestLabel, netName(w.tag))
	}
	// The agent: created directly on dockerd, owned by nobody. Its
	// container also keeps the test image in use through the image prune.
	ctx, cancel := azCtx()
	defer cancel()
	agent, err := c.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{"true"}, Labels: map[string]string{azLabel: "tenancy"}}, nil, nil, nil, ctrName("agent"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VolumeCreate(ctx, volume.CreateOptions{Name: volName("agent"), Labels: map[string]string{azLabel: "tenancy"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NetworkCreate(ctx, netName("agent"), network.CreateOptions{Internal: true, Labels: map[string]string{azLabel: "tenancy"}}); err != nil {
		t.Fatal(err)
	}
	// Images the tenants would have built: labelled directly on dockerd
	// (through dockgate nobody may set the owner label).
	for ref, owner := range map[string]string{imgA: tnOwnerA, imgB: tnOwnerB} {
		if _, err := c.ContainerCommit(ctx, agent.ID, container.CommitOptions{Reference: ref, Changes: []string{"LABEL " + tnOwnerKey + "=" + owner}}); err != nil {
			t.Fatalf("commit %s: %v", ref, err)
		}
	}
	// Events are listed up to a second after the last creation: dockerd
	// answers when that time has passed.
	until := time.Now().Add(time.Second)
	unix := func(tm time.Time) string { return strconv.FormatInt(tm.Unix(), 10) }

	// Each tenant sees exactly what dockerd holds with its owner label, and
	// that includes what it created just now.
	for _, tc := range []struct {
		tag, owner, other string
		u                 *tnUser
	}{
		{"a", tnOwnerA, "b", a},
		{"b", tnOwnerB, "a", b},
	} {
		t.Run("tenant "+tc.tag, func(t *testing.T) {
			outer := tc.u.t
			tc.u.t = t
			defer func() { tc.u.t = outer }()
			ownC, ownV, ownN := tnsOwned(t, c, tc.owner)
			for what, set := range map[string][]string{ctrName(tc.tag): ownC, volName(tc.tag): ownV, netName(tc.tag): ownN} {
				if !slices.Contains(set, what) {
					t.Fatalf("dockerd has no %s with the owner label %s: %v", what, tc.owner, set)
				}
			}
			for _, check := range []struct {
				what string
				args []string
				want []string
			}{
				{"ps -a", []string{"ps", "-a", "--format", "{{.Names}}"}, ownC},
				{"volume ls", []string{"volume", "ls", "--format", "{{.Name}}"}, ownV},
				// dockerd's own networks too (host and none: the bed has
				// no default bridge), which every tenant may use.
				{"network ls", []string{"network", "ls", "--format", "{{.Name}}"}, slices.Sorted(slices.Values(append(slices.Clone(ownN), tnsPredefined(t, c)...)))},
				// The client's own filters still apply.
				{"ps -a with a filter", []string{"ps", "-a", "--filter", "label=" + tnTestLabel, "--filter", "name=e2e-tns-", "--format", "{{.Names}}"}, []string{ctrName(tc.tag)}},
			} {
				got := tnsLines(tc.u.must(check.args...))
				if check.what == "network ls" {
					slices.Sort(got)
				}
				if !slices.Equal(got, check.want) {
					t.Errorf("`docker %s` as %s shows %v, want its own %v", check.what, tc.owner, got, check.want)
				}
			}

			// Events: its own containers only. Volume and network events
			// carry no labels, so a tenant sees none of them.
			out := tc.u.must("events", "--since", unix(since), "--until", unix(until), "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
			if !strings.Contains(out, "container create ") || !strings.Contains(out, " "+ctrName(tc.tag)+"\n") {
				t.Errorf("events as %s do not show the creation of %s:\n%s", tc.owner, ctrName(tc.tag), out)
			}
			// Image events carry the image's labels: its own image's tag
			// event is its own.
			for _, l := range tnsLines(out) {
				others := strings.Contains(l, "e2e-tns-") && !strings.Contains(l, ctrName(tc.tag)) && !strings.Contains(l, "e2e-tns-img-"+tc.tag)
				if others || strings.HasPrefix(l, "volume ") || strings.HasPrefix(l, "network ") {
					t.Errorf("events as %s show %q", tc.owner, l)
				}
			}

			// Images: the shared test image and its own, not the other's.
			imgs := tnsLines(tc.u.must("images", "--format", "{{.Repository}}:{{.Tag}}"))
			own, others := "ci.local/e2e-tns-img-"+tc.tag+":1", "ci.local/e2e-tns-img-"+tc.other+":1"
			if !slices.Contains(imgs, img) || !slices.Contains(imgs, own) || slices.Contains(imgs, others) {
				t.Errorf("`docker images` as %s shows %v, want %s and %s, not %s", tc.owner, imgs, img, own, others)
			}

			// Disk usage: own containers and volumes, visible images.
			// df -v prints an image's repository and tag in columns of
			// their own.
			ownRepo, othersRepo, _ := strings.Cut(own, ":")
			othersRepo, _, _ = strings.Cut(others, ":")
			df := tc.u.must("system", "df", "-v")
			for _, name := range []string{ctrName(tc.tag), volName(tc.tag), ownRepo} {
				if !strings.Contains(df, name) {
					t.Errorf("`docker system df -v` as %s does not show %s:\n%s", tc.owner, name, df)
				}
			}
			for _, w := range who {
				if w.tag == tc.tag {
					continue
				}
				for _, name := range []string{ctrName(w.tag), volName(w.tag)} {
					if strings.Contains(df, name) {
						t.Errorf("`docker system df -v` as %s shows %s:\n%s", tc.owner, name, df)
					}
				}
			}
			if strings.Contains(df, othersRepo) {
				t.Errorf("`docker system df -v` as %s shows %s:\n%s", tc.owner, othersRepo, df)
			}

			// The build cache cannot be limited to the caller's.
			if r := tc.u.run("builder", "prune", "-f"); r.code == 0 || !strings.Contains(r.stderr, "dockgate:") || !strings.Contains(r.stderr, "build cache") {
				t.Errorf("builder prune as %s: want a dockgate refusal: %v", tc.owner, r)
			}
		})
	}

	t.Run("root sees everything", func(t *testing.T) {
		outer := root.t
		root.t = t
		defer func() { root.t = outer }()
		ps := tnsLines(root.must("ps", "-a", "--format", "{{.Names}}"))
		vls := tnsLines(root.must("volume", "ls", "--format", "{{.Name}}"))
		nls := tnsLines(root.must("network", "ls", "--format", "{{.Name}}"))
		for _, w := range who {
			if !slices.Contains(ps, ctrName(w.tag)) || !slices.Contains(vls, volName(w.tag)) || !slices.Contains(nls, netName(w.tag)) {
				t.Errorf("root does not see %s's objects: containers %v volumes %v networks %v", w.tag, ps, vls, nls)
			}
		}
		if !slices.Contains(nls, "none") {
			t.Errorf("root does not see the network none: %v", nls)
		}
		imgs := tnsLines(root.must("images", "--format", "{{.Repository}}:{{.Tag}}"))
		for _, ref := range []string{img, imgA, imgB} {
			if !slices.Contains(imgs, ref) {
				t.Errorf("root does not see the image %s: %v", ref, imgs)
			}
		}
		out := root.must("events", "--since", unix(since), "--until", unix(until), "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
		for _, w := range who {
			for _, want := range []string{"container create ", "volume create " + volName(w.tag), "network create "} {
				if !strings.Contains(out, want) {
					t.Errorf("root's events do not show %q:\n%s", want, out)
				}
			}
			if !strings.Contains(out, " "+ctrName(w.tag)+"\n") || !strings.Contains(out, " "+netName(w.tag)+"\n") {
				t.Errorf("root's events do not show %s's container and network:\n%s", w.tag, out)
			}
		}
		df := root.must("system", "df", "-v")
		for _, w := range who {
			if !strings.Contains(df, ctrName(w.tag)) || !strings.Contains(df, volName(w.tag)) {
				t.Errorf("root's `system df -v` does not show %s's container and volume:\n%s", w.tag, df)
			}
		}
	})

	// Prunes by tenant a remove a's objects only.
	t.Run("prunes by a", func(t *testing.T) {
		outer := a.t
		a.t = t
		defer func() { a.t = outer }()
		a.must("container", "prune", "-f")
		if versions.LessThan(env.Dockerd.APIVersion, "1.42") {
			a.must("volume", "prune", "-f")
		} else {
			// From API 1.42 a volume prune removes anonymous volumes
			// only, unless asked for all (the all=true filter, which
			// dockgate must keep to a's own as well).
			a.must("volume", "prune", "-a", "-f")
		}
		a.must("network", "prune", "-f")
		a.must("image", "prune", "-a", "-f")
		ctx, cancel := azCtx()
		defer cancel()
		for _, w := range who {
			gone := w.tag == "a"
			_, errC := c.ContainerInspect(ctx, ctrName(w.tag))
			_, errV := c.VolumeInspect(ctx, volName(w.tag))
			_, errN := c.NetworkInspect(ctx, netName(w.tag), network.InspectOptions{})
			for what, err := range map[string]error{ctrName(w.tag): errC, volName(w.tag): errV, netName(w.tag): errN} {
				switch {
				case gone && err == nil:
					t.Errorf("a's prune left its own %s", what)
				case !gone && err != nil:
					t.Errorf("BYPASS: a's prune removed %s: %v", what, err)
				}
			}
		}
		for ref, gone := range map[string]bool{imgA: true, imgB: false, img: false} {
			_, err := c.ImageInspect(ctx, ref)
			switch {
			case gone && err == nil:
				t.Errorf("a's image prune left its own %s", ref)
			case !gone && err != nil:
				t.Errorf("BYPASS: a's image prune removed %s: %v", ref, err)
			}
		}
	})
	if t.Failed() {
		t.Logf("agent container %.12s; events window %s", agent.ID, fmt.Sprint(unix(since), "..", unix(until)))
	}
}
