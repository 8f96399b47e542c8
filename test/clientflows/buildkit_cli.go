package clientflows

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// OldCLI is Debian's docker 20.10 CLI, whose `docker build` with
// DOCKER_BUILDKIT=1 is BuildKit's classic path: the CLI serves a session
// on `POST /session` and asks for the build with `POST /build?version=2`
// naming that session; dockerd's BuildKit reads the Dockerfile and the
// context back over the session.
const OldCLI = "/usr/bin/docker"

// ClassicBuildKitBuild runs `cli build args...` with DOCKER_BUILDKIT=1
// through run, and gives it timeout to end: a client that is still running
// then is killed and its Result has Code -1, so that a caller can assert
// that the client exits by itself, every time.
func ClassicBuildKitBuild(ctx context.Context, run Runner, cli string, timeout time.Duration, args ...string) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := run(ctx, []string{"DOCKER_BUILDKIT=1"}, cli, append([]string{"build"}, args...)...)
	if ctx.Err() != nil {
		r.Code = -1
	}
	return r
}

// HostRunner runs programs as this process's user with DOCKER_HOST=host,
// HOME=home (a clean client config) and dir as the working dir. A program
// is killed when ctx ends, and with this process.
func HostRunner(host, home string) Runner {
	return func(ctx context.Context, env []string, prog string, args ...string) Result {
		cmd := exec.CommandContext(ctx, prog, args...)
		cmd.Env = append([]string{
			"PATH=" + os.Getenv("PATH"),
			"HOME=" + home,
			"DOCKER_HOST=" + host,
			"DOCKER_CLI_HINTS=false",
			"LANG=C.UTF-8",
		}, env...)
		cmd.Dir = home
		cmd.WaitDelay = 5 * time.Second
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		r := Result{Args: append([]string{prog}, args...), Stdout: out.String(), Stderr: errOut.String(), Code: -1}
		var ee *exec.ExitError
		switch {
		case err == nil:
			r.Code = 0
		case errors.As(err, &ee) && ee.Exited():
			r.Code = ee.ExitCode()
		}
		return r
	}
}
