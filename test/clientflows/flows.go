// Package clientflows holds what real docker clients other than the docker
// CLI do, as the end-to-end client matrix runs them (through dockgate as a
// CI tenant and directly, comparing the transcripts) and as the bench
// times them (direct and through dockgate). Each flow returns a
// transcript without IDs or timings, so that two runs compare equal.
package clientflows

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Result is one finished program.
type Result struct {
	Args           []string
	Stdout, Stderr string
	Code           int // -1: it did not run or end
}

func (r Result) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout: %q\nstderr: %q", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Runner runs prog as the flow's user, with DOCKER_HOST set to the side
// being tried and env added.
type Runner func(ctx context.Context, env []string, prog string, args ...string) Result

// The Debian packages of the clients (.ci/run installs them).
const (
	Python         = "/usr/bin/python3"
	DockerPyModule = "/usr/lib/python3/dist-packages/docker/__init__.py"
	Compose        = "/usr/bin/docker-compose"
)

//go:embed dockerpy_flow.py
var dockerPyFlow string

// DockerPy runs docker-py (python3-docker 5.x) through run, exec_run,
// put/get_archive, images.build (tagging tag), streamed logs, df and
// prune. dir is a directory the user can read.
func DockerPy(ctx context.Context, run Runner, dir, image, tag string) (string, error) {
	script := filepath.Join(dir, "dockerpy_flow.py")
	if err := os.WriteFile(script, []byte(dockerPyFlow), 0o644); err != nil {
		return "", err
	}
	r := run(ctx, nil, Python, script, "py", image, tag)
	if r.Code != 0 {
		return "", fmt.Errorf("docker-py: %v", r)
	}
	// The tag is the caller's; the transcript does not name it.
	return strings.ReplaceAll(r.Stdout, tag, "TAG"), nil
}

// composeFile is a project as docker-compose v1 users write them: a
// service with a named volume and the project's default network.
const composeFile = `version: "2.4"
services:
  web:
    image: %s
    command: ["sh", "-c", "echo hello from web; echo data > /data/f; exec sleep 120"]
    labels:
      e2e.matrix: compose
    volumes:
      - data:/data
volumes:
  data: {}
`

// ComposeV1 runs docker-compose v1 (Debian's 1.29) up, ps, logs, exec
// through the API (COMPOSE_INTERACTIVE_NO_CLI) and through the docker CLI
// in cliDir, run and down -v, on a project in dir (the user's, created
// here).
func ComposeV1(ctx context.Context, run Runner, dir, image, cliDir string) (string, error) {
	file := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(composeFile, image)), 0o644); err != nil {
		return "", err
	}
	steps := []struct {
		env  []string
		args []string
	}{
		{nil, []string{"up", "-d"}},
		{nil, []string{"ps", "--services", "--filter", "status=running"}},
		{nil, []string{"logs", "--no-color", "--no-log-prefix", "web"}},
		{[]string{"COMPOSE_INTERACTIVE_NO_CLI=1"}, []string{"exec", "-T", "web", "sh", "-c", "cat /data/f; echo api-exec; exit 4"}},
		{nil, []string{"exec", "-T", "web", "sh", "-c", "echo cli-exec; exit 5"}},
		{nil, []string{"run", "--rm", "-T", "web", "cat", "/data/f"}},
		{nil, []string{"down", "-v", "--timeout", "1"}},
	}
	var b strings.Builder
	for _, st := range steps {
		env := append([]string{"PATH=" + cliDir + ":" + os.Getenv("PATH")}, st.env...)
		args := append([]string{"--no-ansi", "-p", "e2ematrix", "-f", file}, st.args...)
		r := run(ctx, env, Compose, args...)
		if r.Code < 0 {
			return b.String(), fmt.Errorf("docker-compose: %v", r)
		}
		fmt.Fprintf(&b, "$ %s %s\nexit %d\n%s%s", strings.Join(st.env, " "), strings.Join(st.args, " "), r.Code, r.Stdout, composeStderr(r.Stderr))
	}
	return b.String(), nil
}

// composeStderr keeps compose's progress lines but not its deprecation
// warning and the container name suffixes that vary from run to run; and
// not the one known difference: compose compares the labels of the
// network and volume it finds with its file's, and warns that dockgate's
// owner and expiry labels "changed" (docs/tenancy.md).
func composeStderr(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "--no-ansi option is deprecated") || composeOwnerWarning.MatchString(l) || strings.TrimSpace(l) == "" {
			continue
		}
		keep = append(keep, composeRunName.ReplaceAllString(l, "e2ematrix_web_run_X"))
	}
	return strings.Join(keep, "\n") + "\n"
}

var (
	composeOwnerWarning = regexp.MustCompile(`^(Network|Volume) \S+: label "io\.dockgate\.(owner|expires)" has changed\. It may need to be recreated\.$`)
	composeRunName      = regexp.MustCompile(`e2ematrix_web_run_[0-9a-f]+`)
)

// JenkinsInside runs what Jenkins' docker-workflow plugin runs for
// `docker.image(IMAGE).inside { sh '…' }` (its DockerClient and
// WithContainerStep), command by command, with the job's workspace ws and
// its @tmp sibling mounted as it mounts them, the container's user
// user ("uid:gid", the agent's). The exec step writes out.txt into ws.
func JenkinsInside(ctx context.Context, run Runner, cli, ws, image, user string) (string, error) {
	var b strings.Builder
	step := func(args ...string) Result {
		r := run(ctx, nil, cli, args...)
		fmt.Fprintf(&b, "$ docker %s\nexit %d\n", strings.Join(args, " "), r.Code)
		return r
	}
	if r := step("inspect", "-f", ".", image); strings.TrimSpace(r.Stdout) != "." {
		return b.String(), fmt.Errorf("docker inspect -f . %s: %v", image, r)
	}
	r := step("run", "-t", "-d", "-u", user, "-w", ws, "-v", ws+":"+ws+":rw,z", "-v", ws+"@tmp:"+ws+"@tmp:rw,z",
		"-e", "JENKINS_HOME=/var/jenkins_home", "-e", "BUILD_NUMBER=7", image, "cat")
	id := strings.TrimSpace(r.Stdout)
	if r.Code != 0 || id == "" {
		return b.String(), fmt.Errorf("docker run: %v", r)
	}
	defer run(context.WithoutCancel(ctx), nil, cli, "rm", "-f", id)
	b.WriteString(strings.Join(topCommands(step("top", id, "-eo", "pid,comm").Stdout), " ") + "\n")
	r = step("exec", "--env", "BUILD_NUMBER=7", "--workdir", ws, id, "sh", "-c", "echo built $BUILD_NUMBER > out.txt && id -u && pwd && cat out.txt")
	b.WriteString(strings.ReplaceAll(r.Stdout, ws, "WS"))
	step("stop", "--time=1", id)
	step("rm", "-f", "--volumes", id)
	return strings.NewReplacer(ws, "WS", id, "ID").Replace(b.String()), nil
}

// topCommands is what docker-workflow reads of `docker top -eo pid,comm`:
// the command column, after the header.
func topCommands(out string) []string {
	var cmds []string
	for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); i > 0 && len(f) >= 2 {
			cmds = append(cmds, f[1])
		}
	}
	return cmds
}
