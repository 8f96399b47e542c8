package authz

import (
	"net/http"
	"testing"
)

// TestImageTargetFacts: every name a request gives an image is an
// image-target fact and never an image fact, so that a row approving a
// namespace for pulls and runs does not approve minting names in it.
func TestImageTargetFacts(t *testing.T) {
	const approved = "registry.example.com/approved/app"
	runFactCases(t, []factCase{
		{name: "tag into the approved namespace", target: "/v1.41/images/ci.local/x/tag?repo=" + approved + "&tag=1",
			want: []string{"image ci.local/x:latest", "image-target " + approved + ":1"}, not: []string{"image " + approved + ":1"}},
		{name: "tag target normalized as dockerd names it", target: "/v1.41/images/busybox/tag?repo=Registry.Example.com/approved/app",
			want: []string{"image-target Registry.Example.com/approved/app:latest"}},
		{name: "tag target on Docker Hub", target: "/v1.41/images/busybox/tag?repo=library/busybox&tag=evil",
			want: []string{"image-target docker.io/library/busybox:evil"}},
		{name: "tag target in a form body", target: "/v1.41/images/busybox/tag", ctype: "application/x-www-form-urlencoded", body: "repo=" + approved + "&tag=2",
			want: []string{"image-target " + approved + ":2"}, not: []string{"image " + approved + ":2"}},
		{name: "commit into the approved namespace", target: "/v1.41/commit?container=c&repo=" + approved + "&tag=3",
			want: []string{"image-target " + approved + ":3"}, not: []string{"image " + approved + ":3"}},
		{name: "commit without a name names nothing", target: "/v1.41/commit?container=c", exact: true},
		{name: "import into the approved namespace", target: "/v1.41/images/create?fromSrc=-&repo=" + approved + "&tag=4", ctype: "-",
			want: []string{"image-target " + approved + ":4"}, not: []string{"image " + approved + ":4"}, exact: true},
		{name: "import from a URL into the approved namespace", target: "/v1.41/images/create?fromSrc=http://evil.example.com/rootfs.tar&repo=" + approved, ctype: "-",
			want: []string{"image-target " + approved + ":latest"}},
		{name: "build t= into the approved namespace, each of them", target: "/v1.41/build?t=ci.local/ok:1&t=" + approved + ":5",
			want: []string{"image-target ci.local/ok:1", "image-target " + approved + ":5"}, not: []string{"image " + approved + ":5"}},
		{name: "build output naming the approved namespace", target: `/v1.41/build?outputs=%5B%7B%22Type%22%3A%22image%22%2C%22Attrs%22%3A%7B%22name%22%3A%22registry.example.com%2Fapproved%2Fapp%3A6%22%7D%7D%5D`,
			want: []string{"build output=image", "image-target " + approved + ":6"}, not: []string{"image " + approved + ":6"}},
		{name: "the source of a tag stays an image fact", target: "/v1.41/images/" + approved + ":1/tag?repo=ci.local/copy",
			want: []string{"image " + approved + ":1", "image-target ci.local/copy:latest"}, not: []string{"image-target " + approved + ":1"}},
	})
}

// TestDistributionInspectFacts: GET /distribution/{name}/json makes
// dockerd contact the registry of name, so it carries the image fact of
// the reference, normalized as dockerd's handler reads it.
func TestDistributionInspectFacts(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	runFactCases(t, []factCase{
		{name: "Docker Hub short name means :latest", method: http.MethodGet, target: "/v1.41/distribution/busybox/json",
			want: []string{"image docker.io/library/busybox:latest"}, exact: true},
		{name: "an unapproved registry with a port", method: http.MethodGet, target: "/v1.41/distribution/evil.example.com:5000/team/app:1/json",
			want: []string{"image evil.example.com:5000/team/app:1"}, exact: true},
		{name: "a look-alike of the approved registry", method: http.MethodGet, target: "/distribution/registry.example.com.evil.io/approved/app/json",
			want: []string{"image registry.example.com.evil.io/approved/app:latest"}, exact: true},
		{name: "by digest", method: http.MethodGet, target: "/v1.41/distribution/registry.example.com/approved/app@" + digest + "/json",
			want: []string{"image registry.example.com/approved/app@" + digest}, exact: true},
		{name: "a full image ID names no registry", method: http.MethodGet, target: "/v1.41/distribution/" + digest[len("sha256:"):] + "/json",
			want: []string{"image " + digest}, exact: true},
		{name: "an all-hex short name is a repository, not an ID", method: http.MethodGet, target: "/v1.41/distribution/abc123/json",
			want: []string{"image docker.io/library/abc123:latest"}, exact: true},
		{name: "an invalid reference refused", method: http.MethodGet, target: "/v1.41/distribution/Evil/json", status: http.StatusBadRequest},
	})
}
