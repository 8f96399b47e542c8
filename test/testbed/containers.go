package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// ContainerSpec is a container a test runs a caller in, created on dockerd
// directly (as an administrator would), whatever socket it is then given.
type ContainerSpec struct {
	Image  string
	Name   string // optional
	Cmd    []string
	Labels map[string]string
	Binds  []string // "HOST:CONTAINER[:ro]", e.g. dockgate's socket at /var/run/docker.sock
	User   string   // "uid:gid"; the image's (root) when empty
	Env    []string
}

// ContainerResult is a finished container.
type ContainerResult struct {
	ID             string
	Code           int
	Stdout, Stderr string
}

func (r ContainerResult) String() string {
	return fmt.Sprintf("container %.12s: exit %d\nstdout: %q\nstderr: %q", r.ID, r.Code, r.Stdout, r.Stderr)
}

// SocketBind binds the socket of host (unix://PATH) where clients in a
// container look for it: /var/run/docker.sock.
func SocketBind(host string) (string, error) {
	p, err := socketPath(host)
	if err != nil {
		return "", err
	}
	return p + ":/var/run/docker.sock", nil
}

func hostClient(host string) (*client.Client, error) {
	return client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
}

// StartContainer creates and starts s on the dockerd at host and returns its
// ID. No network (the API is a Unix socket away), so that no bed needs a
// bridge for it. The caller removes it (RemoveContainer), or lets the
// bed's teardown.
func StartContainer(ctx context.Context, host string, s ContainerSpec) (string, error) {
	c, err := hostClient(host)
	if err != nil {
		return "", err
	}
	defer c.Close()
	created, err := c.ContainerCreate(ctx,
		&container.Config{Image: s.Image, Cmd: s.Cmd, Labels: s.Labels, User: s.User, Env: s.Env},
		&container.HostConfig{Binds: s.Binds, NetworkMode: "none"}, nil, nil, s.Name)
	if err != nil {
		return "", fmt.Errorf("create a container of %s: %w", s.Image, err)
	}
	if err := c.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return created.ID, fmt.Errorf("start container %.12s: %w", created.ID, err)
	}
	return created.ID, nil
}

// WaitContainer waits until the container id ends and returns its exit code
// and output.
func WaitContainer(ctx context.Context, host, id string) (ContainerResult, error) {
	r := ContainerResult{ID: id, Code: -1}
	c, err := hostClient(host)
	if err != nil {
		return r, err
	}
	defer c.Close()
	waitC, errC := c.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case w := <-waitC:
		if w.Error != nil {
			return r, fmt.Errorf("wait for container %.12s: %s", id, w.Error.Message)
		}
		r.Code = int(w.StatusCode)
	case err := <-errC:
		return r, fmt.Errorf("wait for container %.12s: %w", id, err)
	}
	logs, err := c.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return r, fmt.Errorf("logs of container %.12s: %w", id, err)
	}
	defer logs.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		return r, fmt.Errorf("logs of container %.12s: %w", id, err)
	}
	r.Stdout, r.Stderr = stdout.String(), stderr.String()
	return r, nil
}

// RemoveContainer force-removes the container id; one that is gone is no
// error.
func RemoveContainer(ctx context.Context, host, id string) error {
	c, err := hostClient(host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("remove container %.12s: %w", id, err)
	}
	return nil
}

// RunContainer runs s to its end on the dockerd at host, removes it and
// returns what it printed.
func RunContainer(ctx context.Context, host string, s ContainerSpec) (r ContainerResult, err error) {
	id, err := StartContainer(ctx, host, s)
	if id != "" {
		defer func() { err = errors.Join(err, RemoveContainer(context.WithoutCancel(ctx), host, id)) }()
	}
	if err != nil {
		return ContainerResult{ID: id, Code: -1}, err
	}
	return WaitContainer(ctx, host, id)
}

// DgcallAnswer is what dgcall printed: the status code on its first line
// and the body after.
type DgcallAnswer struct {
	Status int
	Body   string
}

// ParseDgcall reads dgcall's stdout.
func ParseDgcall(stdout string) (DgcallAnswer, error) {
	first, body, _ := strings.Cut(stdout, "\n")
	status, err := strconv.Atoi(first)
	if err != nil {
		return DgcallAnswer{}, fmt.Errorf("dgcall printed no status line: %q", stdout)
	}
	return DgcallAnswer{Status: status, Body: body}, nil
}

// Dgcall runs `dgcall args...` in a container that s describes (s.Image
// a ClientImage; s.Cmd is set here), created on the dockerd at dockerd
// (its unix:// host: the administrator's side), with the socket of the
// unix:// host api bound at /var/run/docker.sock (dockerd's own, or
// dockgate's), and returns the answer. dgcall's exit status 0 means an
// answer came, whatever its status code; anything else is an error that
// carries the container's output.
func Dgcall(ctx context.Context, dockerd, api string, s ContainerSpec, args ...string) (DgcallAnswer, ContainerResult, error) {
	bind, err := SocketBind(api)
	if err != nil {
		return DgcallAnswer{}, ContainerResult{}, err
	}
	s.Cmd = append([]string{DgcallInside}, args...)
	s.Binds = append([]string{bind}, s.Binds...)
	r, err := RunContainer(ctx, dockerd, s)
	if err != nil {
		return DgcallAnswer{}, r, err
	}
	if r.Code != 0 {
		return DgcallAnswer{}, r, fmt.Errorf("dgcall %s: %v", strings.Join(args, " "), r)
	}
	a, err := ParseDgcall(r.Stdout)
	return a, r, err
}
