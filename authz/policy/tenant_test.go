package policy

import (
	"os"
	"strings"
	"testing"
)

// tenantTestPolicy is the tenancy policy of the tenant tests here and of
// authz's (which read the same file).
var tenantTestPolicy = func() string {
	b, err := os.ReadFile("testdata/tenancy.csv")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func TestTenantOwner(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy})
	for _, tc := range []struct {
		name     string
		subjects []string
		owner    string
		err      bool
	}{
		{"member by user", []string{"uid:1001", "user:jenkins", "gid:1001", "group:jenkins", "*"}, "user:jenkins", false},
		{"member by group: owned by its user", []string{"uid:1002", "user:alice", "gid:50", "group:runners", "*"}, "user:alice", false},
		{"root is no tenant although * ** matches every kind", []string{"uid:0", "user:root", "gid:0", "group:root", "*"}, "", false},
		{"no rule: no tenant", []string{"uid:1003", "user:carol", "*"}, "", false},
		{"deny takes tenancy back", []string{"uid:1004", "user:bob", "*"}, "", false},
		{"tenant without a subject of its prefix is refused", []string{"uid:1005", "user:unitless", "*"}, "", true},
		{"unit tenant", []string{"uid:1005", "user:unitless", "unit:ci-job@1.service", "*"}, "unit:ci-job@1.service", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owner, err := p.Owner(tc.subjects)
			if (err != nil) != tc.err || owner != tc.owner {
				t.Fatalf("Owner = %q, %v; want %q, error %v", owner, err, tc.owner, tc.err)
			}
		})
	}
}

func TestTenantRowsChecked(t *testing.T) {
	for _, row := range []string{"p, role:ci, tenant, group, allow", "p, role:ci, tenant, *, allow", "p, role:ci, tenant, user:jenkins, allow", "p, role:ci, tenant, , allow"} {
		if _, err := LoadDir(writePolicy(t, map[string]string{"t.csv": row + "\n"})); err == nil || !strings.Contains(err.Error(), "tenant") {
			t.Errorf("%s: want a tenant error, got %v", row, err)
		}
	}
	for _, prefix := range tenantPrefixes {
		if _, err := LoadDir(writePolicy(t, map[string]string{"t.csv": "p, role:ci, tenant, " + prefix + ", allow\n"})); err != nil {
			t.Errorf("%s: %v", prefix, err)
		}
	}
}

// TestTenantWithoutOwnerSubjectSaysWhy: the refusal of a tenant that has
// no subject of its prefix names the rows that make it a tenant, the
// caller, what it lacks and why, and the row that would give it an owner.
func TestTenantWithoutOwnerSubjectSaysWhy(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "g, cert:runner-7, role:ci\n"})
	for _, tc := range []struct {
		name     string
		subjects []string
		want     []string
	}{
		{"unit tenant outside a unit", []string{"uid:1005", "user:unitless", "*"}, []string{
			"the policy makes user:unitless a tenant (t.csv:11: p, role:units, tenant, unit, allow)",
			"no unit: (the caller does not run in a systemd unit)",
			`add "p, user:unitless, tenant, user, allow" to the policy`}},
		{"user tenant whose uid has no passwd name", []string{"uid:1006", "gid:50", "group:runners", "*"}, []string{
			"the policy makes uid:1006 a tenant (t.csv:6: p, role:ci, tenant, user, allow)",
			"no user: (uid 1006 has no name in the host's user database)",
			`add "p, uid:1006, tenant, uid, allow"`}},
		{"user tenant over TLS", []string{"cert:runner-7", "*"}, []string{
			"the policy makes cert:runner-7 a tenant (t.csv:6: p, role:ci, tenant, user, allow)",
			"no user: (a TLS client has no account on this host)",
			`add "p, cert:runner-7, tenant, cert, allow"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Owner(tc.subjects)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}
