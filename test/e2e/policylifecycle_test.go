package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

// TestPolicyReplayOfARealTrail runs a CI job's work through dockgate with
// the real docker CLI (an approved image run, listed, a privileged run and
// a host bind refused), then replays the audit trail dockgate wrote:
// under the same policy nothing changes, and under a candidate that no
// longer approves the job's image exactly the requests that carried that
// image are newly refused, and the replay fails.
func TestPolicyReplayOfARealTrail(t *testing.T) {
	env := testbed.Shared(t)
	policy := azPolicy(t, false)
	g := azStartGate(t, env, policy)
	u := azNewUser(t, g.Host)

	u.must("run", "--rm", "--label", azLabel+"=replay", testbed.DefaultImage, "true")
	u.must("ps", "-a")
	u.must("run", "--rm", "--label", azLabel+"=replay", testbed.DefaultImage, "echo", "hello")
	for _, refused := range [][]string{
		{"run", "--rm", "--privileged", testbed.DefaultImage, "true"},
		{"run", "--rm", "-v", "/etc:/host-etc", testbed.DefaultImage, "true"},
	} {
		if r := u.run("", nil, refused...); r.code == 0 {
			t.Fatalf("refused work succeeded: %v", r)
		}
	}
	// The last request's record is on file before the trail is read.
	g.azRecord(t, "the refused host bind", func(rec map[string]any) bool {
		for _, f := range azFacts(rec) {
			if f["kind"] == "bind" && f["value"] == "/etc" {
				return true
			}
		}
		return false
	})
	recs, err := g.AuditRecords()
	if err != nil {
		t.Fatal(err)
	}
	// What the candidate below must newly refuse, read from the trail
	// itself: every forwarded request that carried the job's image.
	var want []string
	for _, rec := range recs {
		if rec["phase"] == "start" || rec["decision"] != "allow" {
			continue
		}
		for _, f := range azFacts(rec) {
			if (f["kind"] == "image" || f["kind"] == "local-image") && f["value"] == azImageFact {
				want = append(want, rec["request_id"].(string))
				break
			}
		}
	}
	if len(want) < 2 {
		t.Fatalf("the trail has %d forwarded requests with the image %s, want the two runs' creates at least", len(want), azImageFact)
	}

	replay := func(rows string) (int, replayReport) {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "ci.csv"), []byte(rows), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, env.Bin, "policy", "replay", "--config", "", "--format", "json", "--policy", dir, g.AuditLog)
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("dockgate policy replay: %v", err)
		}
		var rep replayReport
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("dockgate policy replay (exit %d): %v\n%s", code, err, out)
		}
		return code, rep
	}

	code, rep := replay(policy)
	if code != 0 || len(rep.NewlyRefused) != 0 || len(rep.NewlyAllowed) != 0 || rep.NotReplayableSucceeded != 0 {
		t.Errorf("the same policy: exit %d, %+v", code, rep)
	}
	if rep.Requests == 0 {
		t.Errorf("the same policy replayed no requests")
	}

	stricter := strings.NewReplacer(
		"p, role:ci, image, "+azImageFact+", allow\n", "",
		"p, role:ci, local-image, "+azImageFact+", allow\n", "").Replace(policy)
	if stricter == policy {
		t.Fatal("the candidate is the policy: azPolicy no longer approves the image in these rows")
	}
	code, rep = replay(stricter)
	var got []string
	for _, c := range rep.NewlyRefused {
		got = append(got, c.RequestID)
		if c.Fact.Rule != "no rule allows it" || !strings.Contains(c.Fact.Value, "test/busybox") {
			t.Errorf("newly refused %s %s by %s %s: %s", c.Method, c.Path, c.Fact.Kind, c.Fact.Value, c.Fact.Rule)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if code != 1 || !slices.Equal(got, want) {
		t.Errorf("stricter candidate: exit %d, newly refused %v, want exactly %v", code, got, want)
	}
}

// replayReport is the part of `dockgate policy replay --format json` the
// test reads.
type replayReport struct {
	Requests     int `json:"requests"`
	NewlyRefused []struct {
		RequestID string `json:"request_id"`
		Method    string `json:"method"`
		Path      string `json:"path"`
		Fact      struct {
			Kind, Value, Rule string
		} `json:"fact"`
	} `json:"newly_refused"`
	NewlyAllowed           []json.RawMessage `json:"newly_allowed"`
	NotReplayableSucceeded int               `json:"not_replayable_succeeded"`
}
