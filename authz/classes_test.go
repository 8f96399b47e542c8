package authz

import (
	"context"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/policies"
)

// TestCIExampleRefusesRequestClasses: the requests the policy language's
// own intent forbids ("requests allowed that should not be"),
// each refused under the shipped CI example with a reason that names the
// fact, next to the ordinary CI flow of the same endpoint, which passes.
func TestCIExampleRefusesRequestClasses(t *testing.T) {
	sub, err := fs.Sub(policies.FS, "ci")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.LoadFS(sub, "ci")
	if err != nil {
		t.Fatal(err)
	}
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = refInspector()
	jenkins := []string{"user:jenkins", "uid:1001", "gid:1001", "group:jenkins", "*"}
	const approved = "registry.example.com/approved"
	for _, tc := range []struct {
		name, method, target string
		// reason is the refusal, "" when the request is allowed.
		reason string
	}{
		{"tag a job's image into the approved namespace", "POST", "/v1.41/images/ci.local/app/tag?repo=" + approved + "/app&tag=1",
			"user:jenkins may not image-target " + approved + "/app:1: no rule allows it"},
		{"tag an approved image under another approved name", "POST", "/v1.41/images/" + approved + "/app:1/tag?repo=" + approved + "/other",
			"may not image-target " + approved + "/other:latest"},
		{"tag a job's image under ci.local", "POST", "/v1.41/images/ci.local/app/tag?repo=ci.local/app&tag=2", ""},
		{"commit into the approved namespace", "POST", "/v1.41/commit?container=mine&repo=" + approved + "/app&tag=1",
			"may not image-target " + approved + "/app:1"},
		{"commit under ci.local", "POST", "/v1.41/commit?container=mine&repo=ci.local/committed", ""},
		{"build -t into the approved namespace", "POST", "/v1.41/build?t=ci.local/ok&t=" + approved + "/app:1",
			"may not image-target " + approved + "/app:1"},
		{"build output naming the approved namespace", "POST", "/v1.41/build?outputs=" + url.QueryEscape(`[{"Type":"image","Attrs":{"name":"`+approved+`/app:1"}}]`),
			"may not build output=image"},
		{"build -t under ci.local", "POST", "/v1.41/build?t=ci.local/app:1", ""},
		{"import into the approved namespace", "POST", "/v1.41/images/create?fromSrc=-&repo=" + approved + "/app",
			"may not image-target " + approved + "/app:latest"},
		{"import under ci.local", "POST", "/v1.41/images/create?fromSrc=-&repo=ci.local/imported", ""},
		{"distribution inspect of an unapproved registry", "GET", "/v1.41/distribution/evil.example.com:5000/x/json",
			"may not image evil.example.com:5000/x:latest: no rule allows it"},
		{"distribution inspect of Docker Hub", "GET", "/v1.41/distribution/busybox/json",
			"may not image docker.io/library/busybox:latest"},
		{"distribution inspect of the approved namespace", "GET", "/v1.41/distribution/" + approved + "/app:1/json", ""},
		{"rmi of a shared base image", "DELETE", "/v1.41/images/busybox", "user:jenkins may not owner none: no rule allows it"},
		{"rmi of another job's image", "DELETE", "/v1.41/images/app-theirs?force=1", "may not owner other"},
		{"rmi of the job's own image", "DELETE", "/v1.41/images/app-mine", ""},
		{"BuildKit session, which opens nothing by itself", "POST", "/session", ""},
		{"BuildKit grpc, whose calls are judged one by one", "POST", "/v1.41/grpc", ""},
		{"BuildKit build of a context another request uploads", "POST", "/v1.41/build?version=2&remote=upload-request&t=ci.local/app", "may not build buildkit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := testRequest(tc.method, tc.target, jenkins...)
			m, err := NewRouter().Route(req.Method, req.URL)
			if err != nil {
				t.Fatal(err)
			}
			dec := d.Decide(context.Background(), m, req)
			if tc.reason == "" {
				if !dec.Allow {
					t.Fatalf("refused (%d %s); facts %+v", dec.Status, dec.Reason, dec.Facts)
				}
				return
			}
			if dec.Allow || dec.Status != http.StatusForbidden || !strings.Contains(dec.Reason, tc.reason) {
				t.Fatalf("allow %v status %d reason %q, want 403 naming %q", dec.Allow, dec.Status, dec.Reason, tc.reason)
			}
		})
	}
}
