package proxy

import (
	"reflect"
	"testing"
)

// TestAuditCallerCarriesEveryRecordField fills every field of a Caller and
// checks that the audit caller it makes has every one of its own fields
// set: a field added to audit.Caller must be filled here too.
func TestAuditCallerCarriesEveryRecordField(t *testing.T) {
	c := &Caller{UID: 1, GID: 2, PID: 3, User: "u", GIDs: []uint32{2, 4}, Groups: []string{"g"}, Exe: "/e",
		Cgroup: "/system.slice/x.service", Unit: "x.service", Container: "c", Cert: "n", CertSANs: []string{"cert-dns:d"}}
	a := reflect.ValueOf(*c.AuditCaller())
	for i := range a.NumField() {
		if a.Field(i).IsZero() {
			t.Errorf("audit caller field %s is not set", a.Type().Field(i).Name)
		}
	}
	if (*Caller)(nil).AuditCaller() != nil {
		t.Error("a nil caller makes an audit caller")
	}
}
