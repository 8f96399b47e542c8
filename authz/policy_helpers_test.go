package authz

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/dockgate/dockgate/authz/policy"
)

// writePolicy writes files (name → content) into a new directory.
func writePolicy(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadTestPolicy(t testing.TB, files map[string]string) *policy.Policy {
	t.Helper()
	p, err := policy.LoadDir(writePolicy(t, files))
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	return p
}

// creatorIDs matches the random ID of a creator record in a forwarded
// body (the record is a JSON string inside the JSON body).
var creatorIDs = regexp.MustCompile(`\\"id\\":\\"[0-9a-f]{16}\\"`)

// sameCreatorID writes every creator record's ID in body as "ID", so that
// a forwarded body can be compared with the one a test expects.
func sameCreatorID(body []byte) string {
	return creatorIDs.ReplaceAllString(string(body), `\"id\":\"ID\"`)
}

// creatorLabelOf is the creator label dockgate writes for these subject
// sets, its ID written "ID" (sameCreatorID), for a tenant owner or "".
func creatorLabelOf(owner string, sets ...[]string) string {
	b, err := json.Marshal(CreatorRecord{ID: "ID", Owner: owner, Creators: sets})
	if err != nil {
		panic(err)
	}
	return string(b)
}
