package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dockgate/dockgate/test/clientflows"
)

// clients times the flows of the end-to-end client matrix
// (test/clientflows), each as root straight to dockerd and through
// dockgate, alternating, cfg.rounds times per side: the median of each.
// A client that is not installed is a row with the error.
func (b *bench) clients(ctx context.Context) ([]row, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cli, err := exec.LookPath("docker")
	if _, serr := os.Stat("/usr/local/bin/docker"); serr == nil {
		cli, err = "/usr/local/bin/docker", nil
	}
	if err != nil {
		return nil, err
	}
	flows := []struct {
		name string
		need []string
		run  func(ctx context.Context, r clientflows.Runner, dir string) error
	}{
		{"docker-py flow", []string{clientflows.Python, clientflows.DockerPyModule}, func(ctx context.Context, r clientflows.Runner, dir string) error {
			_, err := clientflows.DockerPy(ctx, r, dir, image, "ci.local/bench-py:1")
			return err
		}},
		{"docker-compose v1 flow", []string{clientflows.Compose}, func(ctx context.Context, r clientflows.Runner, dir string) error {
			_, err := clientflows.ComposeV1(ctx, r, dir, image, filepath.Dir(cli))
			return err
		}},
		{"testcontainers-go flow", nil, func(ctx context.Context, r clientflows.Runner, dir string) error {
			res := r(ctx, clientflows.TestcontainersRunEnv(image), self)
			if res.Code != 0 {
				return fmt.Errorf("%v", res)
			}
			return nil
		}},
		{"Jenkins inside{} flow", nil, func(ctx context.Context, r clientflows.Runner, dir string) error {
			ws := filepath.Join(dir, "workspace")
			for _, d := range []string{ws, ws + "@tmp"} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return err
				}
			}
			_, err := clientflows.JenkinsInside(ctx, r, cli, ws, image, "0:0")
			return err
		}},
	}
	var rows []row
	for _, f := range flows {
		name := "client: " + f.name
		if missing := missingFiles(f.need); missing != "" {
			rows = append(rows, row{Name: name, Unit: "ms", Error: "not installed: " + missing})
			continue
		}
		logf("%s (median of %d per side)", name, b.cfg.rounds)
		var times [2][]time.Duration
		var errs []error
		for range b.cfg.rounds {
			for side, host := range []string{b.direct.DaemonHost(), b.proxied.DaemonHost()} {
				d, err := timeFlow(ctx, b.dir, host, f.run)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				times[side] = append(times[side], d)
			}
		}
		rows = append(rows, flowRow(name, medianDuration(times[0]), medianDuration(times[1]), errors.Join(errs...)))
	}
	return rows, nil
}

func timeFlow(ctx context.Context, parent, host string, run func(context.Context, clientflows.Runner, string) error) (time.Duration, error) {
	dir, err := os.MkdirTemp(parent, "client-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	runner := func(ctx context.Context, env []string, prog string, args ...string) clientflows.Result {
		cmd := exec.CommandContext(ctx, prog, args...)
		cmd.Env = append(append(os.Environ(), "DOCKER_HOST="+host, "HOME="+dir, "DOCKER_BUILDKIT=0"), env...)
		cmd.Dir = dir
		cmd.WaitDelay = 5 * time.Second
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		r := clientflows.Result{Args: append([]string{prog}, args...), Stdout: out.String(), Stderr: errOut.String(), Code: -1}
		var ee *exec.ExitError
		switch {
		case err == nil:
			r.Code = 0
		case errors.As(err, &ee):
			r.Code = ee.ExitCode()
		}
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	err = run(ctx, runner, dir)
	return time.Since(start), err
}

// flowRow is a client flow's median wall time on each side, in ms.
func flowRow(name string, direct, dockgate time.Duration, err error) row {
	d, g := round(float64(direct)/1e6), round(float64(dockgate)/1e6)
	r := row{Name: name, Unit: "ms", Direct: &d, Dockgate: g}
	if err != nil {
		r.Error = err.Error()
	}
	if d > 0 && g > 0 {
		ratio, added := round(g/d), round(g-d)
		r.Ratio, r.Added = &ratio, &added
	}
	return r
}

func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func missingFiles(paths []string) string {
	var missing []string
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	return strings.Join(missing, ", ")
}
