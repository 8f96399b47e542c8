package tenancy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/internal/dockerd"
	"github.com/dockgate/dockgate/internal/syncbuf"
)

var gcNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func gcLabels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestGCSelect(t *testing.T) {
	past := gcNow.Add(-time.Minute).Format(time.RFC3339)
	future := gcNow.Add(time.Minute).Format(time.RFC3339)
	old := gcNow.Add(-3 * time.Hour)
	recent := gcNow.Add(-10 * time.Minute)
	owner := Options{Owner: "user:nobody", Now: gcNow}
	expired := Options{Expired: true, Now: gcNow}
	ownerOld := Options{Owner: "user:nobody", OlderThan: time.Hour, Now: gcNow}
	tests := []struct {
		name    string
		labels  map[string]string
		created time.Time
		o       Options
		want    bool
		skip    string // part of the reason it is left alone
	}{
		{"the owner's", gcLabels(authz.OwnerLabel, "user:nobody"), old, owner, true, ""},
		{"another tenant's", gcLabels(authz.OwnerLabel, "uid:65533"), old, owner, false, ""},
		{"an owner that only starts the same", gcLabels(authz.OwnerLabel, "user:nobody2"), old, owner, false, ""},
		{"the agent's, unlabelled", gcLabels("job", "7"), old, owner, false, ""},
		{"the owner label in another case", gcLabels("IO.DOCKGATE.OWNER", "user:nobody"), old, owner, false, ""},
		{"the owner as another label's value", gcLabels("note", authz.OwnerLabel+"=user:nobody"), old, owner, false, ""},
		{"expired", gcLabels(authz.OwnerLabel, "uid:65533", authz.ExpiresLabel, past), old, expired, true, ""},
		{"expires in the future", gcLabels(authz.OwnerLabel, "uid:65533", authz.ExpiresLabel, future), old, expired, false, ""},
		{"expires exactly now", gcLabels(authz.OwnerLabel, "uid:65533", authz.ExpiresLabel, gcNow.Format(time.RFC3339)), old, expired, false, ""},
		{"expired with fractional seconds and an offset", gcLabels(authz.OwnerLabel, "u", authz.ExpiresLabel, "2026-03-01T12:59:00.5+02:00"), old, expired, true, ""},
		{"no expiry", gcLabels(authz.OwnerLabel, "uid:65533"), old, expired, false, ""},
		{"expired but no owner", gcLabels(authz.ExpiresLabel, past), old, expired, false, ""},
		{"unparseable expiry", gcLabels(authz.OwnerLabel, "u", authz.ExpiresLabel, "tomorrow"), old, expired, false, "not an RFC 3339 time"},
		{"expiry as a Unix time", gcLabels(authz.OwnerLabel, "u", authz.ExpiresLabel, "1700000000"), old, expired, false, "not an RFC 3339 time"},
		{"older than asked", gcLabels(authz.OwnerLabel, "user:nobody"), old, ownerOld, true, ""},
		{"younger than asked", gcLabels(authz.OwnerLabel, "user:nobody"), recent, ownerOld, false, ""},
		{"age unknown", gcLabels(authz.OwnerLabel, "user:nobody"), time.Time{}, ownerOld, false, "when it was created"},
		{"another's age unknown is not reported", gcLabels(authz.OwnerLabel, "uid:1"), time.Time{}, ownerOld, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := selects(Object{Kind: "container", ID: "x", Labels: tt.labels, Created: tt.created}, tt.o)
			if got != tt.want {
				t.Errorf("selected %v, want %v", got, tt.want)
			}
			switch {
			case tt.skip == "" && err != nil:
				t.Errorf("left alone with %v, want no report", err)
			case tt.skip != "" && (err == nil || !strings.Contains(err.Error(), tt.skip)):
				t.Errorf("reason %v, want one saying %q", err, tt.skip)
			}
		})
	}
}

// fakeDocker lists what it holds whatever the filters say, so that the
// tests show gc judging every label itself; it records the filters and
// what was removed.
type fakeDocker struct {
	mu         sync.Mutex
	containers []container.Summary
	networks   []network.Summary
	volumes    []*volume.Volume
	filters    []filters.Args
	removed    []string // "kind name"
	fail       map[string]error
	// inspected, when set, replaces a volume just before its removal.
	inspected map[string]volume.Volume
	listErr   error
}

func (f *fakeDocker) ContainerList(ctx context.Context, o container.ListOptions) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, o.Filters)
	if !o.All {
		return nil, errors.New("want All: a stopped container is a leftover too")
	}
	return slices.Clone(f.containers), f.listErr
}

func (f *fakeDocker) ContainerRemove(ctx context.Context, id string, o container.RemoveOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !o.Force || !o.RemoveVolumes {
		return errors.New("want Force and RemoveVolumes")
	}
	return f.remove("container", id, func(i int) { f.containers = slices.Delete(f.containers, i, i+1) }, func(i int) string { return f.containers[i].ID }, len(f.containers))
}

func (f *fakeDocker) NetworkList(ctx context.Context, o network.ListOptions) ([]network.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, o.Filters)
	return slices.Clone(f.networks), nil
}

func (f *fakeDocker) NetworkRemove(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.remove("network", id, func(i int) { f.networks = slices.Delete(f.networks, i, i+1) }, func(i int) string { return f.networks[i].ID }, len(f.networks))
}

func (f *fakeDocker) VolumeList(ctx context.Context, o volume.ListOptions) (volume.ListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, o.Filters)
	return volume.ListResponse{Volumes: slices.Clone(f.volumes)}, nil
}

func (f *fakeDocker) VolumeInspect(ctx context.Context, name string) (volume.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.inspected[name]; ok {
		return v, nil
	}
	for _, v := range f.volumes {
		if v.Name == name {
			return *v, nil
		}
	}
	return volume.Volume{}, fmt.Errorf("no such volume: %w", cerrdefs.ErrNotFound)
}

func (f *fakeDocker) VolumeRemove(ctx context.Context, name string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if force {
		return errors.New("want force false: an in-use volume stays")
	}
	return f.remove("volume", name, func(i int) { f.volumes = slices.Delete(f.volumes, i, i+1) }, func(i int) string { return f.volumes[i].Name }, len(f.volumes))
}

func (f *fakeDocker) remove(kind, id string, del func(int), idAt func(int) string, n int) error {
	if err := f.fail[id]; err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if idAt(i) == id {
			del(i)
			f.removed = append(f.removed, kind+" "+id)
			return nil
		}
	}
	return fmt.Errorf("no such %s: %w", kind, cerrdefs.ErrNotFound)
}

func (f *fakeDocker) removedList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.removed)
}

const (
	gcCA     = "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000001"
	gcCB     = "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000002"
	gcCAgent = "cccccccccccc0000000000000000000000000000000000000000000000000003"
	gcNA     = "dddddddddddd0000000000000000000000000000000000000000000000000004"
	gcNB     = "eeeeeeeeeeee0000000000000000000000000000000000000000000000000005"
)

// twoTenants is what two tenants and the agent left on dockerd: A
// (user:nobody) a container, a network and a volume, B (uid:65533) the
// same, the agent (no owner label) a container.
func twoTenants() *fakeDocker {
	a := gcLabels(authz.OwnerLabel, "user:nobody")
	b := gcLabels(authz.OwnerLabel, "uid:65533")
	created := gcNow.Add(-2 * time.Hour)
	return &fakeDocker{
		containers: []container.Summary{
			{ID: gcCA, Names: []string{"/job-a"}, Labels: a, Created: created.Unix()},
			{ID: gcCB, Names: []string{"/job-b"}, Labels: b, Created: created.Unix()},
			{ID: gcCAgent, Names: []string{"/agent"}, Labels: gcLabels("role", "agent"), Created: created.Unix()},
		},
		networks: []network.Summary{
			{ID: gcNA, Name: "net-a", Labels: a, Created: created},
			{ID: gcNB, Name: "net-b", Labels: b, Created: created},
		},
		volumes: []*volume.Volume{
			{Name: "vol-a", Labels: a, CreatedAt: created.Format(time.RFC3339)},
			{Name: "vol-b", Labels: b, CreatedAt: created.Format(time.RFC3339)},
		},
	}
}

func gcLines(r *Report) []string {
	var out []string
	for _, res := range r.Results {
		out = append(out, res.Line())
	}
	return out
}

func TestGCOwnerRemovesOnlyTheOwnersObjectsContainersFirst(t *testing.T) {
	d := twoTenants()
	r := Run(context.Background(), d, Options{Owner: "user:nobody", Now: gcNow})
	if want := []string{"container " + gcCA, "network " + gcNA, "volume vol-a"}; !slices.Equal(d.removedList(), want) {
		t.Errorf("removed %v, want %v", d.removedList(), want)
	}
	wantLines := []string{
		"removed container aaaaaaaaaaaa job-a owner=user:nobody",
		"removed network dddddddddddd net-a owner=user:nobody",
		"removed volume vol-a owner=user:nobody",
	}
	if got := gcLines(r); !slices.Equal(got, wantLines) {
		t.Errorf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	if got, want := r.Summary(false), "gc: removed 1 containers, 1 networks, 1 volumes; 0 failed, 0 skipped"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if r.Failed() {
		t.Error("failed() after a clean run")
	}
	// dockerd is asked for exactly the owner's objects.
	for _, f := range d.filters {
		if got := f.Get("label"); !slices.Equal(got, []string{authz.OwnerLabel + "=user:nobody"}) {
			t.Errorf("label filter %v", got)
		}
	}
}

func TestGCDryRunRemovesNothing(t *testing.T) {
	d := twoTenants()
	r := Run(context.Background(), d, Options{Owner: "uid:65533", DryRun: true, Now: gcNow})
	if len(d.removedList()) != 0 {
		t.Errorf("dry run removed %v", d.removedList())
	}
	wantLines := []string{
		"would remove container bbbbbbbbbbbb job-b owner=uid:65533",
		"would remove network eeeeeeeeeeee net-b owner=uid:65533",
		"would remove volume vol-b owner=uid:65533",
	}
	if got := gcLines(r); !slices.Equal(got, wantLines) {
		t.Errorf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	if got, want := r.Summary(true), "gc: would remove 1 containers, 1 networks, 1 volumes; 0 failed, 0 skipped"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

func TestGCNetworkInUseFailsAndTheRestGoesOn(t *testing.T) {
	d := twoTenants()
	d.fail = map[string]error{gcNA: errors.New("error while removing network: network net-a has active endpoints (job-b)")}
	r := Run(context.Background(), d, Options{Owner: "user:nobody", Now: gcNow})
	if want := []string{"container " + gcCA, "volume vol-a"}; !slices.Equal(d.removedList(), want) {
		t.Errorf("removed %v, want %v", d.removedList(), want)
	}
	if !r.Failed() {
		t.Error("failed() is false after a refused removal")
	}
	if got := gcLines(r)[1]; got != "failed to remove network dddddddddddd net-a owner=user:nobody: error while removing network: network net-a has active endpoints (job-b)" {
		t.Errorf("line %q", got)
	}
	if got := r.Summary(false); !strings.Contains(got, "1 failed") {
		t.Errorf("summary %q", got)
	}
}

func TestGCExpired(t *testing.T) {
	past := gcNow.Add(-time.Second).Format(time.RFC3339)
	d := twoTenants()
	d.containers[0].Labels = gcLabels(authz.OwnerLabel, "user:nobody", authz.ExpiresLabel, past)
	d.containers[1].Labels = gcLabels(authz.OwnerLabel, "uid:65533", authz.ExpiresLabel, gcNow.Add(time.Hour).Format(time.RFC3339))
	d.containers[2].Labels = gcLabels(authz.ExpiresLabel, past) // no Owner: not dockgate's
	d.volumes[1].Labels = gcLabels(authz.OwnerLabel, "uid:65533", authz.ExpiresLabel, "soon")
	r := Run(context.Background(), d, Options{Expired: true, Now: gcNow})
	if want := []string{"container " + gcCA}; !slices.Equal(d.removedList(), want) {
		t.Errorf("removed %v, want %v", d.removedList(), want)
	}
	wantLines := []string{
		"removed container aaaaaaaaaaaa job-a owner=user:nobody expires=" + past,
		`skipped volume vol-b owner=uid:65533 expires=soon: the io.dockgate.expires label "soon" is not an RFC 3339 time`,
	}
	if got := gcLines(r); !slices.Equal(got, wantLines) {
		t.Errorf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	if r.Failed() {
		t.Error("an unparseable expiry made the run fail; it is reported and left alone")
	}
	for _, f := range d.filters {
		if got := f.Get("label"); !slices.Equal(got, []string{authz.ExpiresLabel, authz.OwnerLabel}) && !slices.Equal(got, []string{authz.OwnerLabel, authz.ExpiresLabel}) {
			t.Errorf("label filter %v", got)
		}
	}
}

func TestGCVolumeRecreatedUnderTheSameNameIsLeftAlone(t *testing.T) {
	d := twoTenants()
	// Between the list and the removal, A's vol-a went and B made a
	// volume of the same name.
	d.inspected = map[string]volume.Volume{"vol-a": {Name: "vol-a", Labels: gcLabels(authz.OwnerLabel, "uid:65533"), CreatedAt: gcNow.Format(time.RFC3339)}}
	r := Run(context.Background(), d, Options{Owner: "user:nobody", Now: gcNow})
	if slices.Contains(d.removedList(), "volume vol-a") {
		t.Error("removed B's volume that took A's volume's name")
	}
	if got := gcLines(r)[2]; !strings.HasPrefix(got, "skipped volume vol-a") {
		t.Errorf("line %q", got)
	}
}

func TestGCAlreadyGoneIsNoFailure(t *testing.T) {
	d := twoTenants()
	d.fail = map[string]error{gcCA: fmt.Errorf("No such container: %w", cerrdefs.ErrNotFound)}
	r := Run(context.Background(), d, Options{Owner: "user:nobody", Now: gcNow})
	if r.Failed() {
		t.Errorf("failed: %v", gcLines(r))
	}
	if got := gcLines(r)[0]; got != "skipped container aaaaaaaaaaaa job-a owner=user:nobody: already gone" {
		t.Errorf("line %q", got)
	}
}

func TestGCListFailureFails(t *testing.T) {
	d := twoTenants()
	d.listErr = errors.New("dockerd is down")
	r := Run(context.Background(), d, Options{Owner: "user:nobody", Now: gcNow})
	if !r.Failed() || len(r.Errs) != 1 || !strings.Contains(r.Errs[0].Error(), "list containers: dockerd is down") {
		t.Errorf("errs %v", r.Errs)
	}
	// Networks and volumes are still taken care of: dockerd refuses to
	// remove what a container still uses.
	if len(d.removedList()) != 2 {
		t.Errorf("removed %v", d.removedList())
	}
}

func TestServeExpiryGCRemovesWhatExpiredAndStops(t *testing.T) {
	d := twoTenants()
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	d.containers[0].Labels = gcLabels(authz.OwnerLabel, "user:nobody", authz.ExpiresLabel, past)
	d.networks[0].Labels = gcLabels(authz.OwnerLabel, "user:nobody", authz.ExpiresLabel, past)
	d.volumes[1].Labels = gcLabels(authz.OwnerLabel, "uid:65533", authz.ExpiresLabel, "soon")
	d.networks[1].Labels = gcLabels(authz.OwnerLabel, "uid:65533", authz.ExpiresLabel, past)
	d.fail = map[string]error{gcNB: errors.New("network net-b has active endpoints")}
	var logs syncbuf.Buffer
	stop := StartExpiry(context.Background(), d, 5*time.Millisecond, zerolog.New(&logs))
	deadline := time.Now().Add(5 * time.Second)
	for len(d.removedList()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// A few more runs, to see the unparseable label and the network in
	// use logged only once.
	time.Sleep(50 * time.Millisecond)
	stop()
	if want := []string{"container " + gcCA, "network " + gcNA}; !slices.Equal(d.removedList(), want) {
		t.Errorf("removed %v, want %v", d.removedList(), want)
	}
	out := logs.String()
	if n := strings.Count(out, `"message":"gc: removed an expired tenant object"`); n != 2 {
		t.Errorf("%d removal lines, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, `"kind":"container","id":"`+gcCA+`","name":"job-a","owner":"user:nobody"`) {
		t.Errorf("no line names the container's kind, id, name and owner:\n%s", out)
	}
	if n := strings.Count(out, `"name":"vol-b"`); n != 1 {
		t.Errorf("the unparseable expiry was logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, `"level":"warn","kind":"network","id":"`+gcNB+`","name":"net-b","owner":"uid:65533","expires":"`+past+`","error":"network net-b has active endpoints"`); n != 1 {
		t.Errorf("the network in use was logged %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, `"level":"error"`) {
		t.Errorf("errors logged:\n%s", out)
	}
}

func TestServeExpiryGCStopsOnContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := StartExpiry(ctx, twoTenants(), time.Hour, zerolog.Nop())
	cancel()
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not stop when its context ended")
	}
}

func TestServeExpiryGCOffAtZero(t *testing.T) {
	d := twoTenants()
	stop := StartExpiry(context.Background(), d, 0, zerolog.Nop())
	time.Sleep(20 * time.Millisecond)
	stop()
	if len(d.filters) != 0 {
		t.Errorf("--gc-interval 0 listed %d times", len(d.filters))
	}
}

// TestServeExpiryGCHoldsNoConnectionBetweenRuns: the loop runs for as long
// as dockgate serves; a keep-alive connection to dockerd kept between runs
// would be an fd and goroutines that the leak checks count against it.
func TestServeExpiryGCHoldsNoConnectionBetweenRuns(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "dockerd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var open, lists atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Api-Version", "1.47")
			switch {
			case strings.HasSuffix(r.URL.Path, "/_ping"):
				w.Write([]byte("OK"))
			case strings.HasSuffix(r.URL.Path, "/volumes"):
				lists.Add(1)
				w.Write([]byte(`{"Volumes":[]}`))
			default:
				lists.Add(1)
				w.Write([]byte(`[]`))
			}
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		},
	}
	go srv.Serve(l)
	defer srv.Close()
	c, err := dockerd.New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var logs syncbuf.Buffer
	stop := StartExpiry(context.Background(), c, 20*time.Millisecond, zerolog.New(&logs))
	for deadline := time.Now().Add(5 * time.Second); lists.Load() < 6 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if lists.Load() < 6 {
		t.Fatalf("%d lists in 5s, want two runs' worth; log:\n%s", lists.Load(), logs.String())
	}
	for deadline := time.Now().Add(2 * time.Second); open.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := open.Load(); n > 0 {
		t.Errorf("%d connections to dockerd still open after the runs", n)
	}
	if strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("warnings:\n%s", logs.String())
	}
}
