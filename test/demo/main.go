// Command demo shows dockgate at work: it starts a private dockerd, puts
// dockgate in front of it on the embedded default policy, runs real docker
// commands and raw requests through it, and prints each one beside the audit
// records it produced. Run it with `make demo` (root: it starts a dockerd).
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

const image = testbed.DefaultImage

// The docker commands run as this unprivileged user, the caller dockgate is
// for: the default policy lets uid 0 do everything.
const (
	userUID  = 65534
	userName = "nobody"
)

// step is one thing the demo does through dockgate.
type step struct {
	title string
	// args run the docker CLI; raw sends these bytes on the socket instead.
	args  []string
	stdin string
	// asRoot runs the CLI as the demo's own uid 0 instead of userUID.
	asRoot bool
	raw    string
	// note says what to look for, so the reader can check it against what
	// actually happened.
	note string
}

var steps = []step{
	{title: "server version through dockgate", args: []string{"version", "--format", "client {{.Client.Version}}, server {{.Server.Version}} (API {{.Server.APIVersion}})"}},
	{title: "run a container", args: []string{"run", "--rm", "--network", "none", image, "echo", "hello from a container"}},
	{title: "stdin reaches the container, its EOF too", args: []string{"run", "-i", "--rm", "--network", "none", image, "cat"}, stdin: "hi\n"},
	{title: "list containers", args: []string{"ps", "-a"}},
	{
		title: "an endpoint dockerd does not have",
		raw:   "GET /v1.41/nonexistent HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
		note:  "dockgate refuses what it cannot name, whatever the policy says",
	},
	{
		title: "a malformed request (Content-Length and Transfer-Encoding together)",
		raw:   "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
		note:  "ambiguous framing is the request-smuggling shape: it must never reach dockerd",
	},
	{
		title: "a privileged container",
		args:  []string{"run", "--rm", "--privileged", "--network", "none", image, "true"},
		note:  "the embedded default policy refuses this to every caller but uid 0",
	},
	{
		title:  "the same as root",
		args:   []string{"run", "--rm", "--privileged", "--network", "none", image, "true"},
		asRoot: true,
		note:   "uid 0 may do everything; on machines whose kernel refuses the capabilities, dockerd then fails to start it",
	},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx)
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "demo: interrupted, cleaned up")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) (err error) {
	if missing := testbed.Missing(); len(missing) > 0 {
		return fmt.Errorf("cannot start a private dockerd: missing %s", strings.Join(missing, ", "))
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		return errors.New("no docker CLI on PATH (apt-get install docker.io)")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return errors.New("no setpriv on PATH (apt-get install util-linux)")
	}

	say("starting a private dockerd, importing %s, building dockgate", image)
	// The socket is opened to everyone so that the unprivileged user can
	// reach it; dockgate, not the file mode, decides what that user may do.
	env, err := testbed.Setup(ctx, testbed.Options{Image: image, NoRegistry: true, DockgateArgs: []string{"--socket-mode", "0666"}})
	if err != nil {
		return err
	}
	defer func() {
		if closeErr := env.Close(); closeErr != nil && err == nil {
			err = closeErr
		}
	}()
	if env.Dockgate == nil {
		return errors.New("DOCKGATE_E2E_DIRECT is set: there is no dockgate to show")
	}
	d, g, dir := env.Dockerd, env.Dockgate, env.Dir
	for p := filepath.Dir(g.Socket); p == dir || strings.HasPrefix(p, dir+"/"); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o711); err != nil {
			return err
		}
	}
	say("dockgate serves %s in front of %s (embedded default policy)", g.Socket, d.Host)
	say("clients use: export DOCKER_HOST=%s", g.Host)

	// Private client configurations: the user's contexts or credential
	// helpers must not send the demo anywhere but dockgate.
	userHome := filepath.Join(dir, "home-"+userName)
	rootHome := filepath.Join(dir, "home-root")
	for _, h := range []string{userHome, rootHome} {
		if err := os.Mkdir(h, 0o700); err != nil {
			return err
		}
	}
	if err := os.Chown(userHome, userUID, userUID); err != nil {
		return err
	}
	clientEnv := func(home string) []string {
		return append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"),
			"DOCKER_HOST="+g.Host, "DOCKER_CONTEXT=", "DOCKER_TLS_VERIFY=", "DOCKER_CERT_PATH=")
	}

	// Only the steps' own records: not testbed's readiness pings.
	before, err := g.AuditRecords()
	if err != nil {
		return err
	}
	seen := len(before)
	for i, s := range steps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Println()
		fmt.Println(bold(fmt.Sprintf("── %d. %s", i+1, s.title)))
		switch {
		case s.raw != "":
			fmt.Printf("root# raw request on %s:\n", g.Socket)
			for _, line := range strings.Split(strings.TrimSuffix(s.raw, "\r\n\r\n"), "\r\n") {
				fmt.Println("   > " + line)
			}
			status, body, err := rawRequest(ctx, g.Socket, s.raw)
			if err != nil {
				fmt.Printf("   error: %v\n", err)
			} else {
				fmt.Printf("   %s\n", status)
				printIndented(body)
			}
		case s.asRoot:
			fmt.Printf("root# %sdocker %s\n", pipeFrom(s.stdin), shellJoin(s.args))
			if err := runDocker(ctx, exec.CommandContext(ctx, docker, s.args...), clientEnv(rootHome), s.stdin); err != nil {
				return err
			}
		default:
			fmt.Printf("%s$ %sdocker %s\n", userName, pipeFrom(s.stdin), shellJoin(s.args))
			uid := strconv.Itoa(userUID)
			cmd := exec.CommandContext(ctx, setpriv, append([]string{"--reuid=" + uid, "--regid=" + uid, "--clear-groups", docker}, s.args...)...)
			if err := runDocker(ctx, cmd, clientEnv(userHome), s.stdin); err != nil {
				return err
			}
		}
		var recs []map[string]any
		recs, seen, err = newRecords(ctx, g, seen)
		if err != nil {
			return err
		}
		fmt.Println("   audit:")
		for _, r := range recs {
			fmt.Println("   " + compact(r))
		}
		fmt.Println("   → " + verdict(recs))
		if s.note != "" {
			fmt.Println("   (" + s.note + ")")
		}
	}
	fmt.Printf("\n%d audit records in %s; removing %s\n", seen, g.AuditLog, dir)
	return nil
}

// runDocker runs the CLI and prints its combined output and exit code; only
// a failure to run it at all is an error. A command that hangs is cut off
// and shown as such, so that one stuck request cannot stall the demo.
func runDocker(ctx context.Context, cmd *exec.Cmd, env []string, stdin string) error {
	const limit = time.Minute
	timer := time.AfterFunc(limit, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	printIndented(string(out))
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err == nil:
		fmt.Println("   exit code 0")
	case !timer.Stop():
		fmt.Printf("   no answer after %v: killed\n", limit)
	case errors.As(err, &exitErr):
		fmt.Printf("   exit code %d\n", exitErr.ExitCode())
	default:
		return fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	return nil
}

// rawRequest writes request bytes as they are, which no HTTP client would
// send, and reads the one response.
func rawRequest(ctx context.Context, socket, request string) (status, body string, err error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		return "", "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.Proto + " " + resp.Status, string(b), err
}

// newRecords returns the audit records after the first seen ones. Records are
// written when dockgate has finished a request, which can be a moment after
// the client has its answer, so it waits until the log stops growing.
func newRecords(ctx context.Context, g *testbed.Dockgate, seen int) ([]map[string]any, int, error) {
	var recs []map[string]any
	stable := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && stable < 3; {
		all, err := g.AuditRecords()
		if err != nil {
			return nil, seen, err
		}
		if len(all) == len(recs)+seen && len(all) > seen {
			stable++
		} else {
			stable = 0
		}
		recs = all[seen:]
		select {
		case <-ctx.Done():
			return nil, seen, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return recs, seen + len(recs), nil
}

// compact is one audit record on one line: who asked for what, and what
// dockgate did with it. Object IDs are shortened as the docker CLI does.
func compact(r map[string]any) string {
	who := "?"
	if c, ok := r["caller"].(map[string]any); ok {
		who = fmt.Sprint(c["user"])
	}
	path := longID.ReplaceAllStringFunc(fmt.Sprint(r["path"]), func(id string) string { return id[:12] })
	s := fmt.Sprintf("%-6s %-5v %3v  %-18v %v %v", who, r["decision"], r["status"], r["action"], r["method"], path)
	if p, ok := r["phase"]; ok {
		s += fmt.Sprintf("  (%v record)", p)
	}
	if r["decision"] != "allow" || r["would_deny"] == true {
		s += fmt.Sprintf("\n          reason: %v", r["reason"])
	}
	return s
}

var longID = regexp.MustCompile(`\b[0-9a-f]{64}\b`)

// verdict sums up what dockgate did in a step, from its own records rather
// than from what the demo expected.
func verdict(recs []map[string]any) string {
	if len(recs) == 0 {
		return "no audit record (dockgate did not answer?)"
	}
	for _, r := range recs {
		if r["decision"] != "allow" {
			return fmt.Sprintf("refused by dockgate: %v %v, not forwarded", r["status"], r["action"])
		}
	}
	for _, r := range recs {
		if r["would_deny"] == true {
			return fmt.Sprintf("forwarded, but the policy would refuse %v", r["action"])
		}
	}
	msg := "allowed: every request forwarded to dockerd"
	for _, r := range recs {
		if status, ok := r["status"].(float64); ok && status >= 400 {
			msg += fmt.Sprintf("; dockerd answered %v to %v", status, r["action"])
		}
	}
	return msg
}

func printIndented(s string) {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return
	}
	for _, line := range strings.Split(s, "\n") {
		fmt.Println("   │ " + line)
	}
}

// shellJoin spells args as a shell command line, so that what is printed
// can be pasted.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsFunc(a, func(r rune) bool { return !strings.ContainsRune(safeChars, r) }) {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		quoted[i] = a
	}
	return strings.Join(quoted, " ")
}

const safeChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,"

func pipeFrom(stdin string) string {
	if stdin == "" {
		return ""
	}
	return fmt.Sprintf("echo %s | ", strings.TrimSuffix(stdin, "\n"))
}

// bold highlights step titles on a terminal and leaves logs plain.
func bold(s string) string {
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return "\033[1m" + s + "\033[0m"
	}
	return s
}

func say(format string, args ...any) {
	fmt.Printf("· "+format+"\n", args...)
}
