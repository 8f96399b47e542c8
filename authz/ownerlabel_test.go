package authz

import (
	"errors"
	"net/url"
	"testing"
)

func TestOwnerLabelForgingRefused(t *testing.T) {
	q := url.QueryEscape
	runFactCases(t, []factCase{
		{name: "container create", target: createTarget, body: `{"Image":"busybox","Labels":{"io.dockgate.owner":"user:victim"}}`, status: 403},
		{name: "container create, folded Labels key", target: createTarget, body: `{"Image":"busybox","labels":{"io.dockgate.owner":"x"}}`, status: 403},
		{name: "container create, upper-case LABELS key", target: createTarget, body: `{"Image":"busybox","LABELS":{"io.dockgate.owner":"x"}}`, status: 403},
		{name: "container create, escaped Labels key", target: createTarget, body: `{"Image":"busybox","La\u0062els":{"io.dockgate.owner":"x"}}`, status: 403},
		{name: "container create, long-s in Labels key", target: createTarget, body: `{"Image":"busybox","Label\u017f":{"io.dockgate.owner":"x"}}`, status: 403},
		{name: "container create, escaped label key", target: createTarget, body: `{"Image":"busybox","Labels":{"io.dockgate.\u006fwner":"x"}}`, status: 403},
		{name: "container create, empty value", target: createTarget, body: `{"Image":"busybox","Labels":{"io.dockgate.owner":""}}`, status: 403},
		{name: "container create, duplicate label keys", target: createTarget, body: `{"Image":"busybox","Labels":{"a":"1","io.dockgate.owner":"x","io.dockgate.owner":"y"}}`, status: 400},
		{name: "container create, other case is another label", target: createTarget, body: `{"Image":"busybox","Labels":{"IO.DOCKGATE.OWNER":"x","io.dockgatex":"y","io.dockgate":"z"}}`, want: []string{"image docker.io/library/busybox:latest"}},
		{name: "container create, the whole namespace is dockgate's", target: createTarget, body: `{"Image":"busybox","Labels":{"io.dockgate.owner.x":"y"}}`, status: 403},
		{name: "container create, expiry", target: createTarget, body: `{"Image":"busybox","Labels":{"io.dockgate.expires":"2999-01-01T00:00:00Z"}}`, status: 403},
		{name: "container create, other labels", target: createTarget, body: `{"Image":"busybox","Labels":{"ci.job":"1"}}`, want: []string{"image docker.io/library/busybox:latest"}},
		{name: "volume create", target: "/v1.41/volumes/create", body: `{"Name":"v","Labels":{"io.dockgate.owner":"x"}}`, status: 403},
		{name: "volume create, folded key", target: "/v1.41/volumes/create", body: `{"Name":"v","lAbElS":{"io.dockgate.owner":"x"}}`, status: 403},
		{name: "volume create, other labels", target: "/v1.41/volumes/create", body: `{"Name":"v","Labels":{"a":"b"}}`},
		{name: "network create", target: "/v1.41/networks/create", body: `{"Name":"n","Labels":{"io.dockgate.owner":"x"}}`, status: 403},
		{name: "network create, folded key", target: "/v1.41/networks/create", body: `{"Name":"n","labels":{"io.dockgate.owner":"x"}}`, status: 403},
		{name: "network create, other labels", target: "/v1.41/networks/create", body: `{"Name":"n","Labels":{"a":"b"}}`},
		{name: "build labels query", target: "/v1.41/build?labels=" + q(`{"io.dockgate.owner":"x"}`), ctype: "application/x-tar", status: 403},
		{name: "build labels query, escaped key", target: "/v1.41/build?labels=" + q(`{"io.dockgate.\u006fwner":"x"}`), ctype: "application/x-tar", status: 403},
		{name: "build labels query, other labels", target: "/v1.41/build?labels=" + q(`{"a":"b"}`), ctype: "application/x-tar"},
		{name: "build labels query, malformed", target: "/v1.41/build?labels=%7B", ctype: "application/x-tar", status: 400},
		{name: "commit config Labels", target: "/v1.41/commit?container=c", body: `{"Labels":{"io.dockgate.owner":"x"}}`, status: 403},
		{name: "commit config, folded Labels key", target: "/v1.41/commit?container=c", body: `{"LABELS":{"io.dockgate.owner":"x"}}`, status: 403},
		{name: "commit changes LABEL", target: "/v1.41/commit?container=c&changes=" + q("LABEL io.dockgate.owner=x"), status: 403},
		{name: "commit changes, lower-case label, quoted key", target: "/v1.41/commit?container=c&changes=" + q(`label "io.dockgate.owner"="x"`), status: 403},
		{name: "commit changes, legacy form", target: "/v1.41/commit?container=c&changes=" + q("LABEL io.dockgate.owner x y"), status: 403},
		{name: "commit changes, second pair", target: "/v1.41/commit?container=c&changes=" + q("LABEL a=b io.dockgate.owner=x"), status: 403},
		{name: "commit changes, escaped key", target: "/v1.41/commit?container=c&changes=" + q(`LABEL io\.dockgate.owner=x`), status: 403},
		{name: "commit changes, second change", target: "/v1.41/commit?container=c&changes=" + q("ENV A=1") + "&changes=" + q("LABEL io.dockgate.owner=x"), status: 403},
		{name: "commit changes, variable in key", target: "/v1.41/commit?container=c&changes=" + q("LABEL io.dockgate.$X=x"), status: 400},
		{name: "commit changes, other label", target: "/v1.41/commit?container=c&changes=" + q("LABEL a=io.dockgate.owner")},
		{name: "import changes LABEL", target: "/v1.41/images/create?fromSrc=-&changes=" + q("LABEL io.dockgate.owner=x"), ctype: "application/x-tar", status: 403},
		{name: "service create labels", target: "/v1.41/services/create", body: `{"Name":"s","Labels":{"io.dockgate.owner":"x"},"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`, status: 403},
		{name: "service create container labels", target: "/v1.41/services/create", body: `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"busybox","labels":{"io.dockgate.owner":"x"}}}}`, status: 403},
		{name: "service update container labels", target: "/v1.41/services/s/update?version=1", body: `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Labels":{"io.dockgate.owner":"x"}}}}`, status: 403},
	})
}

func TestOwnerLabelInDockerfileRefused(t *testing.T) {
	for _, tc := range []struct {
		df     string
		status int
	}{
		{"FROM scratch\nLABEL io.dockgate.owner=x\n", 403},
		{"FROM scratch\nlabel \"io.dockgate.owner\"=x\n", 403},
		{"FROM scratch\nARG K=owner\nLABEL io.dockgate.${K}=x\n", 400},
		{"FROM scratch\nLABEL a=b\n", 0},
	} {
		_, err := spooledFacts(t, "/v1.41/build", makeTar(t, tarEntry{name: "Dockerfile", body: tc.df}))
		var re *RouteError
		switch {
		case tc.status == 0 && err != nil:
			t.Errorf("%q: %v", tc.df, err)
		case tc.status != 0 && (!errors.As(err, &re) || re.Status != tc.status):
			t.Errorf("%q: want %d, got %v", tc.df, tc.status, err)
		}
	}
}
