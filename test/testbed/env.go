package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options shape a bed. The zero value starts everything: dockerd with the
// busybox image, the registry, dockgate built from this module.
type Options struct {
	Image        string   // the busybox image's reference; DefaultImage when empty
	Engine       string   // EngineDebian or EngineCurrent; EngineName() when empty (Main runs each of Engines())
	NoRegistry   bool     // skip the registry
	NoDockgate   bool     // skip building and starting dockgate
	DockgateArgs []string // extra arguments for `dockgate serve`
	Race         bool     // build dockgate with -race (Main sets it when the tests are built with -race)
	LeakCheck    bool     // Main only: after the tests, dockgate's fds and goroutines are back near their baseline
	Log          io.Writer
}

// Env is one bed: dockerd (with the busybox image), the registry and dockgate
// in front of dockerd. ProxyHost is where clients under test connect.
type Env struct {
	Dir       string    `json:"dir"`
	Image     string    `json:"image"`
	Dockerd   *Dockerd  `json:"dockerd"`
	Registry  *Registry `json:"registry,omitempty"`
	Dockgate  *Dockgate `json:"dockgate,omitempty"`
	Bin       string    `json:"bin,omitempty"` // the dockgate binary
	ProxyHost string    `json:"proxy_host"`    // dockgate's unix:// host; dockerd's when Direct
	Direct    bool      `json:"direct"`        // DOCKGATE_E2E_DIRECT=1: no dockgate in the path
	Engine    string    `json:"engine"`        // EngineDebian or EngineCurrent; Dockerd says its version

	owned bool
}

// DirectHost is dockerd's own unix:// host, for comparing with ProxyHost.
func (e *Env) DirectHost() string { return e.Dockerd.Host }

// Setup starts a bed in a new temp dir under /tmp. On error everything it
// had started is stopped again.
func Setup(ctx context.Context, opts Options) (env *Env, err error) {
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, "testbed: "+format+"\n", args...)
		}
	}
	if opts.Image == "" {
		opts.Image = DefaultImage
	}
	if opts.Engine == "" {
		if opts.Engine, err = EngineName(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("/tmp", "dg")
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir, Image: opts.Image, owned: true, Direct: os.Getenv("DOCKGATE_E2E_DIRECT") != "", Engine: opts.Engine}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close())
		}
	}()

	// Building dockgate takes longest; it runs while dockerd starts.
	var (
		buildWG  sync.WaitGroup
		buildErr error
	)
	if !opts.NoDockgate && !e.Direct {
		buildWG.Add(1)
		go func() {
			defer buildWG.Done()
			start := time.Now()
			if opts.Race {
				e.Bin, buildErr = BuildDockgateRace(ctx, filepath.Join(dir, "bin"))
			} else {
				e.Bin, buildErr = BuildDockgate(ctx, filepath.Join(dir, "bin"))
			}
			logf("built %s (race=%v) in %v", e.Bin, opts.Race, time.Since(start).Round(time.Millisecond))
		}()
	}
	defer buildWG.Wait() // never leave the build running past Setup

	start := time.Now()
	if e.Dockerd, err = StartEngine(ctx, filepath.Join(dir, "d"), opts.Engine); err != nil {
		return nil, err
	}
	logf("%s, engine %s, %s ready in %v", e.Dockerd, opts.Engine, e.Dockerd.Host, time.Since(start).Round(time.Millisecond))
	if err = e.Dockerd.ImportBusybox(ctx, opts.Image); err != nil {
		return nil, err
	}
	if !opts.NoRegistry {
		if e.Registry, err = StartRegistry(ctx, filepath.Join(dir, "r")); err != nil {
			return nil, err
		}
		logf("registry %s ready", e.Registry.Addr)
	}
	e.ProxyHost = e.Dockerd.Host
	if opts.NoDockgate || e.Direct {
		return e, nil
	}
	buildWG.Wait()
	if buildErr != nil {
		return nil, buildErr
	}
	if e.Dockgate, err = StartDockgate(ctx, e.Bin, filepath.Join(dir, "g"), e.Dockerd.Host, opts.DockgateArgs...); err != nil {
		return nil, err
	}
	e.ProxyHost = e.Dockgate.Host
	logf("dockgate %s ready (pid %d)", e.Dockgate.Host, e.Dockgate.Pid)
	return e, nil
}

// Close stops dockgate, the registry and dockerd (after removing every
// container, network and volume), and removes the temp dir.
func (e *Env) Close() error {
	if !e.owned {
		return errors.New("testbed: this Env belongs to another process")
	}
	var errs []error
	if e.Dockgate != nil && e.Dockgate.proc != nil && !e.Dockgate.proc.exited() {
		errs = append(errs, e.Dockgate.Stop())
	}
	if e.Registry != nil {
		errs = append(errs, e.Registry.Stop())
	}
	if e.Dockerd != nil {
		if !e.Dockerd.proc.exited() {
			errs = append(errs, e.Dockerd.Cleanup(context.Background()))
		}
		errs = append(errs, e.Dockerd.Stop())
	}
	if os.Getenv("DOCKGATE_E2E_KEEP") == "" {
		if err := unmountUnder(e.Dir); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, os.RemoveAll(e.Dir))
	} else {
		fmt.Fprintf(os.Stderr, "testbed: DOCKGATE_E2E_KEEP: left %s\n", e.Dir)
	}
	return errors.Join(errs...)
}

const childEnv = "DOCKGATE_TESTBED_ENV"

var shared *Env

// Shared returns the bed that Main started for this test binary. Without the
// prerequisites it skips t (or fails it under DOCKGATE_E2E=required).
func Shared(t testing.TB) *Env {
	t.Helper()
	Require(t)
	if shared == nil {
		t.Fatal("testbed: no shared bed: the package's TestMain must call testbed.Main")
	}
	return shared
}

// OncePerRun skips t in every bed but the last engine's (the current
// Engine when both run): for tests that do not depend on dockerd's
// behaviour (installing the package) and for the load tests, whose
// subject is dockgate under many connections. Run in every bed they would
// only contend for the host (dpkg's lock, the two cores) while the
// engines run at once.
func OncePerRun(t testing.TB) {
	t.Helper()
	env := Shared(t)
	engines, err := Engines()
	if err != nil {
		t.Fatal(err)
	}
	if last := engines[len(engines)-1]; env.Engine != last {
		t.Skipf("runs once per run, in engine %s's bed", last)
	}
}

// Main is a TestMain: for each engine of Engines() it starts a bed (the
// engines at once, see below),
// runs the tests in a child copy of the test binary, then runs the leak
// check and tears the bed down whatever the child did (failed, panicked,
// timed out, was interrupted). Each engine's results follow a line naming
// it, and a summary line per engine ends the run. It returns the exit code
// for os.Exit.
func Main(m *testing.M, opts Options) int {
	if enc := os.Getenv(childEnv); enc != "" {
		var e Env
		if err := json.Unmarshal([]byte(enc), &e); err != nil {
			fmt.Fprintf(os.Stderr, "testbed: bad %s: %v\n", childEnv, err)
			return 1
		}
		shared = &e
		return m.Run() // the tools it built are in the bed's dir
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run()
	}
	if missing := Missing(); len(missing) > 0 {
		if Required() {
			fmt.Fprintf(os.Stderr, "testbed: missing %s (DOCKGATE_E2E=required)\nFAIL\n", strings.Join(missing, ", "))
			return 1
		}
		code := m.Run() // every test that needs the bed skips
		if err := RemoveTools(); err != nil {
			fmt.Fprintf(os.Stderr, "testbed: %v\n", err)
		}
		return code
	}
	engines, err := Engines()
	if err != nil { // Missing says so too; kept for the error's sake
		fmt.Fprintf(os.Stderr, "testbed: %v\nFAIL\n", err)
		return 1
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	if RaceEnabled {
		opts.Race = true
	}

	// Signals go to the child (it is in our process group anyway) and end
	// up in the teardown, never in a bare exit.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if _, ok := <-sigs; ok {
			cancel()
		}
	}()

	// The engines' beds share nothing (each has its own dockerd,
	// containerd, registry and dockgate), so they run at once: on two
	// cores the suite is mostly waiting for daemons. The first engine's
	// output streams; the others' goes to a file, named now and printed
	// when the first is done, so that a hang leaves it readable.
	// DOCKGATE_E2E_SEQUENTIAL=1 runs one after the other.
	sequential := os.Getenv("DOCKGATE_E2E_SEQUENTIAL") == "1"
	codes := make([]int, len(engines))
	summary := make([]string, len(engines))
	outs := make([]*os.File, len(engines))
	var wg sync.WaitGroup
	for i, engine := range engines {
		out := os.Stdout
		if i > 0 && !sequential {
			f, err := os.CreateTemp("", "dockgate-e2e-"+engine+"-*.log")
			if err != nil {
				fmt.Fprintf(os.Stdout, "testbed: %v\nFAIL\n", err)
				return 1
			}
			defer os.Remove(f.Name())
			defer f.Close()
			fmt.Fprintf(os.Stdout, "testbed: engine %s runs alongside; its output goes to %s\n", engine, f.Name())
			out = f
		}
		outs[i] = out
		run := func() {
			if ctx.Err() != nil {
				summary[i], codes[i] = fmt.Sprintf("testbed: engine %s: not run (interrupted)", engine), 1
				return
			}
			fmt.Fprintf(out, "=== engine %s\n", engine)
			o := opts
			o.Engine = engine
			if out != os.Stdout {
				o.Log = out
			}
			start := time.Now()
			c, what := mainOne(ctx, o, out)
			result := "ok"
			if c != 0 {
				result = "FAIL"
			}
			summary[i], codes[i] = fmt.Sprintf("testbed: engine %s (%s): %s in %v", engine, what, result, time.Since(start).Round(time.Second)), c
		}
		if sequential || len(engines) == 1 {
			run()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			run()
		}()
	}
	wg.Wait()
	code := 0
	for i, out := range outs {
		code = max(code, codes[i])
		if out == os.Stdout {
			continue
		}
		if _, err := out.Seek(0, io.SeekStart); err == nil {
			io.Copy(os.Stdout, out)
		}
	}
	for _, line := range summary {
		fmt.Fprintln(os.Stdout, line)
	}
	// go test shows a passing package's output only with -v: the summary
	// also goes to a file the caller names (make test prints it).
	if path := os.Getenv("DOCKGATE_E2E_SUMMARY"); path != "" {
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			for _, line := range summary {
				fmt.Fprintf(f, "%s: %s\n", filepath.Base(os.Args[0]), line)
			}
			f.Close()
		}
	}
	if code != 0 {
		fmt.Fprintln(os.Stdout, "FAIL")
	}
	return code
}

// mainOne runs the tests against one engine's bed and returns the exit
// code and what the engine reported itself as.
func mainOne(ctx context.Context, opts Options, out *os.File) (int, string) {
	what := "no bed"
	start := time.Now()
	env, err := Setup(ctx, opts)
	if err != nil {
		fmt.Fprintf(out, "testbed: FAIL: setup: %v\n", err)
		return 1, what
	}
	what = fmt.Sprintf("dockerd %s, API %s", env.Dockerd.Version, env.Dockerd.APIVersion)
	fmt.Fprintf(opts.Log, "testbed: bed ready in %v\n", time.Since(start).Round(time.Millisecond))
	code := 0
	fail := func(format string, args ...any) {
		fmt.Fprintf(out, "testbed: FAIL: "+format+"\n", args...)
		code = 1
	}

	var leak *leakBaseline
	if opts.LeakCheck && env.Dockgate != nil {
		if leak, err = takeLeakBaseline(ctx, env, opts); err != nil {
			fail("leak check baseline: %v", err)
		}
	}

	code = max(code, runChild(ctx, env, out))

	if env.Dockgate != nil {
		if !env.Dockgate.Running() {
			fail("dockgate is not running after the tests:%s", tail(env.Dockgate.Stderr, 3000))
		}
		for _, p := range env.Dockgate.Problems() {
			fail("dockgate's stderr reports:\n%s", p)
		}
		if leak != nil && env.Dockgate.Running() {
			for _, msg := range leak.check(env) {
				fail("leak check: %s", msg)
			}
		}
	}
	if err := env.Close(); err != nil {
		fail("teardown: %v", err)
	}
	return code, what
}

// runChild runs this test binary again with the bed's description in its
// environment and returns its exit code.
func runChild(ctx context.Context, env *Env, out *os.File) int {
	enc, err := json.Marshal(env)
	if err != nil {
		fmt.Fprintf(out, "testbed: %v\n", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(out, "testbed: %v\n", err)
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"="+string(enc))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, out, out
	if out == os.Stdout {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(out, "testbed: start tests: %v\n", err)
		return 1
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done(): // a signal arrived: pass SIGINT on, then insist
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
			}
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return ee.ExitCode()
	}
	fmt.Fprintf(out, "testbed: tests ended by %v\n", err)
	return 1
}
