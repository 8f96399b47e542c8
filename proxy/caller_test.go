package proxy

import (
	"reflect"
	"slices"
	"testing"

	"github.com/dockgate/dockgate/authz"
)

// TestAuditCallerCarriesEveryRecordField fills every field of a Caller and
// of how its container was judged, and checks that the audit caller of
// its request has every one of its own fields set: a field added to
// audit.Caller must be filled here too.
func TestAuditCallerCarriesEveryRecordField(t *testing.T) {
	c := &Caller{UID: 1, GID: 2, PID: 3, User: "u", GIDs: []uint32{2, 4}, Groups: []string{"g"}, Exe: "/e",
		Cgroup: "/system.slice/x.service", Unit: "x.service", Container: "c", Cert: "n", CertSANs: []string{"cert-dns:d"}}
	judged := &authz.ContainerCaller{ID: "c", Known: true, Name: "ryuk", Subjects: []string{"uid:1000", "*"}, Tenant: "uid:1000", Creators: [][]string{{"uid:0", "*"}}}
	a := reflect.ValueOf(*judgedContainer(c.AuditCaller(), judged))
	for i := range a.NumField() {
		if a.Field(i).IsZero() {
			t.Errorf("audit caller field %s is not set", a.Type().Field(i).Name)
		}
	}
	if (*Caller)(nil).AuditCaller() != nil {
		t.Error("a nil caller makes an audit caller")
	}
	if c.AuditCaller().Subjects != nil || c.AuditCaller().Creators != nil {
		t.Error("the connection's audit caller says how a request was judged")
	}
	// The creators that capped a request are on record, [] for none, so
	// that a replay knows; a container dockerd did not know has none.
	for _, tc := range []struct {
		judged *authz.ContainerCaller
		want   [][]string
	}{
		{judged, [][]string{{"uid:0", "*"}}},
		{&authz.ContainerCaller{ID: "c", Known: true, Name: "web", Subjects: []string{"container:web", "*"}}, [][]string{}},
		{&authz.ContainerCaller{ID: "c", Subjects: []string{"*"}}, nil},
	} {
		got := judgedContainer(c.AuditCaller(), tc.judged).Creators
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: creators on record %#v, want %#v", tc.judged.Name, got, tc.want)
		}
	}
}

// TestContainerCallerHasNoHostSubjects: a process in a container is not
// its uid on the host. Until the decider asks dockerd who the container
// is, it has * alone; a host process keeps its identity.
func TestContainerCallerHasNoHostSubjects(t *testing.T) {
	id := "b6421e64761ae0b8e4d1dba4680b21b33b9696c84bd4a8616f51f31149a915d3"
	for _, tc := range []struct {
		name string
		c    *Caller
		want []string
	}{
		{"root in a container", &Caller{UID: 0, User: "root", GIDs: []uint32{0}, Groups: []string{"root"}, Container: id}, []string{"*"}},
		{"root on the host", &Caller{UID: 0, User: "root", GIDs: []uint32{0}, Groups: []string{"root"}}, []string{"uid:0", "user:root", "gid:0", "group:root", "*"}},
		{"a unit on the host", &Caller{UID: 5, GIDs: []uint32{5}, Unit: "ci.service"}, []string{"uid:5", "gid:5", "unit:ci.service", "*"}},
	} {
		if got := tc.c.Subjects(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: subjects %q, want %q", tc.name, got, tc.want)
		}
	}
	c := &Caller{UID: 0, User: "root", Container: id}
	if got := c.String(); got != "container b6421e64761a" {
		t.Errorf("a container caller is named %q", got)
	}
}
