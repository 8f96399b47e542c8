package e2e

// Names pinned to what was judged (BRIEF §7 item 11): a
// name re-tagged between dockgate's decision and dockerd's act must not
// swap the content. The policy approves one image by its registry digest
// under the name REG/e2e-pin/app:1; an "evil" image imported here is
// moved onto that name and back, directly on dockerd, as fast as dockerd
// takes it, while CI callers create containers and tag through dockgate.
// Every name here starts with pn.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// pnLabel marks the containers these tests create.
const pnLabel = "e2e.pin"

type pnBed struct {
	env        *testbed.Env
	c          *client.Client
	g          *azGate
	name       string // the approved name, REG/e2e-pin/app:1
	good, evil string // image IDs
}

// pnSetup pushes the test image as REG/e2e-pin/app:1 (so that it has its
// RepoDigest), imports an evil image with one extra file, and starts a
// dockgate whose CI role may run only the pushed content under that name.
// Root is held to the CI role, so that the test's own SDK clients are CI
// callers too.
func pnSetup(t *testing.T) *pnBed {
	t.Helper()
	env := testbed.Shared(t)
	if env.Registry == nil {
		t.Skip("no registry in this bed: no image with a registry digest to approve")
	}
	c := azDirect(t, env)
	b := &pnBed{env: env, c: c, name: env.Registry.Addr + "/e2e-pin/app:1"}
	ctx, cancel := azCtx()
	defer cancel()
	if err := c.ImageTag(ctx, testbed.DefaultImage, b.name); err != nil {
		t.Fatal(err)
	}
	imPush(t, c, b.name)
	good, err := c.ImageInspect(ctx, b.name)
	if err != nil {
		t.Fatal(err)
	}
	repo := strings.TrimSuffix(b.name, ":1")
	digest := ""
	for _, rd := range good.RepoDigests {
		if strings.HasPrefix(rd, repo+"@") {
			digest = rd
		}
	}
	if digest == "" {
		t.Fatalf("%s has no RepoDigest of %s after the push: %v", b.name, repo, good.RepoDigests)
	}
	const evilRef = "e2e-pin/evil:1"
	if err := env.Dockerd.ImportImage(ctx, evilRef, testbed.File{Name: "evil", Size: 5, Data: strings.NewReader("evil\n")}); err != nil {
		t.Fatal(err)
	}
	evil, err := c.ImageInspect(ctx, evilRef)
	if err != nil {
		t.Fatal(err)
	}
	b.good, b.evil = good.ID, evil.ID
	if b.good == b.evil {
		t.Fatalf("the evil image is the good one: %s", b.good)
	}
	t.Cleanup(func() {
		for _, ref := range []string{b.name, evilRef} {
			azRemoveImage(t, c, ref)
		}
	})
	b.g = azStartGate(t, env, azPolicy(t, true,
		"p, role:ci, image, "+b.name+", allow",
		"p, role:ci, image, "+digest+", allow"))
	return b
}

// retag points the approved name at image id, directly on dockerd.
func (b *pnBed) retag(ctx context.Context, id string) error {
	for {
		err := b.c.ImageTag(ctx, id, b.name)
		// Engine 29's tag deletes the name, then creates it, and can
		// lose that race to itself under load ("after deleting the
		// existing one: AlreadyExists"): the move is tried again.
		if err == nil || !pnNameMayVanish(b.env) || !strings.Contains(err.Error(), "already exists") || ctx.Err() != nil {
			return err
		}
	}
}

// race moves the approved name from good to evil and back until stop is
// closed, then points it at good again; the count of moves comes on the
// channel returned.
func (b *pnBed) race(t *testing.T, stop chan struct{}) chan int {
	moves := make(chan int, 1)
	go func() {
		n := 0
		defer func() {
			ctx, cancel := azCtx()
			defer cancel()
			if err := b.retag(ctx, b.good); err != nil {
				t.Errorf("point %s back at the good image: %v", b.name, err)
			}
			moves <- n
		}()
		for {
			for _, id := range []string{b.evil, b.good} {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := azCtx()
				err := b.retag(ctx, id)
				cancel()
				if err != nil {
					t.Errorf("re-tag %s: %v", b.name, err)
					return
				}
				n++
			}
		}
	}()
	return moves
}

// proxied is a Go SDK client of the test's dockgate, closed when t ends.
func (b *pnBed) proxied(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost("unix://"+b.g.Socket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pnOutcome sorts the answer to a create or tag through dockgate.
type pnOutcome struct {
	// nameMayVanish: the engine's re-tag is not atomic (Engine 29's
	// containerd image store removes the old name, then creates the new
	// one), so dockerd itself may find no image under the name.
	nameMayVanish bool

	mu                               sync.Mutex
	done, swapped, refused, vanished int
	unexpected                       []string
}

// pnNameMayVanish says whether the bed's engine re-tags non-atomically.
func pnNameMayVanish(env *testbed.Env) bool { return env.Engine == testbed.EngineCurrent }

// pnVanished is how dockerd, or dockgate asking dockerd, says the name
// pointed at no image at that instant.
// Engine 29's classic builder, meeting the gap while it resolves the
// base, answers "unexpected media type  for : not found".
func pnVanished(errText string) bool {
	return strings.Contains(errText, "No such image") ||
		!strings.Contains(errText, "dockgate: ") && strings.Contains(errText, "unexpected media type") && strings.Contains(errText, "not found")
}

func (o *pnOutcome) add(errText string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case errText == "":
		o.done++
	case strings.Contains(errText, "dockgate: ") && strings.Contains(errText, "changed between the decision and the create"):
		o.swapped++
	case strings.Contains(errText, "dockgate: ") && strings.Contains(errText, "may not local-image"):
		o.refused++
	case o.nameMayVanish && pnVanished(errText):
		o.vanished++
	default:
		o.unexpected = append(o.unexpected, errText)
	}
}

func (o *pnOutcome) String() string {
	return fmt.Sprintf("%d done, %d judged again and undone (image swapped after the decision), %d refused (evil under the name at the decision), %d found no image under the name (between a re-tag's untag and tag)", o.done, o.swapped, o.refused, o.vanished)
}

// pnContainers lists the containers these tests created, directly on
// dockerd, with the label value value (any when ""): ID → image ID.
func (b *pnBed) pnContainers(t *testing.T, value string) map[string]string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	label := pnLabel
	if value != "" {
		label += "=" + value
	}
	cs, err := b.c.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, ct := range cs {
		ci, err := b.c.ContainerInspect(ctx, ct.ID)
		if err != nil {
			t.Fatalf("inspect %s on dockerd: %v", ct.ID, err)
		}
		out[ct.ID] = ci.Image
	}
	return out
}

// countCreates follows dockerd's container create events (dockerd keeps
// only its last 256 events, fewer than a race makes) and counts those of
// containers labelled pnLabel=race, removed again or not, until end says
// that everything was counted: it creates a container labelled
// pnLabel=end, whose event comes after all the others.
func (b *pnBed) countCreates(t *testing.T) (end func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	msgs, errs := b.c.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", "container"), filters.Arg("event", "create"), filters.Arg("label", pnLabel))})
	counted := make(chan int, 1)
	go func() {
		n := 0
		defer func() { counted <- n }()
		for {
			select {
			case m := <-msgs:
				switch m.Actor.Attributes[pnLabel] {
				case "race":
					n++
				case "end":
					return
				}
			case err := <-errs:
				t.Errorf("dockerd's events ended early: %v", err)
				return
			}
		}
	}()
	// The subscription is in place once dockerd answered it: a ping
	// after it on the same client is answered after.
	pctx, pcancel := azCtx()
	defer pcancel()
	if _, err := b.c.Ping(pctx); err != nil {
		t.Fatal(err)
	}
	return func() int {
		defer cancel()
		ctx, cctx := azCtx()
		defer cctx()
		if _, err := b.c.ContainerCreate(ctx, &container.Config{Image: b.good, Labels: map[string]string{pnLabel: "end"}}, nil, nil, nil, ""); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-counted:
			return n
		case <-ctx.Done():
			t.Fatal("no create event of the end marker")
			return -1
		}
	}
}

// TestPinnedCreateBeforeTheRace: the policy tells the contents apart — the
// approved name runs while it points at the pushed image, and is refused
// while it points at the evil one — and a container created through
// dockgate shows the name it was created with, not an ID.
func TestPinnedCreateBeforeTheRace(t *testing.T) {
	b := pnSetup(t)
	u := azNewUser(t, "unix://"+b.g.Socket)
	t.Cleanup(func() {
		ids := b.pnContainers(t, "")
		for id := range ids {
			azRemoveContainers(t, b.c, id)
		}
	})
	r := u.must("create", "--label", pnLabel+"=plain", b.name, "true")
	id := strings.TrimSpace(r.stdout)
	ctx, cancel := azCtx()
	defer cancel()
	ci, err := b.c.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Image != b.good || ci.Config.Image != b.name {
		t.Errorf("created container: image %s, Config.Image %q; want %s and %q", ci.Image, ci.Config.Image, b.good, b.name)
	}
	ps := u.must("ps", "-a", "--filter", "id="+id, "--format", "{{.Image}}")
	if got := strings.TrimSpace(ps.stdout); got != b.name {
		t.Errorf("docker ps shows the image as %q, want %q", got, b.name)
	}

	if err := b.retag(ctx, b.evil); err != nil {
		t.Fatal(err)
	}
	r = u.run("", nil, "create", "--label", pnLabel+"=plain", b.name, "true")
	if err := b.retag(ctx, b.good); err != nil {
		t.Fatal(err)
	}
	if r.code == 0 || !strings.Contains(r.stderr, "dockgate: "+azCaller+" may not local-image "+b.name) {
		t.Errorf("create of the evil image under the approved name: %v", r)
	}
}

// TestPinnedCreateRacingARetag: creates through dockgate, as uid 65534
// with the docker CLI and as a CI SDK client, while the approved name
// moves between the approved image and the evil one: no container on
// dockerd is ever left with the evil image, however the race falls.
func TestPinnedCreateRacingARetag(t *testing.T) {
	b := pnSetup(t)
	u := azNewUser(t, "unix://"+b.g.Socket)
	sdk := b.proxied(t)
	t.Cleanup(func() {
		for id := range b.pnContainers(t, "") {
			azRemoveContainers(t, b.c, id)
		}
	})
	const cliWorkers, cliCreates, sdkWorkers, sdkCreates = 2, 8, 4, 40
	counted := b.countCreates(t)
	stop := make(chan struct{})
	moves := b.race(t, stop)
	out := pnOutcome{nameMayVanish: pnNameMayVanish(b.env)}
	var wg sync.WaitGroup
	for w := range cliWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range cliCreates {
				r := u.run("", nil, "create", "--label", pnLabel+"=race", "--name", fmt.Sprintf("pn-cli-%d-%d", w, i), b.name, "true")
				if r.code == 0 {
					out.add("")
				} else {
					out.add(r.stderr)
				}
			}
		}()
	}
	for range sdkWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range sdkCreates {
				ctx, cancel := azCtx()
				_, err := sdk.ContainerCreate(ctx, &container.Config{Image: b.name, Cmd: []string{"true"}, Labels: map[string]string{pnLabel: "race"}}, nil, nil, nil, "")
				cancel()
				if err != nil {
					out.add(err.Error())
				} else {
					out.add("")
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	n := <-moves

	t.Logf("%d creates while the name moved %d times: %s", cliWorkers*cliCreates+sdkWorkers*sdkCreates, n, &out)
	for _, e := range out.unexpected {
		t.Errorf("unexpected answer to a create: %s", e)
	}
	got := b.pnContainers(t, "race")
	good := 0
	for id, im := range got {
		switch im {
		case b.good:
			good++
		case b.evil:
			t.Errorf("BYPASS: dockerd has container %.12s created from the evil image %s", id, im)
		default:
			t.Errorf("container %.12s has image %s, neither the good nor the evil one", id, im)
		}
	}
	if good != out.done {
		t.Errorf("%d containers from the good image on dockerd, but %d creates succeeded", good, out.done)
	}
	// Every create that was undone was one dockerd made: its event
	// history has each.
	creates := counted()
	if creates != out.done+out.swapped {
		t.Errorf("dockerd created %d containers, want %d kept + %d undone", creates, out.done, out.swapped)
	}
	// Every undone create is on record with the container it removed.
	if out.swapped > 0 {
		recs, err := b.g.AuditRecords()
		if err != nil {
			t.Fatal(err)
		}
		undone := 0
		for _, rec := range recs {
			if rec["action"] == "container.create" && azStatus(rec) == 409 {
				undone++
				if id, _ := rec["object_id"].(string); id == "" || got[id] != "" {
					t.Errorf("record of an undone create names no removed container: %v", rec)
				}
			}
		}
		if undone != out.swapped {
			t.Errorf("%d records of undone creates, want %d", undone, out.swapped)
		}
	}
}

// TestPinnedTagRacingARetag: tags of the approved name through dockgate
// while it moves: each new name points at exactly the image the decision
// resolved the source to (the ID its record says was forwarded), never
// at whatever the source name points to by the time dockerd acts.
func TestPinnedTagRacingARetag(t *testing.T) {
	b := pnSetup(t)
	u := azNewUser(t, "unix://"+b.g.Socket)
	sdk := b.proxied(t)
	const cliTags, sdkTags = 8, 60
	target := func(who string, i int) string { return "ci.local/pin-" + who + strconv.Itoa(i) }
	t.Cleanup(func() {
		for i := range max(cliTags, sdkTags) {
			for _, who := range []string{"cli", "sdk"} {
				azRemoveImage(t, b.c, target(who, i)+":1")
			}
		}
	})
	stop := make(chan struct{})
	moves := b.race(t, stop)
	vanish := pnNameMayVanish(b.env)
	var wg sync.WaitGroup
	var failed, vanished sync.Map
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range cliTags {
			switch r := u.run("", nil, "tag", b.name, target("cli", i)+":1"); {
			case r.code == 0:
			case vanish && pnVanished(r.stderr):
				vanished.Store(target("cli", i), true)
			default:
				failed.Store(target("cli", i), r.String())
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range sdkTags {
			ctx, cancel := azCtx()
			switch err := sdk.ImageTag(ctx, b.name, target("sdk", i)+":1"); {
			case err == nil:
			case vanish && pnVanished(err.Error()):
				vanished.Store(target("sdk", i), true)
			default:
				failed.Store(target("sdk", i), err.Error())
			}
			cancel()
		}
	}()
	wg.Wait()
	close(stop)
	n := <-moves
	failed.Range(func(k, v any) bool {
		t.Errorf("tag %s: %v", k, v)
		return true
	})

	recs, err := b.g.AuditRecords()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	ctx, cancel := azCtx()
	defer cancel()
	for _, who := range []string{"cli", "sdk"} {
		for i := range map[string]int{"cli": cliTags, "sdk": sdkTags}[who] {
			name := target(who, i)
			if _, ok := vanished.Load(name); ok {
				counts["vanished"]++
				continue
			}
			im, err := b.c.ImageInspect(ctx, name+":1")
			if err != nil {
				t.Errorf("%s on dockerd: %v", name, err)
				continue
			}
			pinned := ""
			for _, rec := range recs {
				p, _ := rec["path"].(string)
				if rec["action"] == "image.tag" && rec["phase"] != "start" && strings.Contains(p, strings.ReplaceAll(name, "/", "%2F")+"&") {
					f, _ := rec["forwarded"].(string)
					if _, after, ok := strings.Cut(f, "/images/"); ok {
						pinned, _, _ = strings.Cut(after, "/tag")
					}
				}
			}
			switch {
			case pinned == "":
				t.Errorf("no record of the tag %s forwarded with the source pinned", name)
			case im.ID != pinned:
				t.Errorf("BYPASS: %s points at %s, but the decision pinned %s", name, im.ID, pinned)
			}
			counts[map[string]string{b.good: "good", b.evil: "evil"}[im.ID]]++
		}
	}
	t.Logf("%d tags while the name moved %d times: new names on the good image %d, on the evil one %d (the source is judged by its name), each the image judged; %d found no image under the name",
		cliTags+sdkTags, n, counts["good"], counts["evil"], counts["vanished"])
}

// TestPinnedBuildRacingARetag: classic builds FROM the approved name,
// through dockgate as uid 65534 (docker CLI) and as CI SDK clients, while
// the name moves: every image built has the approved image as its base
// (the FROM line is forwarded naming the ID judged), never the evil one.
func TestPinnedBuildRacingARetag(t *testing.T) {
	b := pnSetup(t)
	u := azNewUser(t, "unix://"+b.g.Socket)
	sdk := b.proxied(t)
	const cliWorkers, cliBuilds, sdkWorkers, sdkBuilds = 2, 3, 2, 8
	dockerfile := "FROM " + b.name + "\nLABEL pinned=1\n"
	u.writeFile("pnctx/Dockerfile", dockerfile)
	tarCtx := makeTarContext(t, "Dockerfile", dockerfile)
	target := func(who string, w, i int) string { return fmt.Sprintf("ci.local/pinb-%s-%d-%d:1", who, w, i) }
	var mu sync.Mutex
	var built []string
	t.Cleanup(func() {
		for _, ref := range built {
			azRemoveImage(t, b.c, ref)
		}
	})
	out := pnOutcome{nameMayVanish: pnNameMayVanish(b.env)}
	classic := []string{"DOCKER_BUILDKIT=0"}
	stop := make(chan struct{})
	moves := b.race(t, stop)
	var wg sync.WaitGroup
	for w := range cliWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range cliBuilds {
				r := u.run("", classic, "build", "-q", "-t", target("cli", w, i), u.home+"/pnctx")
				if r.code == 0 {
					mu.Lock()
					built = append(built, target("cli", w, i))
					mu.Unlock()
					out.add("")
				} else {
					out.add(r.stdout + r.stderr)
				}
			}
		}()
	}
	for w := range sdkWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range sdkBuilds {
				ref := target("sdk", w, i)
				if err := pnBuild(sdk, tarCtx, ref); err != nil {
					out.add(err.Error())
					continue
				}
				mu.Lock()
				built = append(built, ref)
				mu.Unlock()
				out.add("")
			}
		}()
	}
	wg.Wait()
	close(stop)
	n := <-moves
	t.Logf("%d classic builds while the name moved %d times: %s", cliWorkers*cliBuilds+sdkWorkers*sdkBuilds, n, &out)
	for _, e := range out.unexpected {
		t.Errorf("unexpected answer to a build: %s", e)
	}
	// LABEL adds no layer: a built image's layers are its base's (the
	// owner label of a tenant's build is a step of its own, so the
	// parent is no base).
	ctx, cancel := azCtx()
	defer cancel()
	layers := func(ref string) string {
		im, err := b.c.ImageInspect(ctx, ref)
		if err != nil {
			t.Errorf("%s on dockerd: %v", ref, err)
			return ""
		}
		return strings.Join(im.RootFS.Layers, ",")
	}
	good, evil := layers(b.good), layers(b.evil)
	for _, ref := range built {
		switch layers(ref) {
		case good:
		case evil:
			t.Errorf("BYPASS: %s was built FROM the evil image", ref)
		default:
			t.Errorf("%s has the layers of neither the good nor the evil image", ref)
		}
	}
}

// makeTarContext is a build context of one file.
func makeTarContext(t *testing.T, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pnBuild runs a classic build through c and reads its progress stream to
// the end: an error in it is the build's error.
func pnBuild(c *client.Client, tarCtx []byte, ref string) error {
	ctx, cancel := azCtx()
	defer cancel()
	resp, err := c.ImageBuild(ctx, bytes.NewReader(tarCtx), build.ImageBuildOptions{Tags: []string{ref}, Version: build.BuilderV1, Remove: true})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}
