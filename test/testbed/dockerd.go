package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// Dockerd is a private dockerd whose data, exec root, socket and log all live
// in Dir. It never touches the system's daemon: its own config file, no
// default bridge, no iptables rules. The current Engine also has its own
// containerd in Dir/containerd.
type Dockerd struct {
	Dir    string `json:"dir"`
	Socket string `json:"socket"`
	Host   string `json:"host"` // unix://Socket
	Pid    int    `json:"pid"`
	Log    string `json:"log"`

	Engine     string `json:"engine"`      // EngineDebian or EngineCurrent
	Version    string `json:"version"`     // what dockerd reports: "20.10.24+dfsg1", "29.8.0"
	APIVersion string `json:"api_version"` // its newest API version: "1.41", "1.56"

	proc       *process // nil when borrowed from the process that started it
	containerd *process // the current Engine's containerd; nil for Debian's (dockerd starts its own)
}

// daemonConfig is every bed's daemon.json. BuildKit inside dockerd grants
// a build the security.insecure entitlement (a privileged RUN step) only
// when the daemon allows it; the bed allows it, so that a test can show a
// privileged build working directly and refused through dockgate.
// network.host is allowed by default on both engines.
const daemonConfig = `{"builder": {"entitlements": {"security-insecure": true}}}
`

// StartDockerd starts Debian's dockerd in dir (created if needed; keep it
// short: a Unix socket path has at most 108 bytes) and waits until /_ping
// answers.
func StartDockerd(ctx context.Context, dir string) (*Dockerd, error) {
	return StartEngine(ctx, dir, EngineDebian)
}

// StartEngine starts dockerd of the given engine in dir. For the current
// Engine it first builds it (once: see BuildEngine), then starts its
// containerd and its dockerd with the cache's binaries first on PATH.
func StartEngine(ctx context.Context, dir, engine string) (*Dockerd, error) {
	return StartEngineOnBridge(ctx, dir, engine, "none")
}

// StartEngineOnBridge is StartEngine with dockerd's default bridge network
// on the Linux bridge named bridge ("none": no default bridge, as every
// bed has), which must exist with an IPv4 address (AddBridge), and dockerd
// given args besides the bed's own (--userns-remap=default, say).
func StartEngineOnBridge(ctx context.Context, dir, engine, bridge string, args ...string) (*Dockerd, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	d := &Dockerd{
		Dir:    dir,
		Socket: filepath.Join(dir, "docker.sock"),
		Log:    filepath.Join(dir, "dockerd.log"),
		Engine: engine,
	}
	d.Host = "unix://" + d.Socket
	// containerd's socket under the exec root is the longest path dockerd makes.
	if n := len(filepath.Join(dir, "exec", "containerd", "containerd.sock.ttrpc")); n > 107 {
		return nil, fmt.Errorf("dockerd dir %s is too long for its sockets (%d bytes): use os.MkdirTemp(\"/tmp\", \"dg\")", dir, n)
	}
	config := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(config, []byte(daemonConfig), 0o644); err != nil {
		return nil, err
	}
	env, dockerd := baseEnv(), "dockerd"
	var extra []string
	switch engine {
	case EngineDebian:
	case EngineCurrent:
		cache, err := BuildEngine(ctx, os.Stderr)
		if err != nil {
			return nil, err
		}
		bin := filepath.Join(cache, "bin")
		env, dockerd = withPath(env, bin), filepath.Join(bin, "dockerd")
		var socket string
		if d.containerd, socket, err = startContainerd(ctx, filepath.Join(dir, "containerd"), env, bin); err != nil {
			return nil, err
		}
		extra = []string{"--containerd", socket, "--ip6tables=false"}
	default:
		return nil, fmt.Errorf("testbed: unknown engine %q", engine)
	}
	p, err := startProcess(d.Log, env, dockerd, append([]string{
		"--host", d.Host,
		"--config-file", config,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--bridge", bridge,
		"--iptables=false", // leave the host's firewall alone: other daemons may share it
		"--shutdown-timeout", "2",
	}, append(extra, args...)...)...)
	if err != nil {
		err = fmt.Errorf("start dockerd: %w", err)
		if d.containerd != nil {
			err = errors.Join(err, d.containerd.stop(syscall.SIGTERM, 10*time.Second))
		}
		return nil, err
	}
	d.proc, d.Pid = p, p.pid()
	err = waitReady(ctx, p, d.Log, 60*time.Second, func(ctx context.Context) error { return ping(ctx, d.Socket) })
	if err == nil {
		err = d.version(ctx)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("dockerd: %w", err), d.Stop())
	}
	return d, nil
}

// version asks dockerd what it is.
func (d *Dockerd) version(ctx context.Context) error {
	c, err := d.Client()
	if err != nil {
		return err
	}
	defer c.Close()
	v, err := c.ServerVersion(ctx)
	if err != nil {
		return fmt.Errorf("GET /version: %w", err)
	}
	d.Version, d.APIVersion = v.Version, v.APIVersion
	return nil
}

// String names the engine for logs: "dockerd 29.8.0 (API 1.56)".
func (d *Dockerd) String() string {
	return fmt.Sprintf("dockerd %s (API %s)", d.Version, d.APIVersion)
}

// Client returns a Go SDK client for this daemon; the caller closes it.
func (d *Dockerd) Client() (*client.Client, error) {
	return client.NewClientWithOpts(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
}

// Cleanup force-removes every container, user network and volume, so that
// Stop does not wait for containers and leaves no bridge interfaces behind.
func (d *Dockerd) Cleanup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := d.Client()
	if err != nil {
		return err
	}
	defer c.Close()
	var errs []error
	cs, err := c.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return fmt.Errorf("cleanup: list containers: %w", err)
	}
	for _, ct := range cs {
		if err := c.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, fmt.Errorf("cleanup: remove container %.12s: %w", ct.ID, err))
		}
	}
	ns, err := c.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		errs = append(errs, fmt.Errorf("cleanup: list networks: %w", err))
	}
	for _, n := range ns {
		switch n.Name {
		case "bridge", "host", "none":
			continue
		}
		if err := c.NetworkRemove(ctx, n.ID); err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, fmt.Errorf("cleanup: remove network %s: %w", n.Name, err))
		}
	}
	vs, err := c.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs()})
	if err != nil {
		errs = append(errs, fmt.Errorf("cleanup: list volumes: %w", err))
	}
	for _, v := range vs.Volumes {
		if err := c.VolumeRemove(ctx, v.Name, true); err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, fmt.Errorf("cleanup: remove volume %s: %w", v.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Stop stops dockerd by its pid (SIGTERM, then SIGKILL after a grace
// period), kills whatever it left running (containerd, shims, containers),
// unmounts everything under Dir and removes Dir.
func (d *Dockerd) Stop() error {
	if d.proc == nil {
		return errors.New("testbed: this dockerd belongs to another process")
	}
	ids := d.containerIDs() // before the data dir goes
	var errs []error
	if err := d.proc.stop(syscall.SIGTERM, 30*time.Second); err != nil && !isSignalExit(err) {
		errs = append(errs, fmt.Errorf("dockerd: %w", err))
	}
	// The current Engine's containerd is ours to stop, after dockerd;
	// Debian's exits with dockerd.
	if d.containerd != nil {
		if err := d.containerd.stop(syscall.SIGTERM, 15*time.Second); err != nil && !isSignalExit(err) {
			errs = append(errs, fmt.Errorf("containerd: %w", err))
		}
	}
	// Give containerd and the shims a moment before the hard way.
	for i := 0; i < 50 && d.leftovers() > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if n := killProcessesMentioning(d.Dir) + killCgroups(ids); n > 0 {
		errs = append(errs, fmt.Errorf("dockerd left %d processes running: killed", n))
		time.Sleep(200 * time.Millisecond)
	}
	if err := unmountUnder(d.Dir); err != nil {
		errs = append(errs, err)
	}
	if os.Getenv("DOCKGATE_E2E_KEEP") == "" {
		if err := os.RemoveAll(d.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *Dockerd) containerIDs() []string {
	entries, _ := os.ReadDir(filepath.Join(d.Dir, "data", "containers"))
	var ids []string
	for _, e := range entries {
		if len(e.Name()) == 64 {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

// leftovers counts the processes still naming Dir (containerd, shims).
func (d *Dockerd) leftovers() int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), d.Dir+"/") {
			n++
		}
	}
	return n
}

// isSignalExit reports whether err is the exit of a process that died of
// SIGTERM: a daemon that does not catch the signal is still stopped cleanly.
func isSignalExit(err error) bool {
	var ee interface{ Sys() any }
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return true
		}
	}
	return false
}
