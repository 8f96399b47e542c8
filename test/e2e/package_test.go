package e2e

// Installing dockgate: `make deb` installed with dpkg -i
// and purged again, and `make install` into a DESTDIR whose binary, started
// through systemd-socket-activate on the installed socket path, serves the
// docker CLI.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

// pkgMake runs make in the module root and returns its output.
func pkgMake(t *testing.T, args ...string) string {
	t.Helper()
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testbed.RequireBinary(t, "make"), append([]string{"-C", root}, args...)...)
	cmd.Env = append(os.Environ(), "MAKEFLAGS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func pkgRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func pkgExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// The files the package and make install put in place, relative to the root.
var pkgFiles = []string{
	"usr/bin/dockgate",
	"lib/systemd/system/dockgate.service",
	"lib/systemd/system/dockgate.socket",
	"usr/share/doc/dockgate/operations.md",
	"etc/dockgate/dockgate.yaml",
	"etc/dockgate/policy/default.csv",
	"etc/dockgate/policy/default_test.yaml",
	"etc/dockgate/policy/model.conf",
	"usr/share/doc/dockgate/policy-testing.md",
	"usr/share/doc/dockgate/examples/ci-agent/ci-agent_test.yaml",
}

func TestPackageDebInstallsAndPurges(t *testing.T) {
	testbed.OncePerRun(t)
	dpkg := testbed.RequireBinary(t, "dpkg")
	testbed.RequireBinary(t, "dpkg-deb")
	analyze := testbed.RequireBinary(t, "systemd-analyze")
	// This installs into the machine's real root: never over an existing
	// dockgate.
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "dockgate").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Skip("the dockgate package is installed on this machine; not touching it")
	}
	for _, f := range pkgFiles {
		if pkgExists("/" + f) {
			t.Skipf("/%s exists on this machine; not touching it", f)
		}
	}
	hadGroup := exec.Command("getent", "group", "dockgate").Run() == nil

	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	pkgMake(t, "deb", "DEB_VERSION=0~e2e")
	debs, _ := filepath.Glob(filepath.Join(root, "bin", "dockgate_0~e2e_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb: want one bin/dockgate_0~e2e_<arch>.deb, found %v", debs)
	}
	deb := debs[0]
	defer os.Remove(deb)
	info := pkgRun(t, "dpkg-deb", "--info", deb)
	for _, want := range []string{"Package: dockgate", "Version: 0~e2e", "postinst", "prerm", "postrm", "conffiles"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info: no %q in:\n%s", want, info)
		}
	}

	installed := false
	defer func() {
		if installed {
			_ = exec.Command(dpkg, "--purge", "dockgate").Run()
		}
	}()
	out := pkgRun(t, dpkg, "-i", deb)
	installed = true
	t.Logf("dpkg -i:\n%s", out)

	for _, f := range pkgFiles {
		if !pkgExists("/" + f) {
			t.Errorf("after dpkg -i: /%s missing", f)
		}
	}
	if out := pkgRun(t, "/usr/bin/dockgate", "version"); !strings.HasPrefix(out, "dockgate ") {
		t.Errorf("dockgate version: %q", out)
	}
	// The installed config names the installed policy, and both are valid.
	if out := pkgRun(t, "/usr/bin/dockgate", "check"); !strings.Contains(out, "ok: config /etc/dockgate/dockgate.yaml") {
		t.Errorf("dockgate check with the installed config: %q", out)
	}
	unit, _ := os.ReadFile("/lib/systemd/system/dockgate.service")
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/dockgate serve ") {
		t.Errorf("the installed service does not run /usr/bin/dockgate:\n%s", unit)
	}
	if out, err := exec.Command(analyze, "verify", "/lib/systemd/system/dockgate.service", "/lib/systemd/system/dockgate.socket").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify of the installed units: %v\n%s", err, out)
	}
	conf := pkgRun(t, "dpkg-query", "--showformat=${Conffiles}", "-W", "dockgate")
	for _, f := range []string{"/etc/dockgate/dockgate.yaml", "/etc/dockgate/policy/default.csv", "/etc/dockgate/policy/model.conf"} {
		if !strings.Contains(conf, f) {
			t.Errorf("%s is not a conffile: %q", f, conf)
		}
	}
	for _, db := range []string{"group", "passwd"} {
		if err := exec.Command("getent", db, "dockgate").Run(); err != nil {
			t.Errorf("after dpkg -i: no dockgate in %s", db)
		}
	}

	out = pkgRun(t, dpkg, "--purge", "dockgate")
	installed = false
	t.Logf("dpkg --purge:\n%s", out)
	for _, f := range pkgFiles {
		if pkgExists("/" + f) {
			t.Errorf("after dpkg --purge: /%s still there", f)
		}
	}
	if pkgExists("/etc/dockgate") {
		t.Errorf("after dpkg --purge: /etc/dockgate still there")
	}
	if !hadGroup {
		for _, db := range []string{"group", "passwd"} {
			if err := exec.Command("getent", db, "dockgate").Run(); err == nil {
				t.Errorf("after dpkg --purge: dockgate still in %s", db)
			}
		}
	}
}

// pkgListen is the ListenStream of a socket unit.
var pkgListen = regexp.MustCompile(`(?m)^ListenStream=(/\S+)$`)

// pkgExecStart is the ExecStart of a service unit.
var pkgExecStart = regexp.MustCompile(`(?m)^ExecStart=(\S.*)$`)

func TestInstallIntoDestdirServesThroughSocketActivation(t *testing.T) {
	env := testbed.Shared(t)
	activate := testbed.RequireBinary(t, "systemd-socket-activate")
	dest, err := os.MkdirTemp("/tmp", "dginst")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dest)

	out := pkgMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr")
	for _, f := range pkgFiles {
		if !pkgExists(filepath.Join(dest, f)) {
			t.Errorf("make install DESTDIR: %s missing\n%s", f, out)
		}
	}
	if strings.Contains(out, "groupadd") || strings.Contains(out, "useradd") {
		t.Errorf("make install into a DESTDIR touched the machine's groups:\n%s", out)
	}

	// The installed layout, with the installed paths under dest: the
	// socket unit's path, the service's ExecStart.
	sock, _ := os.ReadFile(filepath.Join(dest, "lib/systemd/system/dockgate.socket"))
	svc, _ := os.ReadFile(filepath.Join(dest, "lib/systemd/system/dockgate.service"))
	m, e := pkgListen.FindSubmatch(sock), pkgExecStart.FindSubmatch(svc)
	if m == nil || e == nil {
		t.Fatalf("no ListenStream in the socket unit or no ExecStart in the service:\n%s\n%s", sock, svc)
	}
	argv := strings.Fields(string(e[1]))
	if argv[0] != "/usr/bin/dockgate" || argv[1] != "serve" {
		t.Fatalf("installed ExecStart runs %q, want /usr/bin/dockgate serve", e[1])
	}
	for i, a := range argv {
		switch {
		case strings.HasPrefix(a, "unix:///"):
			argv[i] = "unix://" + dest + strings.TrimPrefix(a, "unix://")
		case strings.HasPrefix(a, "/"):
			argv[i] = dest + a
		}
	}
	socket := dest + string(m[1])
	// What systemd would make: RuntimeDirectory=, LogsDirectory=.
	for _, d := range []string{filepath.Dir(socket), filepath.Join(dest, "var/log/dockgate")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The installed config names /etc/dockgate/policy: here it is under
	// dest, and the upstream is the bed's dockerd.
	argv = append(argv, "--config", filepath.Join(dest, "etc/dockgate/dockgate.yaml"),
		"--policy", filepath.Join(dest, "etc/dockgate/policy"), "--upstream", env.DirectHost())
	logPath := filepath.Join(dest, "dockgate.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(activate, append([]string{"-l", socket}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !pkgExists(socket) {
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate made no %s", socket)
		}
		time.Sleep(20 * time.Millisecond)
	}

	s := opsSession(t, env, "unix://"+socket)
	if r := s.docker("version", "--format", "{{.Server.Version}}"); r.code != 0 || strings.TrimSpace(r.stdout) == "" {
		t.Errorf("docker version through the installed dockgate: %v", r)
	}
	if r := s.docker("ps"); r.code != 0 || !strings.HasPrefix(r.stdout, "CONTAINER ID") {
		t.Errorf("docker ps through the installed dockgate: %v", r)
	}
	if r := s.docker("run", "--rm", image, "true"); r.code != 0 {
		t.Errorf("docker run through the installed dockgate: %v", r)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("the installed dockgate on SIGTERM: want exit 0: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the installed dockgate did not exit 30 s after SIGTERM")
	}
	log, _ := os.ReadFile(logPath)
	for _, want := range []string{"socket-activated", `"policy":"` + filepath.Join(dest, "etc/dockgate/policy")} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the installed dockgate's log has no %q:\n%s", want, log)
		}
	}
	audit, _ := os.ReadFile(filepath.Join(dest, "var/log/dockgate/audit.log"))
	if !strings.Contains(string(audit), `/containers/json"`) {
		t.Errorf("no audit record of docker ps in the installed audit log:\n%.2000s", audit)
	}

	// A second install keeps a changed policy file; uninstall removes the
	// rest and keeps it too.
	changed := filepath.Join(dest, "etc/dockgate/policy/default.csv")
	if err := os.WriteFile(changed, []byte("p, uid:0, *, **, allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = pkgMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr")
	if b, _ := os.ReadFile(changed); string(b) != "p, uid:0, *, **, allow\n" {
		t.Errorf("make install overwrote a changed %s:\n%s", changed, out)
	}
	if !strings.Contains(out, changed+": kept") {
		t.Errorf("make install does not say it kept %s:\n%s", changed, out)
	}
	out = pkgMake(t, "uninstall", "DESTDIR="+dest, "PREFIX=/usr")
	for _, f := range pkgFiles {
		p := filepath.Join(dest, f)
		if p == changed {
			if !pkgExists(p) {
				t.Errorf("make uninstall removed the changed %s", p)
			}
		} else if pkgExists(p) {
			t.Errorf("make uninstall left %s:\n%s", p, out)
		}
	}
}
