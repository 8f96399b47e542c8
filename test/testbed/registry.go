package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Registry is a private docker-registry on a free loopback port, with its
// storage in Dir. dockerd treats loopback registries as insecure-allowed, so
// `docker push 127.0.0.1:PORT/...` works without configuration.
type Registry struct {
	Addr string `json:"addr"` // 127.0.0.1:port
	Dir  string `json:"dir"`
	Pid  int    `json:"pid"`
	Log  string `json:"log"`

	proc *process
}

// StartRegistry starts `docker-registry serve CONFIG` with storage in dir and
// waits until GET /v2/ answers.
func StartRegistry(ctx context.Context, dir string) (*Registry, error) {
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var errs []error
	for range 5 { // the free port may be taken between choosing and binding it
		r, err := startRegistry(ctx, dir)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func startRegistry(ctx context.Context, dir string) (*Registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Registry{
		Addr: fmt.Sprintf("127.0.0.1:%d", port),
		Dir:  dir,
		Log:  filepath.Join(dir, "registry.log"),
	}
	config := filepath.Join(dir, "config.yml")
	body := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), r.Addr)
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		return nil, err
	}
	p, err := startProcess(r.Log, baseEnv(), "docker-registry", "serve", config)
	if err != nil {
		return nil, fmt.Errorf("start docker-registry: %w", err)
	}
	r.proc, r.Pid = p, p.pid()
	hc := &http.Client{Timeout: 2 * time.Second}
	err = waitReady(ctx, p, r.Log, 30*time.Second, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/v2/", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		_ = p.stop(syscall.SIGKILL, 5*time.Second)
		return nil, fmt.Errorf("docker-registry: %w", err)
	}
	return r, nil
}

// Stop stops the registry (SIGTERM, then SIGKILL) and removes its dir.
func (r *Registry) Stop() error {
	if r.proc == nil {
		return errors.New("testbed: this registry belongs to another process")
	}
	var errs []error
	if err := r.proc.stop(syscall.SIGTERM, 10*time.Second); err != nil && !isSignalExit(err) {
		errs = append(errs, fmt.Errorf("docker-registry: %w", err))
	}
	if os.Getenv("DOCKGATE_E2E_KEEP") == "" {
		errs = append(errs, os.RemoveAll(r.Dir))
	}
	return errors.Join(errs...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
