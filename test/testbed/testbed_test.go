package testbed

import (
	"strings"
	"testing"
)

func TestMountinfoEscapesAreUndone(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/dg1/d/data`:          "/tmp/dg1/d/data",
		`/tmp/dg1/a\040b`:          "/tmp/dg1/a b",
		`/tmp/dg1/tab\011and\134x`: "/tmp/dg1/tab\tand\\x",
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGoroutineDumpIsCountedByOwner(t *testing.T) {
	dump := `SIGQUIT: quit
PC=0x48d9c1 m=0 sigcode=0

goroutine 0 gp=0x8c07c0 m=0 mp=0x8c17c0 [idle]:
runtime.futex(0x8c1918, 0x80, 0x0, 0x0, 0x0, 0x0)
	/usr/local/go/src/runtime/sys_linux_amd64.s:569 +0x21

goroutine 1 gp=0x10c53e4da1e0 m=nil [sync.WaitGroup.Wait]:
runtime.gopark(0x10c53e5036b8?, 0x422674?, 0x0?, 0x80?, 0x200c53e8ab5e0?)
	/usr/local/go/src/runtime/proc.go:462 +0xce
sync.(*WaitGroup).Wait(0x10c53e8b42c0)
	/usr/local/go/src/sync/waitgroup.go:206 +0x85
main.runServe(0x10c53e5a8100)
	/work/main/cmd/dockgate/serve.go:151 +0xc3e

goroutine 7 gp=0x1 m=nil [IO wait, 5 minutes]:
runtime.gopark(0x0?)
	/usr/local/go/src/runtime/proc.go:462 +0xce
github.com/dockgate/dockgate/proxy.(*conn).serve(0x1)
	/work/main/proxy/conn.go:70 +0x1
created by github.com/dockgate/dockgate/proxy.(*Server).Serve in goroutine 1

goroutine 8 gp=0x2 m=nil [IO wait]:
runtime.gopark(0x0?)
	/usr/local/go/src/runtime/proc.go:462 +0xce
github.com/dockgate/dockgate/proxy.(*conn).serve(0x1)
	/work/main/proxy/conn.go:70 +0x1
`
	n, tops, err := parseGoroutineDump([]byte(dump))
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("counted %d goroutines, want 4", n)
	}
	if len(tops) == 0 || !strings.Contains(tops[0], "2 github.com/dockgate/dockgate/proxy.(*conn).serve [IO wait]") {
		t.Errorf("tops %q: want the two proxy conns grouped first", tops)
	}
	if _, _, err := parseGoroutineDump([]byte("exit status 0")); err == nil {
		t.Error("a dump without SIGQUIT should be an error")
	}
}

func TestEnginesFromTheEnvironment(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want string
		err  bool
	}{
		{"", "debian current", false},
		{"all", "debian current", false},
		{"debian", "debian", false},
		{"current", "current", false},
		{"29", "", true},
		{"debian,current", "", true},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("DOCKGATE_E2E_ENGINE", tc.env)
			got, err := Engines()
			if (err != nil) != tc.err || strings.Join(got, " ") != tc.want {
				t.Errorf("Engines() = %v, %v; want %q (error %v)", got, err, tc.want, tc.err)
			}
			if first, err := EngineName(); !tc.err && (err != nil || first != got[0]) {
				t.Errorf("EngineName() = %q, %v; want %q", first, err, got[0])
			}
		})
	}
}

func TestDgcallOutputIsParsed(t *testing.T) {
	a, err := ParseDgcall("200\nOK")
	if err != nil || a.Status != 200 || a.Body != "OK" {
		t.Errorf("200\\nOK: %+v %v", a, err)
	}
	a, err = ParseDgcall("404\n{\"message\":\"x\"}\n")
	if err != nil || a.Status != 404 || a.Body != "{\"message\":\"x\"}\n" {
		t.Errorf("404: %+v %v", a, err)
	}
	if _, err := ParseDgcall(""); err == nil {
		t.Error("no output: want an error")
	}
	if b, err := SocketBind("unix:///tmp/dg1/g/docker.sock"); err != nil || b != "/tmp/dg1/g/docker.sock:/var/run/docker.sock" {
		t.Errorf("SocketBind: %q %v", b, err)
	}
}
