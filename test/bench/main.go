// Command bench measures dockgate against the dockerd behind it and against
// a bare relay (relay.go), in one run on one machine, and reports ratios:
// machines are noisy, so only sides measured in turn in the same run mean
// anything. Each target of issue 19 is a row that passes or fails against
// the relay. `make bench` runs it and writes bench/results.json; -readme
// puts the table into README.md.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/clientflows"
	"github.com/dockgate/dockgate/test/testbed"
)

const image = testbed.DefaultImage

type config struct {
	out        string
	revision   string
	duration   time.Duration
	rounds     int
	streamSize int64
	startups   int
	tmp        string
	only       map[string]bool // measurements to run; empty: all
	soak       time.Duration   // length of the soak; 0: none
	readme     string          // rewrite this file's bench block with the table
	quick      bool
}

// row is one line of the table and of results.json. Rates compare as a
// ratio (dockgate / Direct), latencies as the time dockgate adds; Direct is
// dockerd's own figure unless Base names another.
type row struct {
	Name     string   `json:"name"`
	Unit     string   `json:"unit"`
	Direct   *float64 `json:"direct,omitempty"`
	Dockgate float64  `json:"dockgate"`
	Ratio    *float64 `json:"ratio,omitempty"`
	Added    *float64 `json:"added,omitempty"`
	// Base names what Direct holds when it is not dockerd itself: the
	// bare relay, root's requests, the start of a soak.
	Base   string `json:"base,omitempty"`
	Target string `json:"target,omitempty"`
	Pass   *bool  `json:"pass,omitempty"`
	Error  string `json:"error,omitempty"`
}

type results struct {
	Time            time.Time `json:"time"`
	Revision        string    `json:"revision,omitempty"`
	DockgateVersion string    `json:"dockgate_version"`
	Engine          string    `json:"engine,omitempty"` // testbed.EngineDebian or EngineCurrent
	DockerdVersion  string    `json:"dockerd_version"`
	DockerdAPI      string    `json:"dockerd_api,omitempty"`
	GoVersion       string    `json:"go_version"`
	CPUs            int       `json:"cpus"`
	Kernel          string    `json:"kernel"`
	DurationS       float64   `json:"duration_s"`
	Rounds          int       `json:"rounds"`
	StreamBytes     int64     `json:"stream_bytes"`
	CPUModel        string    `json:"cpu_model,omitempty"`
	Quick           bool      `json:"quick,omitempty"` // a -quick run: shorter slices, smaller streams
	Rows            []row     `json:"rows"`
}

func main() {
	// A copy of this program run as the testcontainers-go client (clients.go).
	clientflows.RunTestcontainersIfAsked()
	var cfg config
	quick := flag.Bool("quick", false, "short run: 0.5s per measurement, 64 MiB streams, 3 start-ups")
	flag.StringVar(&cfg.out, "out", "bench/results.json", "write results here (empty: don't)")
	flag.StringVar(&cfg.revision, "rev", "", "the source revision measured, for the record (make bench passes git describe)")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "length of each request-rate measurement, per side")
	flag.IntVar(&cfg.rounds, "rounds", 3, "each rate measurement alternates direct and dockgate this many times")
	streamMiB := flag.Int64("stream-mib", 1024, "size of the upload/download stream in MiB")
	flag.IntVar(&cfg.startups, "startups", 5, "start-up time is the median of this many starts")
	// /tmp may be a tmpfs; the stream data belongs on disk like a real image.
	flag.StringVar(&cfg.tmp, "tmp", "/var/tmp", "parent of the temp dir for the stream data")
	auditOnly := flag.Bool("audit-only", false, "only the audit rows (no dockerd needed); they replace the audit rows of -out")
	only := flag.String("only", "", "comma-separated measurements to run ("+strings.Join(measureNames, ", ")+"); default all")
	flag.DurationVar(&cfg.soak, "soak", 0, "run the soak (mixed requests at a bounded rate, watching dockgate's RSS and fds) this long; 0: no soak")
	flag.StringVar(&cfg.readme, "readme", "", "rewrite the table between the bench markers of this file (README.md) with this run's")
	relayListen := flag.String("relay-listen", "", "internal: run the bare relay (relay.go) on this socket")
	relayUpstream := flag.String("relay-upstream", "", "internal: the bare relay's dockerd socket")
	relayMode := flag.String("relay-mode", "ping", "internal: the bare relay's mode (ping, copy)")
	flag.Parse()
	if *relayListen != "" {
		if err := runRelay(*relayListen, *relayUpstream, *relayMode); err != nil {
			fmt.Fprintln(os.Stderr, "bench: relay:", err)
			os.Exit(1)
		}
		return
	}
	if *only != "" {
		cfg.only = make(map[string]bool)
		for name := range strings.SplitSeq(*only, ",") {
			name = strings.TrimSpace(name)
			// A misspelt name would run nothing and write an empty table.
			if !slices.Contains(measureNames, name) {
				fmt.Fprintf(os.Stderr, "bench: -only %s: no such measurement (%s)\n", name, strings.Join(measureNames, ", "))
				os.Exit(2)
			}
			cfg.only[name] = true
		}
	}
	if *auditOnly {
		if err := runAuditOnly(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *quick {
		cfg.quick = true
		cfg.duration = 500 * time.Millisecond
		*streamMiB = 64
		cfg.startups = 3
	}
	cfg.streamSize = *streamMiB << 20
	cfg.rounds = max(cfg.rounds, 1)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	if missing := testbed.Missing(); len(missing) > 0 {
		return fmt.Errorf("cannot start a private dockerd: missing %s", strings.Join(missing, ", "))
	}
	engines, err := testbed.Engines()
	if err != nil {
		return err
	}
	// Every engine gets the same rows, each in a file of its own: Debian's
	// in -out (the series results.json has always held), the current
	// Engine's beside it with the engine's name (results-current.json).
	var runs []results
	for i, engine := range engines {
		out := cfg.out
		if i > 0 && out != "" {
			out = strings.TrimSuffix(out, ".json") + "-" + engine + ".json"
		}
		res, err := runEngine(ctx, cfg, engine, out)
		if err != nil {
			return fmt.Errorf("engine %s: %w", engine, err)
		}
		runs = append(runs, res)
	}
	if cfg.readme == "" {
		return nil
	}
	if err := writeReadme(cfg.readme, runs); err != nil {
		return err
	}
	fmt.Println("wrote the table into", cfg.readme)
	return nil
}

// runEngine measures dockgate in front of one engine's dockerd and writes
// the results to out.
func runEngine(ctx context.Context, cfg config, engine, out string) (res results, err error) {
	// The stream data's own temp dir: testbed puts its bed under /tmp,
	// which may be a tmpfs too small for it.
	dir, err := os.MkdirTemp(cfg.tmp, "dockgate-bench-")
	if err != nil {
		return res, err
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = rmErr
		}
	}()

	logf("engine %s: starting dockerd and dockgate", engine)
	env, err := testbed.Setup(ctx, testbed.Options{Image: image, Engine: engine, NoRegistry: true, Log: os.Stderr})
	if err != nil {
		return res, err
	}
	defer func() {
		if closeErr := env.Close(); closeErr != nil && err == nil {
			err = closeErr
		}
	}()
	if env.Dockgate == nil {
		return res, errors.New("DOCKGATE_E2E_DIRECT is set: there is no dockgate to measure")
	}
	b := &bench{cfg: cfg, dir: dir, bin: env.Bin, pid: env.Dockgate.Pid, dockerdPid: env.Dockerd.Pid, dockerd: env.Dockerd.Host,
		directSocket: env.Dockerd.Socket, proxySocket: env.Dockgate.Socket}
	if b.direct, err = newSDK(ctx, env.Dockerd.Host); err != nil {
		return res, err
	}
	defer b.direct.Close()
	if b.proxied, err = newSDK(ctx, env.Dockgate.Host); err != nil {
		return res, err
	}
	defer b.proxied.Close()

	res = results{
		Time:        time.Now().UTC(),
		Engine:      engine,
		Revision:    cfg.revision,
		GoVersion:   runtime.Version(),
		CPUs:        runtime.NumCPU(),
		Kernel:      kernel(),
		DurationS:   cfg.duration.Seconds(),
		Rounds:      cfg.rounds,
		StreamBytes: cfg.streamSize,
		CPUModel:    cpuModel(),
		Quick:       cfg.quick,
	}
	if out, err := exec.CommandContext(ctx, b.bin, "version").Output(); err == nil {
		res.DockgateVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "dockgate ")
	}
	if v, err := b.direct.ServerVersion(ctx); err == nil {
		res.DockerdVersion, res.DockerdAPI = v.Version, v.APIVersion
	}
	for _, m := range b.measures() {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if len(cfg.only) > 0 && !cfg.only[m.name] {
			continue
		}
		rows, err := m.measure(ctx)
		if err != nil {
			return res, err
		}
		res.Rows = append(res.Rows, rows...)
	}
	// An interrupted run measured nothing worth keeping.
	if err := ctx.Err(); err != nil {
		return res, err
	}

	printTable(os.Stdout, res)
	if out == "" {
		return res, nil
	}
	b2, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return res, err
	}
	if err := os.WriteFile(out, append(b2, '\n'), 0o644); err != nil {
		return res, err
	}
	fmt.Println("wrote", out)
	return res, nil
}

// measureNames are the measurements in the order they run, the names -only
// takes.
var measureNames = []string{"idle", "ping", "list", "cycles", "execs", "streams", "startup", "owners", "tenant", "decision",
	"burst", "soak", "clients", "buildkit", "signatures", "audit"}

type measurement struct {
	name    string
	measure func(context.Context) ([]row, error)
}

// measures are the measurements by name, in measureNames' order. Idle comes
// first, before any load has grown the heap; the burst and the soak run
// dockgates of their own, so where they come does not change them.
func (b *bench) measures() []measurement {
	byName := map[string]func(context.Context) ([]row, error){
		"idle": b.idle, "ping": b.ping, "list": b.list, "cycles": b.cycles, "execs": b.execs, "streams": b.streams,
		"startup": b.startup, "owners": b.owners, "tenant": b.tenant, "decision": b.decision, "burst": b.burst, "soak": b.soakRows,
		"clients": b.clients, "buildkit": b.buildkit, "signatures": b.signatures, "audit": b.audit,
	}
	ms := make([]measurement, 0, len(measureNames))
	for _, name := range measureNames {
		ms = append(ms, measurement{name, byName[name]})
	}
	return ms
}

// bench holds one bed seen two ways: straight at dockerd, and through
// dockgate. Each measurement runs the same client code against both and
// returns its rows; an error is returned only when the bed itself fails, a
// failed measurement is a row with Error set.
type bench struct {
	cfg                       config
	dir, bin, dockerd         string
	pid, dockerdPid           int
	directSocket, proxySocket string
	direct, proxied           *client.Client
}

func (b *bench) idle(context.Context) ([]row, error) {
	time.Sleep(time.Second)
	rss, err := procStatusKiB(b.pid, "VmRSS")
	if err != nil {
		return []row{{Name: "idle RSS", Unit: "MiB", Error: err.Error()}}, nil
	}
	return []row{{Name: "idle RSS", Unit: "MiB", Dockgate: round(float64(rss) / 1024)}}, nil
}

func (b *bench) list(ctx context.Context) ([]row, error) {
	logf("containers/json")
	// A few stopped containers, so that the list is not trivially empty.
	for range 5 {
		resp, err := b.direct.ContainerCreate(ctx, &container.Config{Image: image, Cmd: []string{"true"}}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
		if err != nil {
			return nil, fmt.Errorf("create: %w", err)
		}
		defer b.direct.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	}
	dt, gt := sideBySide(b.cfg.rounds, b.cfg.duration, func(t *tally, proxied bool, d time.Duration) {
		hammer(ctx, t, b.socket(proxied), "/v1.41/containers/json?all=1", 4, d)
	})
	return []row{rate("containers/json c=4", "req/s", dt.rate(), gt.rate(), errors.Join(dt.err, gt.err))}, nil
}

func (b *bench) cycles(ctx context.Context) ([]row, error) {
	logf("create+start+wait+remove")
	dt, gt := sideBySide(b.cfg.rounds, b.cfg.duration, func(t *tally, proxied bool, d time.Duration) {
		c := b.sdk(proxied)
		repeat(ctx, t, d, func() error { return cycle(ctx, c) })
	})
	return []row{rate("run cycle (create+start+wait+rm)", "cycles/s", dt.rate(), gt.rate(), errors.Join(dt.err, gt.err))}, nil
}

func (b *bench) socket(proxied bool) string {
	if proxied {
		return b.proxySocket
	}
	return b.directSocket
}

func (b *bench) sdk(proxied bool) *client.Client {
	if proxied {
		return b.proxied
	}
	return b.direct
}

// box starts a container that stays up for exec and the streams.
func (b *bench) box(ctx context.Context) (id string, remove func(), err error) {
	resp, err := b.direct.ContainerCreate(ctx, &container.Config{Image: image, Cmd: []string{"sleep", "86400"}}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		return "", nil, fmt.Errorf("create: %w", err)
	}
	remove = func() {
		_ = b.direct.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	}
	if err := b.direct.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		remove()
		return "", nil, fmt.Errorf("start: %w", err)
	}
	return resp.ID, remove, nil
}

func (b *bench) execs(ctx context.Context) ([]row, error) {
	logf("exec round trips")
	box, remove, err := b.box(ctx)
	if err != nil {
		return nil, err
	}
	defer remove()
	dt, gt := sideBySide(b.cfg.rounds, b.cfg.duration, func(t *tally, proxied bool, d time.Duration) {
		c := b.sdk(proxied)
		repeat(ctx, t, d, func() error { return execTrue(ctx, c, box) })
	})
	return []row{rate("exec round trip (create+start attached)", "execs/s", dt.rate(), gt.rate(), errors.Join(dt.err, gt.err))}, nil
}

func (b *bench) startup(ctx context.Context) ([]row, error) {
	logf("start-up time (median of %d)", b.cfg.startups)
	ms, err := timeStartups(ctx, b.bin, filepath.Join(b.dir, "startup"), b.dockerd, b.cfg.startups)
	r := row{Name: "start-up until /_ping answers", Unit: "ms", Dockgate: round(ms)}
	if err != nil {
		r.Error = err.Error()
	}
	return []row{withTarget(r, "≤ 50 ms", ms <= 50)}, nil
}

func rate(name, unit string, direct, dockgate float64, err error) row {
	direct, dockgate = round(direct), round(dockgate)
	r := row{Name: name, Unit: unit, Direct: &direct, Dockgate: dockgate}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if direct > 0 {
		ratio := round(dockgate / direct)
		r.Ratio = &ratio
	}
	return r
}

func latency(name string, direct, dockgate time.Duration, err error) row {
	d, g := round(float64(direct)/1e3), round(float64(dockgate)/1e3)
	r := row{Name: name, Unit: "µs", Direct: &d, Dockgate: g}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	added := round(g - d)
	r.Added = &added
	return r
}

// hammer sends GET path over keep-alive connections from c workers for d and
// counts the requests and their latencies into t.
func hammer(ctx context.Context, t *tally, socket, path string, c int, d time.Duration) {
	hammerClocked(ctx, t, socket, path, c, d, func(bool) {})
}

// hammerClocked is hammer calling clock(true) when the clock starts, after
// the warm-up, and clock(false) when it stops: what is sampled around the
// timed part (CPU) then leaves the warm-up out, as the count does.
func hammerClocked(ctx context.Context, t *tally, socket, path string, c int, d time.Duration, clock func(start bool)) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: c,
		MaxConnsPerHost:     c,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	get := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return err
	}

	var (
		mu   sync.Mutex
		lats []time.Duration
		wg   sync.WaitGroup
	)
	// Warm up: open every connection and let both sides' allocators settle
	// before the clock starts.
	warm := make(chan error, c)
	for range c {
		go func() {
			var err error
			for range 20 {
				if err = get(); err != nil {
					break
				}
			}
			warm <- err
		}()
	}
	for range c {
		if err := <-warm; err != nil {
			t.fail(err)
		}
	}
	if t.err != nil {
		return
	}
	clock(true)
	start := time.Now()
	end := start.Add(d)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1<<14)
			var err error
			for t0 := time.Now(); t0.Before(end) && ctx.Err() == nil; t0 = time.Now() {
				if err = get(); err != nil {
					break
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			t.fail(err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.add(len(lats), time.Since(start), lats)
	clock(false)
	t.fail(ctx.Err())
}

func percentile(lats []time.Duration, p float64) time.Duration {
	if len(lats) == 0 {
		return 0
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
}

// repeat runs op back to back for d (at least once) and counts it into t.
func repeat(ctx context.Context, t *tally, d time.Duration, op func() error) {
	if err := op(); err != nil { // warm-up, and a failing op fails fast
		t.fail(err)
		return
	}
	n := 0
	start := time.Now()
	for time.Since(start) < d || n == 0 {
		if err := ctx.Err(); err != nil {
			t.fail(err)
			return
		}
		if err := op(); err != nil {
			t.fail(err)
			return
		}
		n++
	}
	t.add(n, time.Since(start), nil)
}

// tally is what one side (direct or dockgate) did in a measurement, summed
// over its slices.
type tally struct {
	ops     int
	elapsed time.Duration
	rates   []float64 // ops/s of each slice
	lats    []time.Duration
	err     error
	cpu     cpuUse // summed over the slices measured with addCPU
}

func (t *tally) add(ops int, elapsed time.Duration, lats []time.Duration) {
	t.ops += ops
	t.elapsed += elapsed
	if elapsed > 0 {
		t.rates = append(t.rates, float64(ops)/elapsed.Seconds())
	}
	t.lats = append(t.lats, lats...)
}

// fail keeps the first error.
func (t *tally) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// rate is the median of the slices' rates: one slice that a burst from
// elsewhere on the machine slowed does not move it.
func (t *tally) rate() float64 { return median(t.rates) }

// sideBySide measures both sides in alternating slices of d/rounds each, so
// that a burst of load from elsewhere on the machine lands on both rather
// than on whichever happened to run then. measure runs one slice of length d
// into t, through dockgate when proxied is set.
func sideBySide(rounds int, d time.Duration, measure func(t *tally, proxied bool, d time.Duration)) (direct, proxied tally) {
	ts := alternate(rounds, d, 2, func(t *tally, side int, d time.Duration) { measure(t, side == 1, d) })
	return ts[0], ts[1]
}

// alternate measures n sides in turn, rounds times, each in slices of
// d/rounds; it stops at the first side that fails. The order turns with
// each round, so that no side always runs right after the same other one:
// in a fixed order, what one side's slice leaves dockerd to finish falls on
// the next side's (the BuildKit rows showed it first).
func alternate(rounds int, d time.Duration, n int, measure func(t *tally, side int, d time.Duration)) []tally {
	ts := make([]tally, n)
	slice := d / time.Duration(rounds)
	for round := range rounds {
		for k := range n {
			side := (k + round) % n
			if measure(&ts[side], side, slice); ts[side].err != nil {
				return ts
			}
		}
	}
	return ts
}

// median of rates; 0 for none.
func median(rates []float64) float64 {
	if len(rates) == 0 {
		return 0
	}
	s := slices.Clone(rates)
	slices.Sort(s)
	return s[len(s)/2]
}

func newSDK(ctx context.Context, host string) (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	// Negotiate now, so that the first timed request does not pay for it.
	c.NegotiateAPIVersion(ctx)
	return c, nil
}

// cycle is `docker run --rm busybox true` as the SDK spells it.
func cycle(ctx context.Context, c *client.Client) error {
	resp, err := c.ContainerCreate(ctx, &container.Config{Image: image, Cmd: []string{"true"}}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer c.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
	if err := c.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	waitC, errC := c.ContainerWait(ctx, resp.ID, container.WaitConditionNotRunning)
	select {
	case w := <-waitC:
		if w.StatusCode != 0 {
			return fmt.Errorf("true exited %d", w.StatusCode)
		}
	case err := <-errC:
		return fmt.Errorf("wait: %w", err)
	}
	return nil
}

// execTrue is `docker exec box true`: create, start attached (a hijacked
// connection), read to EOF.
func execTrue(ctx context.Context, c *client.Client, box string) error {
	ex, err := c.ContainerExecCreate(ctx, box, container.ExecOptions{Cmd: []string{"true"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return fmt.Errorf("exec create: %w", err)
	}
	hr, err := c.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("exec start: %w", err)
	}
	defer hr.Close()
	_, err = io.Copy(io.Discard, hr.Reader)
	return err
}

// rssPeak is the highest VmRSS seen while watching.
type rssPeak struct {
	mu  sync.Mutex
	kib int64
	err error
}

// watch samples pid's VmRSS every few milliseconds until the returned stop is
// called. VmHWM alone would not do: it also remembers the ping runs.
func (p *rssPeak) watch(pid int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			kib, err := procStatusKiB(pid, "VmRSS")
			p.mu.Lock()
			if err != nil && p.err == nil {
				p.err = err
			}
			p.kib = max(p.kib, kib)
			p.mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (p *rssPeak) max() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kib
}

// procStatusKiB reads one "Name: <n> kB" line of /proc/<pid>/status.
func procStatusKiB(pid int, name string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, name)
}

// timeStartups execs dockgate n times and returns the median time until its
// socket answers GET /_ping (forwarded to dockerd, so a first upstream
// connection is included). testbed.StartDockgate polls far too coarsely to
// time a 50 ms target, hence the tight loop here.
func timeStartups(ctx context.Context, bin, dir, upstream string, n int) (float64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	var ms []float64
	for i := range n {
		sock := filepath.Join(dir, fmt.Sprintf("s%d.sock", i))
		cmd := exec.Command(bin, "serve", "--listen", "unix://"+sock, "--upstream", upstream, "--audit-log", filepath.Join(dir, "audit.log"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		err := pollPing(ctx, sock, 5*time.Second)
		elapsed := time.Since(start)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		waitErr := make(chan error, 1)
		go func() { waitErr <- cmd.Wait() }()
		select {
		case <-waitErr:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-waitErr
		}
		if err != nil {
			return 0, fmt.Errorf("%w; stderr: %s", err, stderr.String())
		}
		ms = append(ms, float64(elapsed)/1e6)
	}
	slices.Sort(ms)
	return ms[len(ms)/2], nil
}

func pollPing(ctx context.Context, sock string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := pingOnce(sock)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no /_ping answer after %v: %w", timeout, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(500 * time.Microsecond)
	}
}

func pingOnce(sock string) error {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// round keeps three decimals: more is noise, and it keeps results.json
// readable.
func round(v float64) float64 { return math.Round(v*1000) / 1000 }

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func kernel() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
