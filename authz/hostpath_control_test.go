package authz

import (
	"encoding/binary"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// controlHost builds a host root whose directories belong to different
// users, as a CI host's would:
//
//	/srv/ci-cache           root 0755: the safe layout's parent
//	/srv/ci-cache/job       root 0755: a job directory dockerd created
//	/srv/ci-cache/mine      uid 1001: a directory the caller owns
//	/srv/ci-cache/link ->   /srv/home/d, a root symlink into the caller's home
//	/srv/home               uid 1001 0755: the caller's own tree
//	/srv/grp                root:1001 0775: writable by group 1001
//	/srv/tmp                root 1777: sticky, like /tmp
//	/srv/tmp/rootdir        root, /srv/tmp/userdir uid 1001
//	/srv/open               root 0777: writable by everyone, not sticky
//	/srv/acl                root 0755 with an ACL granting uid 1001 rwx
func controlHost(t *testing.T) (hostFS, bool) {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	dirs := []struct {
		path string
		uid  int
		gid  int
		mode uint32
	}{
		{"srv", 0, 0, 0o755},
		{"srv/ci-cache", 0, 0, 0o755},
		{"srv/ci-cache/job", 0, 0, 0o755},
		{"srv/ci-cache/mine", 1001, 1001, 0o755},
		{"srv/home", 1001, 1001, 0o755},
		{"srv/home/d", 1001, 1001, 0o755},
		{"srv/grp", 0, 1001, 0o775},
		{"srv/grp/d", 0, 0, 0o755},
		{"srv/tmp", 0, 0, 0o1777},
		{"srv/tmp/rootdir", 0, 0, 0o755},
		{"srv/tmp/userdir", 1001, 1001, 0o755},
		{"srv/open", 0, 0, 0o777},
		{"srv/open/d", 0, 0, 0o755},
		{"srv/acl", 0, 0, 0o755},
		{"srv/acl/d", 0, 0, 0o755},
	}
	for _, d := range dirs {
		p := filepath.Join(root, d.path)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		// syscall's mode: os.FileMode has no 0o1000 sticky bit, and
		// Mkdir applies the umask.
		if err := syscall.Chmod(p, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, d.uid, d.gid); err != nil {
			t.Skipf("cannot give %s away (not root?): %v", d.path, err)
		}
	}
	if err := os.Symlink("/srv/home/d", filepath.Join(root, "srv/ci-cache/link")); err != nil {
		t.Fatal(err)
	}
	acl := aclBlob(aclEntry{aclUserObj, 7, 0}, aclEntry{aclUser, 7, 1001}, aclEntry{aclGroupObj, 5, 0}, aclEntry{aclMask, 7, 0}, aclEntry{aclOther, 5, 0})
	err := syscall.Setxattr(filepath.Join(root, "srv/acl"), "system.posix_acl_access", acl, 0)
	haveACL := err == nil
	if err != nil && !errors.Is(err, syscall.ENOTSUP) {
		t.Fatal(err)
	}
	return hostFS{root: root}, haveACL
}

func aclBlob(entries ...aclEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

func TestReplaceableHostPaths(t *testing.T) {
	host, haveACL := controlHost(t)
	ci := &Cred{UID: 1001, GIDs: []uint32{1001}}
	other := &Cred{UID: 1002, GIDs: []uint32{1002}}
	for _, tc := range []struct {
		name string
		cred *Cred
		path string
		acl  bool
		// replaceable: a replaceable-path fact is emitted.
		replaceable bool
	}{
		{name: "job directory in the root-owned cache is safe", cred: ci, path: "/srv/ci-cache/job"},
		{name: "missing job directory dockerd will create is safe", cred: ci, path: "/srv/ci-cache/new/deeper"},
		{name: "own directory in a root-owned parent cannot be swapped", cred: ci, path: "/srv/ci-cache/mine"},
		{name: "entry below a directory the caller owns is swappable", cred: ci, path: "/srv/ci-cache/mine/sub", replaceable: true},
		{name: "root symlink into the caller's tree is swappable", cred: ci, path: "/srv/ci-cache/link", replaceable: true},
		{name: "missing entry in the caller's tree can be planted", cred: ci, path: "/srv/home/new", replaceable: true},
		{name: "group-writable parent, caller in the group", cred: ci, path: "/srv/grp/d", replaceable: true},
		{name: "group-writable parent, caller not in the group", cred: other, path: "/srv/grp/d"},
		{name: "sticky parent, root's entry", cred: ci, path: "/srv/tmp/rootdir"},
		{name: "sticky parent, caller's own entry", cred: ci, path: "/srv/tmp/userdir", replaceable: true},
		{name: "sticky parent, another user's entry", cred: other, path: "/srv/tmp/userdir"},
		{name: "sticky parent, missing entry can be planted", cred: ci, path: "/srv/tmp/missing", replaceable: true},
		{name: "world-writable parent", cred: other, path: "/srv/open/d", replaceable: true},
		{name: "world-writable parent, caller with no host account", cred: nil, path: "/srv/open/d", replaceable: true},
		{name: "caller's tree, caller with no host account", cred: nil, path: "/srv/home/d"},
		{name: "root may swap anything it could anyway", cred: &Cred{UID: 0}, path: "/srv/open/d"},
		{name: "root in a container is not host root: it changes only what its container mounts", cred: &Cred{UID: 0, Contained: true, Writable: []string{"/srv/home"}}, path: "/srv/ci-cache/job"},
		{name: "a container's writable mount is its to change, whatever its uid", cred: &Cred{UID: 4242, Contained: true, Writable: []string{"/srv/ci-cache/"}}, path: "/srv/ci-cache/job", replaceable: true},
		{name: "a container's mount holds no path beside it", cred: &Cred{UID: 0, Contained: true, Writable: []string{"/srv/ci"}}, path: "/srv/ci-cache/job"},
		{name: "a container dockgate knows nothing of may change anything", cred: &Cred{UID: 0, Contained: true, Writable: []string{"/"}}, path: "/srv/ci-cache/job", replaceable: true},
		{name: "ACL grants the caller write", cred: ci, path: "/srv/acl/d", acl: true, replaceable: true},
		{name: "ACL grants another user write", cred: other, path: "/srv/acl/d", acl: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.acl && !haveACL {
				t.Skip("the test directory's filesystem has no POSIX ACLs")
			}
			_, why, err := host.resolveFor(tc.path, tc.cred)
			if err != nil {
				t.Fatal(err)
			}
			if (why != "") != tc.replaceable {
				t.Fatalf("replaceable: got %q, want %v", why, tc.replaceable)
			}
		})
	}
}

// TestReplaceablePathFacts: every host path a request names gets the
// replaceable-path fact beside its own when the caller could redirect it.
func TestReplaceablePathFacts(t *testing.T) {
	host, _ := controlHost(t)
	ci := &Cred{UID: 1001, GIDs: []uint32{1001}}
	in := newFakeInspector()
	in.volumes["mine"] = fakeVolume{driver: "local", opts: map[string]string{"type": "none", "o": "bind", "device": "/srv/home/d"}}
	in.containers["swapped"] = fakeContainer{id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", binds: []string{"/srv/ci-cache/link"}}
	in.containers["safe"] = fakeContainer{id: "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", binds: []string{"/srv/ci-cache/job"}}
	extract := newExtractor(host)
	router := NewRouter()
	for _, tc := range []struct {
		name   string
		target string
		body   string
		want   []string
		not    []string
	}{
		{name: "Binds entry", target: createTarget, body: create(`{"Binds":["/srv/home/d:/c"]}`), want: []string{"bind /srv/home/d", "replaceable-path /srv/home/d"}},
		{name: "Mounts entry", target: createTarget, body: create(`{"Mounts":[{"Type":"bind","Source":"/srv/home/d","Target":"/c"}]}`), want: []string{"replaceable-path /srv/home/d"}},
		{name: "volume device", target: "/v1.41/volumes/create", body: `{"Name":"v","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/srv/home/d/x"}}`, want: []string{"bind /srv/home/d/x", "replaceable-path /srv/home/d/x"}},
		{name: "named volume with a device", target: createTarget, body: create(`{"Binds":["mine:/c"]}`), want: []string{"replaceable-path /srv/home/d"}},
		{name: "old-API start body", target: "/v1.23/containers/safe/start", body: `{"HostConfig":{"Binds":["/srv/home/d:/c"]}}`, want: []string{"replaceable-path /srv/home/d"}},
		{name: "safe layout", target: createTarget, body: create(`{"Binds":["/srv/ci-cache/job/run1:/c"]}`), want: []string{"bind /srv/ci-cache/job/run1"}, not: []string{"replaceable-path /srv/ci-cache/job/run1"}},
		{name: "start judges the recorded binds where they point now", target: "/v1.41/containers/swapped/start", want: []string{"bind /srv/home/d", "replaceable-path /srv/home/d"}},
		{name: "restart judges them too", target: "/v1.41/containers/swapped/restart", want: []string{"bind /srv/home/d"}},
		{name: "update judges them too", target: "/v1.41/containers/swapped/update", body: `{"RestartPolicy":{"Name":"always"}}`, want: []string{"bind /srv/home/d", "resource restart=always"}},
		{name: "start of a safe container", target: "/v1.41/containers/safe/start", want: []string{"bind /srv/ci-cache/job"}, not: []string{"replaceable-path /srv/ci-cache/job"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runFactCase(t, router, extract, in, factCase{target: tc.target, body: tc.body, cred: ci})
			if err != nil {
				t.Fatal(err)
			}
			var have []string
			for _, f := range got {
				have = append(have, f.Kind+" "+f.Value)
			}
			for _, w := range tc.want {
				if !slices.Contains(have, w) {
					t.Errorf("missing %q in %q", w, have)
				}
			}
			for _, n := range tc.not {
				if slices.Contains(have, n) {
					t.Errorf("unexpected %q in %q", n, have)
				}
			}
		})
	}
}

// TestStartPinnedToTheJudgedContainer: the recorded binds judged at start
// are those of the container dockerd will start.
func TestStartPinnedToTheJudgedContainer(t *testing.T) {
	host, _ := controlHost(t)
	in := newFakeInspector()
	id := "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	in.containers["safe"] = fakeContainer{id: id, binds: []string{"/srv/ci-cache/job"}}
	router := NewRouter()
	u := parseTarget(t, "/v1.41/containers/safe/start")
	m, err := router.Route("POST", u)
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{Method: "POST", URL: u, Header: http.Header{}, Caller: "user:test", Cred: &Cred{UID: 1001}}
	if _, err := newExtractor(host)(t.Context(), m, req, in); err != nil {
		t.Fatal(err)
	}
	if want := "/v1.41/containers/" + id + "/start"; req.Target != want {
		t.Fatalf("forwarded target %q, want %q", req.Target, want)
	}
}

func TestParseACL(t *testing.T) {
	for _, tc := range []struct {
		name string
		blob []byte
		ok   bool
	}{
		{name: "minimal", blob: aclBlob(aclEntry{aclUserObj, 7, 0}, aclEntry{aclGroupObj, 5, 0}, aclEntry{aclOther, 5, 0}), ok: true},
		{name: "wrong version", blob: append([]byte{1, 0, 0, 0}, aclBlob(aclEntry{aclOther, 7, 0})[4:]...)},
		{name: "truncated entry", blob: aclBlob(aclEntry{aclOther, 7, 0})[:9]},
		{name: "empty", blob: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseACL(tc.blob)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
