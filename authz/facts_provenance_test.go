package authz

import (
	"net/http"
	"testing"
)

// Image provenance at run time: the fake daemon's images.
const (
	dA     = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dB     = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	idApp  = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	idEvil = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	idMix  = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

func fakeImages() map[string]fakeImage {
	// app: pulled from the approved registry.
	app := fakeImage{id: idApp, repoDigests: []string{"reg.example.com/approved/app@" + dA}, repoTags: []string{"reg.example.com/approved/app:1"}}
	// evil: imported here, then tagged with an approved name.
	evil := fakeImage{id: idEvil, repoTags: []string{"evil:latest", "reg.example.com/approved/app:2"}}
	// mix: pulled from Docker Hub, then tagged with an approved name.
	mix := fakeImage{id: idMix, repoDigests: []string{"evil/tool@" + dB}, repoTags: []string{"evil/tool:latest", "reg.example.com/approved/tool:1"}}
	return map[string]fakeImage{
		"reg.example.com/approved/app:1":       app,
		"reg.example.com/approved/app@" + dA:   app,
		"reg.example.com/approved/app:1@" + dA: app,
		idApp:                                  app,
		"111111111111":                         app,
		"evil":                                 evil,
		"reg.example.com/approved/app:2":       evil,
		idEvil:                                 evil,
		"2222":                                 evil,
		"reg.example.com/approved/tool:1":      mix,
		"evil/tool":                            mix,
		"333333":                               mix,
	}
}

func TestImageProvenanceAtRunTime(t *testing.T) {
	body := func(image string) string { return `{"Image":"` + image + `"}` }
	svc := func(image string) string {
		return `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"` + image + `"}}}`
	}
	runFactCases(t, []factCase{
		{name: "pulled image by its tag", target: createTarget, body: body("reg.example.com/approved/app:1"), exact: true,
			want: []string{"image reg.example.com/approved/app:1", "image reg.example.com/approved/app@" + dA}},
		{name: "pulled image by digest", target: createTarget, body: body("reg.example.com/approved/app@" + dA), exact: true,
			want: []string{"image reg.example.com/approved/app@" + dA}},
		{name: "pulled image by tag and digest", target: createTarget, body: body("reg.example.com/approved/app:1@" + dA), exact: true,
			want: []string{"image reg.example.com/approved/app:1@" + dA, "image reg.example.com/approved/app@" + dA}},
		{name: "pulled image by full ID", target: createTarget, body: body(idApp), exact: true,
			want: []string{"image reg.example.com/approved/app@" + dA}},
		{name: "pulled image by short ID", target: createTarget, body: body("111111111111"), exact: true,
			want: []string{"image reg.example.com/approved/app@" + dA}},
		{name: "local image under an approved tag", target: createTarget, body: body("reg.example.com/approved/app:2"), exact: true,
			want: []string{"local-image reg.example.com/approved/app:2"}},
		{name: "local image by its own name", target: createTarget, body: body("evil"), exact: true,
			want: []string{"local-image docker.io/library/evil:latest"}},
		{name: "local image by full ID", target: createTarget, body: body(idEvil), exact: true,
			want: []string{"local-image " + idEvil}},
		{name: "local image by short ID", target: createTarget, body: body("2222"), exact: true,
			want: []string{"local-image " + idEvil}},
		{name: "Hub image tagged approved: proof of another repository", target: createTarget, body: body("reg.example.com/approved/tool:1"), exact: true,
			want: []string{"local-image reg.example.com/approved/tool:1"}},
		{name: "Hub image by its own name", target: createTarget, body: body("evil/tool"), exact: true,
			want: []string{"image docker.io/evil/tool:latest", "image docker.io/evil/tool@" + dB}},
		{name: "Hub image by short ID: its registry repository", target: createTarget, body: body("333333"), exact: true,
			want: []string{"image docker.io/evil/tool@" + dB}},
		{name: "image not on the daemon: the requested name", target: createTarget, body: body("reg.example.com/approved/new:1"), exact: true,
			want: []string{"image reg.example.com/approved/new:1"}},
		{name: "ID prefix not on the daemon", target: createTarget, body: body("abcdef"), exact: true,
			want: []string{"image docker.io/library/abcdef:latest", "image sha256:abcdef"}},
		{name: "service of a local image under an approved tag", target: "/v1.41/services/create", body: svc("reg.example.com/approved/app:2"),
			want: []string{"local-image reg.example.com/approved/app:2"}, not: []string{"image reg.example.com/approved/app:2"}},
		{name: "service of a pulled image", target: "/v1.41/services/create", body: svc("reg.example.com/approved/app:1"),
			want: []string{"image reg.example.com/approved/app:1"}},
		{name: "image mount of a local image", target: createTarget, body: create(`{"Mounts":[{"Type":"image","Source":"evil","Target":"/t"}]}`),
			want: []string{"local-image docker.io/library/evil:latest"}},
		{name: "invalid reference refused before dockerd is asked", target: createTarget, body: body("Evil"), status: http.StatusBadRequest},
	})
}
