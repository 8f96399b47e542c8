package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTenantWarningsNameATenantWithoutItsOwnerSubject(t *testing.T) {
	dir := t.TempDir()
	rows := "p, role:ci, endpoint, *, allow\n" +
		"p, role:ci, tenant, user, allow\n" +
		"g, uid:1001, role:ci\n" + // has a name: no warning
		"g, uid:65533, role:ci\n" + // none: every create refused
		"p, uid:4242, endpoint, system.ping, allow\n" // no name, but no tenant
	if err := os.WriteFile(filepath.Join(dir, "ci.csv"), []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{"1001": true}
	got := p.TenantWarnings(func(uid string) error {
		if named[uid] {
			return nil
		}
		return errors.New("unknown userid")
	})
	if len(got) != 1 {
		t.Fatalf("warnings %q, want one, for uid:65533", got)
	}
	for _, want := range []string{"ci.csv:4: warning: uid:65533:", "ci.csv:2: p, role:ci, tenant, user, allow", "uid 65533 has no name in the host's user database", `add "p, uid:65533, tenant, uid, allow"`} {
		if !strings.Contains(got[0], want) {
			t.Errorf("warning %q does not say %q", got[0], want)
		}
	}
}
