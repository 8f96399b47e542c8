package e2e

// A corpus of raw wire requests, each a known way around an authorizing
// proxy (BRIEF §7), sent on dockgate's socket by this process (root, held to
// the CI role by the policy), each checked by its HTTP status and by what
// dockerd actually holds afterwards: no new container, volume, exec or
// image that the request tried to smuggle in.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// azWireCase is one attack: raw bytes, the statuses of the responses in
// order (the connection then ends), and a text the refusal must carry.
type azWireCase struct {
	name string
	raw  string
	want []int
	msg  string
	// creates is how many containers the allowed requests of the case
	// create (the benign half of a pipeline); none may be dangerous.
	creates int
	// pulls are the images the allowed requests of the case pull.
	pulls []string
	// repeat sends the case this many times (default once): for answers
	// that must not depend on timing.
	repeat int
	// upgrades says the case's last answer switches protocols (101):
	// nothing after it is HTTP.
	upgrades bool
}

const azWireCaller = "user:root"

// azAmbiguous is dockgate's refusal of keys that dockerd would merge.
const azAmbiguous = "dockgate: ambiguous JSON body: two keys in body"

// azPrivileged is a create body that asks for a privileged container.
const azPrivileged = `{"Image":"test/busybox:1","Cmd":["true"],"Labels":{"e2e.authz":"wire"},"HostConfig":{"Privileged":true}}`

const azBenign = `{"Image":"test/busybox:1","Cmd":["true"],"Labels":{"e2e.authz":"wire"}}`

// azReq is one HTTP/1.1 request: a Host header, the given headers, a
// Content-Length for body unless the headers frame it themselves, and
// Connection: close unless keep is set.
func azReq(method, target string, keep bool, body string, headers ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: docker\r\n")
	framed := false
	for _, h := range headers {
		b.WriteString(h + "\r\n")
		l := strings.ToLower(h)
		if strings.HasPrefix(l, "content-length:") || strings.HasPrefix(l, "transfer-encoding:") {
			framed = true
		}
	}
	if !framed && (body != "" || method == "POST") {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	if !keep {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}

// azCreate is a POST of a JSON body to target, the last request on its
// connection.
func azCreate(target, body string, headers ...string) string {
	return azReq("POST", target, false, body, append([]string{"Content-Type: application/json"}, headers...)...)
}

// azChunks is a chunked body made of parts.
func azChunks(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// azResp is one response read off the wire.
type azResp struct {
	status int
	body   string
}

// azSend writes raw on a fresh connection to socket, in one write, and
// reads responses until the connection ends.
func azSend(t *testing.T, socket, raw string) ([]azResp, error) {
	t.Helper()
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", socket, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		// dockgate may close early on a malformed request; read what it said.
		t.Logf("write: %v", err)
	}
	br := bufio.NewReader(conn)
	var out []azResp
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF || strings.Contains(err.Error(), "connection reset") {
				return out, nil
			}
			return out, err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		out = append(out, azResp{status: resp.StatusCode, body: string(b)})
		if err != nil {
			return out, err
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return out, fmt.Errorf("the connection was upgraded: %s", b)
		}
	}
}

func azWireCases(reg string) []azWireCase {
	priv := "dockgate: " + azWireCaller + " may not privileged container: no rule allows it"
	v := "/v1.41"
	cases := []azWireCase{
		// Version prefixes and path spellings (BRIEF §7.6).
		{name: "privileged at /v1.41/", raw: azCreate(v+"/containers/create", azPrivileged), want: []int{403}, msg: priv},
		{name: "privileged at /v1.41./ (trailing dot in the version)", raw: azCreate("/v1.41./containers/create", azPrivileged), want: []int{403}, msg: priv},
		{name: "privileged at /v01.41/ (leading zero in the version)", raw: azCreate("/v01.41/containers/create", azPrivileged), want: []int{403}, msg: priv},
		{name: "privileged at the unprefixed /containers/create", raw: azCreate("/containers/create", azPrivileged), want: []int{403}, msg: priv},
		{name: "privileged at /v1.24/ (oldest API version)", raw: azCreate("/v1.24/containers/create", azPrivileged), want: []int{403}, msg: priv},
		{name: "privileged at percent-encoded /containers/cre%61te", raw: azCreate(v+"/containers/cre%61te", azPrivileged), want: []int{403}, msg: priv},
		{name: "privileged at percent-encoded version /%761.41/", raw: azCreate("/%761.41/containers/create", azPrivileged), want: []int{403}, msg: priv},
		{name: "privileged at encoded slash /containers%2Fcreate", raw: azCreate(v+"/containers%2Fcreate", azPrivileged), want: []int{400}, msg: "dockgate: encoded %2F in path"},
		{name: "privileged at dot segments /containers/x/../create", raw: azCreate(v+"/containers/x/../create", azPrivileged), want: []int{400}, msg: "dockgate: path is not in canonical form"},
		{name: "privileged at encoded dot segments /containers/x/%2e%2e/create", raw: azCreate(v+"/containers/x/%2e%2e/create", azPrivileged), want: []int{400}, msg: "dockgate: path is not in canonical form"},
		{name: "privileged at a double slash /v1.41//containers/create", raw: azCreate(v+"//containers/create", azPrivileged), want: []int{400}, msg: "dockgate: path is not in canonical form"},
		{name: "privileged at absolute-form target http://docker/v1.41/containers/create", raw: azCreate("http://docker"+v+"/containers/create", azPrivileged), want: []int{400}, msg: "is not an absolute path"},

		// JSON read differently from dockerd (BRIEF §7.1).
		{name: "privileged with lower-case keys hostconfig/privileged", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"hostconfig":{"privileged":true}}`), want: []int{403}, msg: priv},
		{name: "privileged with upper-case keys HOSTCONFIG/PRIVILEGED", raw: azCreate(v+"/containers/create", `{"IMAGE":"test/busybox:1","Cmd":["true"],"HOSTCONFIG":{"PRIVILEGED":true}}`), want: []int{403}, msg: priv},
		{name: "privileged as the last of duplicate Privileged keys", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"HostConfig":{"Privileged":false,"Privileged":true}}`), want: []int{400}, msg: azAmbiguous},
		{name: "privileged as the last of duplicate keys after case folding", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"HostConfig":{"Privileged":false,"privileged":true}}`), want: []int{400}, msg: azAmbiguous},
		{name: "privileged in the second of two HostConfig objects that differ in case", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"HostConfig":{},"hostconfig":{"Privileged":true}}`), want: []int{400}, msg: azAmbiguous},
		{name: "bind in the first of two HostConfig objects that merge", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"HostConfig":{"Binds":["/:/host"]},"HostConfig":{"Privileged":false}}`), want: []int{400}, msg: azAmbiguous},
		{name: "privileged with a Unicode escape in the key Privil\\u0065ged", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"HostConfig":{"Privil\u0065ged":true}}`), want: []int{403}, msg: priv},
		{name: "privileged with a Unicode escape in the key \\u0048ostConfig", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"\u0048ost\u0043onfig":{"Privileged":true}}`), want: []int{403}, msg: priv},
		{name: "privileged under a long-s key Hoſtconfig", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"Hoſtconfig":{"Privileged":true}}`), want: []int{403}, msg: priv},
		{name: "privileged under an escaped long-s key Ho\\u017ftConfig", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"Ho\u017ftConfig":{"Privileged":true}}`), want: []int{403}, msg: priv},
		{name: "host network under a Kelvin-sign key NetworKMode", raw: azCreate(v+"/containers/create", "{\"Image\":\"test/busybox:1\",\"Cmd\":[\"true\"],\"HostConfig\":{\"Networ\u212aMode\":\"host\"}}"), want: []int{403}, msg: "dockgate: " + azWireCaller + " may not namespace network=host: no rule allows it"},
		{name: "bind root under a long-s key Bindſ", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"HostConfig":{"Bindſ":["/:/host"]}}`), want: []int{403}, msg: "dockgate: " + azWireCaller + " may not bind /: no rule allows it"},
		{name: "capability spelled cap_sys_admin", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"HostConfig":{"CapAdd":["cap_sys_admin"]}}`), want: []int{403}, msg: "dockgate: " + azWireCaller + " may not capability SYS_ADMIN: no rule allows it"},
		{name: "privileged as a legacy top-level HostConfig field", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"Privileged":true}`), want: []int{400}, msg: "at the top level of the body"},
		{name: "privileged as a legacy top-level field beside an empty HostConfig", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"Privileged":true,"HostConfig":{}}`), want: []int{400}, msg: "at the top level of the body"},
		{name: "privileged in a second JSON value after the first", raw: azCreate(v+"/containers/create", azBenign+azPrivileged), want: []int{400}, msg: "dockgate: trailing data after the JSON body"},
		{name: "privileged at the end of an oversized body", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"Env":["PAD=`+strings.Repeat("a", 2<<20)+`"],"HostConfig":{"Privileged":true}}`), want: []int{413}, msg: "dockgate: request body larger than the limit"},
		{name: "unapproved image in a create body", raw: azCreate(v+"/containers/create", `{"Image":"evil.example.com/x:1","Cmd":["true"]}`), want: []int{403}, msg: "dockgate: " + azWireCaller + " may not image evil.example.com/x:1: no rule allows it"},

		// Body never inspected (BRIEF §7.2).
		{name: "privileged in a chunked body", raw: azReq("POST", v+"/containers/create", false, azChunks(azPrivileged), "Content-Type: application/json", "Transfer-Encoding: chunked"), want: []int{403}, msg: priv},
		{name: "privileged in a chunked body split inside the key", raw: azReq("POST", v+"/containers/create", false, azChunks(`{"Image":"test/busybox:1","Cmd":["true"],"HostConfig":{"Privi`, `leged":tr`, `ue}}`), "Content-Type: application/json", "Transfer-Encoding: chunked"), want: []int{403}, msg: priv},
		{name: "privileged in a chunked body beside Content-Length: 0 (CVE-2024-41110)", raw: azReq("POST", v+"/containers/create", false, azChunks(azPrivileged), "Content-Type: application/json", "Content-Length: 0", "Transfer-Encoding: chunked"), want: []int{400}, msg: "dockgate: both Transfer-Encoding and Content-Length are set"},
		{name: "privileged chunked-looking bytes after Content-Length: 0 (CVE-2024-41110)", raw: azReq("POST", v+"/containers/create", true, "", "Content-Type: application/json", "Content-Length: 0") + azChunks(azPrivileged), want: []int{400, 400}, msg: "dockgate: malformed request line"},
		{name: "privileged with Content-Type text/plain", raw: azReq("POST", v+"/containers/create", false, azPrivileged, "Content-Type: text/plain"), want: []int{400}, msg: `dockgate: Content-Type \"text/plain\"`},
		{name: "privileged with Content-Type application/json; charset=utf-8", raw: azReq("POST", v+"/containers/create", false, azPrivileged, "Content-Type: application/json; charset=utf-8"), want: []int{403}, msg: priv},
		{name: "privileged with Content-Type Application/JSON", raw: azReq("POST", v+"/containers/create", false, azPrivileged, "Content-Type: Application/JSON"), want: []int{403}, msg: priv},
		{name: "privileged without Content-Type", raw: azReq("POST", v+"/containers/create", false, azPrivileged), want: []int{403}, msg: priv},
		{name: "privileged with duplicate Content-Type text/plain and application/json", raw: azReq("POST", v+"/containers/create", false, azPrivileged, "Content-Type: text/plain", "Content-Type: application/json"), want: []int{400}, msg: "dockgate: several Content-Type headers"},

		// One connection, many requests (BRIEF §7.4).
		{name: "privileged create pipelined after an allowed _ping", raw: azReq("GET", v+"/_ping", true, "") + azCreate(v+"/containers/create", azPrivileged), want: []int{200, 403}, msg: priv},
		{name: "privileged create pipelined after an allowed create", raw: azReq("POST", v+"/containers/create", true, azBenign, "Content-Type: application/json") + azCreate(v+"/containers/create", azPrivileged), want: []int{201, 403}, msg: priv, creates: 1},
		{name: "privileged create pipelined after a request whose body streams (wait on a missing container)", raw: azReq("POST", v+"/containers/e2e-authz-no-such-container/wait", true, `{}`, "Content-Type: application/json") + azCreate(v+"/containers/create", azPrivileged), want: []int{404, 403}, msg: priv, repeat: 50},
		// dockerd refuses an attach to a missing container by hijacking the
		// connection, writing a 404 and closing it: nothing may follow.
		{name: "privileged create after an upgrade dockerd refuses and closes (attach to a missing container)", raw: azReq("POST", v+"/containers/e2e-authz-no-such-container/attach?stream=1&stdout=1", true, "", "Upgrade: tcp", "Connection: Upgrade") + azCreate(v+"/containers/create", azPrivileged), want: []int{404}, msg: "No such container"},
		// An exec start of a missing exec: the caller is a tenant (the CI
		// policy's tenant rows), so dockgate answers dockerd's 404 itself
		// rather than forward the name (docs/tenancy.md), and closes the
		// connection, as after every upgrade it refuses: the create behind
		// it is never read. Repeated: nothing may depend on timing.
		{name: "privileged create after an upgrade refused with dockerd's 404 (start of a missing exec)", raw: azReq("POST", v+"/exec/e2e-authz-no-such-exec/start", true, `{"Detach":false,"Tty":false}`, "Content-Type: application/json", "Upgrade: tcp", "Connection: Upgrade") + azCreate(v+"/containers/create", azPrivileged), want: []int{404}, msg: "No such exec instance: e2e-authz-no-such-exec", repeat: 50},

		// Protocol side doors (BRIEF §7.5).
		// HTTP/2 prior knowledge: http2_test.go.
		{name: "debug endpoint /debug/pprof/", raw: azReq("GET", "/debug/pprof/", false, ""), want: []int{403}, msg: "dockgate: " + azWireCaller + " may not endpoint debug."},
		// A refused /grpc upgrade is answered in gRPC: buildx_test.go.
		// dockgate closes the connection after refusing an upgrade: the
		// create behind it is never read.
		// The session opens (it grants nothing); what follows the 101 is
		// HTTP/2 to dockgate, never a request: the relay ends the
		// connection at the first bytes that are no frame, and dockerd
		// creates nothing.
		{name: "BuildKit /session upgrade to h2c, then privileged create", raw: azReq("POST", v+"/session", true, "", "Upgrade: h2c", "Connection: Upgrade", "X-Docker-Expose-Session-Uuid: e2e") + azCreate(v+"/containers/create", azPrivileged), want: []int{101}, upgrades: true},
	}
	if reg != "" {
		// dockerd merges a form body with the query, body values first
		// (BRIEF §7.2): the query names an approved image, the body one
		// that the local registry serves. dockgate reads the form body
		// the same way and judges the merged parameters.
		good, evil := reg+"/e2e-authz/good", reg+"/e2e-authz/evil"
		form := func(ct string) string {
			return azReq("POST", v+"/images/create?fromImage="+good+"&tag=1", false, "fromImage="+evil+"&tag=1", "Content-Type: "+ct)
		}
		refusedEvil := "dockgate: " + azWireCaller + " may not image " + evil + ":1: no rule allows it"
		cases = append(cases,
			azWireCase{name: "unapproved pull in a form body, approved name in the query", raw: form("application/x-www-form-urlencoded"), want: []int{403}, msg: refusedEvil},
			azWireCase{name: "unapproved pull in a form body with charset", raw: form("application/x-www-form-urlencoded; charset=utf-8"), want: []int{403}, msg: refusedEvil},
			azWireCase{name: "unapproved pull in a form body with Content-Type in odd case", raw: form("Application/X-WWW-Form-URLEncoded"), want: []int{403}, msg: refusedEvil},
			azWireCase{name: "approved pull in a form body, unapproved name in the query: dockerd pulls the body's",
				raw:  azReq("POST", v+"/images/create?fromImage="+evil+"&tag=1", false, "fromImage="+good+"&tag=1", "Content-Type: application/x-www-form-urlencoded"),
				want: []int{200}, msg: good + ":1", pulls: []string{good + ":1"}},
			azWireCase{name: "a form body that turns an import into a pull", raw: azReq("POST", v+"/images/create?fromSrc=-&repo="+good, false, "fromImage="+evil+"&tag=1", "Content-Type: application/x-www-form-urlencoded"),
				want: []int{400}, msg: "dockgate: a form body makes this import a pull"},
			// Without a form Content-Type dockerd does not read the body:
			// the query's approved image is what it pulls.
			azWireCase{name: "unapproved pull in a body without Content-Type is not what dockerd pulls",
				raw:  azReq("POST", v+"/images/create?fromImage="+good+"&tag=1", false, "fromImage="+evil+"&tag=1"),
				want: []int{200}, msg: "Downloaded newer image for " + good + ":1", pulls: []string{good + ":1"}},
			azWireCase{name: "unapproved pull in the query", raw: azReq("POST", v+"/images/create?fromImage="+evil+"&tag=1", false, ""), want: []int{403},
				msg: "dockgate: " + azWireCaller + " may not image " + evil + ":1: no rule allows it"},
		)
	}
	return cases
}

// azPushEvil puts the test image into the bed's registry as
// REG/e2e-authz/evil:1 and REG/e2e-authz/good:1 and removes them from
// dockerd again, so that a pull that dockgate lets through brings one back.
func azPushEvil(t *testing.T, c *client.Client, env *testbed.Env) string {
	t.Helper()
	if env.Registry == nil {
		return ""
	}
	for _, name := range []string{"evil", "good"} {
		azPush(t, c, env.Registry.Addr+"/e2e-authz/"+name+":1")
	}
	return env.Registry.Addr
}

func azPush(t *testing.T, c *client.Client, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), azTimeout)
	defer cancel()
	if err := c.ImageTag(ctx, testbed.DefaultImage, ref); err != nil {
		t.Fatal(err)
	}
	imPush(t, c, ref)
	azRemoveImage(t, c, ref)
}

func azRemoveImage(t *testing.T, c *client.Client, ref string) {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	if _, err := c.ImageRemove(ctx, ref, dimage.RemoveOptions{}); err != nil && !client.IsErrNotFound(err) {
		t.Errorf("remove %s: %v", ref, err)
	}
}

// azImageRefs lists every repo:tag on dockerd.
func azImageRefs(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	imgs, err := c.ImageList(ctx, dimage.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, im := range imgs {
		refs = append(refs, im.RepoTags...)
	}
	slices.Sort(refs)
	return refs
}

func TestAuthzWireCorpus(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	reg := azPushEvil(t, c, env)
	var extra []string
	if reg != "" {
		extra = append(extra, "p, role:ci, image, "+reg+"/e2e-authz/good:*, allow")
	}
	g := azStartGate(t, env, azPolicy(t, true, extra...))

	for _, tc := range azWireCases(reg) {
		t.Run(tc.name, func(t *testing.T) {
			containers, volumes, images := azContainers(t, c), azVolumes(t, c), azImageRefs(t, c)
			since := time.Now()
			azSendCase(t, g.Socket, tc)

			// What dockerd actually did: its event history, then its state.
			azCheckCreations(t, azCreations(t, c, since), tc)
			created := azNewContainers(t, c, containers)
			if len(created) != tc.creates*max(tc.repeat, 1) {
				t.Errorf("dockerd has %d new containers, want %d: %v\nrequest: %.600q", len(created), tc.creates, created, tc.raw)
			}
			for id, what := range created {
				if strings.Contains(what, "privileged true") || strings.Contains(what, "binds [") && !strings.Contains(what, "binds []") || strings.Contains(what, `network "host"`) {
					t.Errorf("BYPASS: dockerd created a dangerous container %.12s: %s\nrequest: %.600q", id, what, tc.raw)
				}
			}
			azRemoveNew(t, c, containers)
			if now := azVolumes(t, c); !slices.Equal(now, volumes) {
				t.Errorf("BYPASS: dockerd's volumes changed from %v to %v", volumes, now)
			}
			if now := azImageRefs(t, c); !slices.Equal(now, slices.Sorted(slices.Values(append(slices.Clone(images), tc.pulls...)))) {
				t.Errorf("BYPASS: dockerd's images changed from %v to %v, want %v pulled\nrequest: %.600q", images, now, tc.pulls, tc.raw)
			}
			for _, ref := range azImageRefs(t, c) {
				if !slices.Contains(images, ref) {
					azRemoveImage(t, c, ref)
				}
			}
		})
	}
}

// Exec and volume attacks need an object to aim at or a volume name to
// check; each is checked on dockerd like the corpus.
func TestAuthzWireExecAndVolumeCorpus(t *testing.T) {
	env := testbed.Shared(t)
	g := azStartGate(t, env, azPolicy(t, true))
	c := azDirect(t, env)

	ctx, cancel := azCtx()
	defer cancel()
	target := "e2e-authz-wire-target"
	ct, err := c.ContainerCreate(ctx, &container.Config{Image: testbed.DefaultImage, Cmd: []string{"sleep", "600"}, Labels: map[string]string{azLabel: "wire"}}, nil, nil, nil, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { azRemoveContainers(t, c, ct.ID) })
	if err := c.ContainerStart(ctx, ct.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	v := "/v1.41"
	bind := "dockgate: " + azWireCaller + " may not bind /etc: no rule allows it"
	vol := "e2e-authz-wire-vol"
	for _, tc := range []azWireCase{
		{name: "privileged exec with lower-case keys", raw: azCreate(v+"/containers/"+target+"/exec", `{"cmd":["true"],"privileged":true}`), want: []int{403}, msg: "dockgate: " + azWireCaller + " may not privileged exec: no rule allows it"},
		{name: "privileged exec in a chunked body", raw: azReq("POST", v+"/containers/"+target+"/exec", false, azChunks(`{"Cmd":["true"],"Privi`, `leged":true}`), "Content-Type: application/json", "Transfer-Encoding: chunked"), want: []int{403}, msg: "dockgate: " + azWireCaller + " may not privileged exec: no rule allows it"},
		{name: "privileged exec with duplicate keys", raw: azCreate(v+"/containers/"+target+"/exec", `{"Cmd":["true"],"Privileged":false,"PRIVILEGED":true}`), want: []int{400}, msg: azAmbiguous},
		{name: "local volume o=bind", raw: azCreate(v+"/volumes/create", `{"Name":"`+vol+`","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/etc"}}`), want: []int{403}, msg: bind},
		{name: "local volume o=rbind,ro with lower-case keys", raw: azCreate(v+"/volumes/create", `{"name":"`+vol+`","driver":"local","driveropts":{"type":"none","o":"rbind,ro","device":"/etc"}}`), want: []int{403}, msg: bind},
		{name: "local volume o=bind with an unprefixed path and chunked body", raw: azReq("POST", "/volumes/create", false, azChunks(`{"Name":"`+vol+`","DriverOpts":{"type":"none","o":"bind","dev`, `ice":"/etc"}}`), "Content-Type: application/json", "Transfer-Encoding: chunked"), want: []int{403}, msg: bind},
		{name: "local volume o=bind with duplicate DriverOpts", raw: azCreate(v+"/volumes/create", `{"Name":"`+vol+`","DriverOpts":{"type":"tmpfs","device":"tmpfs"},"driveropts":{"type":"none","o":"bind","device":"/etc"}}`), want: []int{400}, msg: azAmbiguous},
		{name: "container mounting a local bind volume inline", raw: azCreate(v+"/containers/create", `{"Image":"test/busybox:1","Cmd":["true"],"HostConfig":{"Mounts":[{"Type":"volume","Source":"`+vol+`","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/etc"}}}}]}}`), want: []int{403}, msg: bind},
	} {
		t.Run(tc.name, func(t *testing.T) {
			containers, volumes, execs := azContainers(t, c), azVolumes(t, c), azExecIDs(t, c, ct.ID)
			since := time.Now()
			azSendCase(t, g.Socket, tc)
			azCheckCreations(t, azCreations(t, c, since), tc)
			if created := azNewContainers(t, c, containers); len(created) > 0 {
				t.Errorf("BYPASS: dockerd has new containers: %v\nrequest: %.600q", created, tc.raw)
				azRemoveNew(t, c, containers)
			}
			if now := azVolumes(t, c); !slices.Equal(now, volumes) {
				t.Errorf("BYPASS: dockerd's volumes changed from %v to %v\nrequest: %.600q", volumes, now, tc.raw)
				azRemoveVolume(t, c, vol)
			}
			if now := azExecIDs(t, c, ct.ID); !slices.Equal(now, execs) {
				t.Errorf("BYPASS: dockerd has new exec instances %v (before %v)\nrequest: %.600q", now, execs, tc.raw)
			}
		})
	}
}

// azSendCase sends a case (repeat times) and checks the statuses and the
// refusal message of every try.
func azSendCase(t *testing.T, socket string, tc azWireCase) {
	t.Helper()
	tries := max(tc.repeat, 1)
	wrong := map[string]int{}
	for range tries {
		resps, err := azSend(t, socket, tc.raw)
		var got []int
		bodies := ""
		for _, r := range resps {
			got = append(got, r.status)
			bodies += r.body
		}
		if err != nil && !(tc.upgrades && strings.Contains(err.Error(), "upgraded")) {
			t.Errorf("reading the responses: %v", err)
		}
		switch {
		case !slices.Equal(got, tc.want):
			wrong[fmt.Sprintf("statuses %v: %s", got, strings.TrimSpace(bodies))]++
		case !strings.Contains(bodies, tc.msg):
			wrong[fmt.Sprintf("responses without %q: %s", tc.msg, strings.TrimSpace(bodies))]++
		}
		if tries == 1 {
			t.Logf("%v %s", got, strings.TrimSpace(bodies))
		}
	}
	for what, n := range wrong {
		t.Errorf("%d of %d tries: %s; want statuses %v\nrequest: %.600q", n, tries, what, tc.want, tc.raw)
	}
}

// azCheckCreations checks dockerd's events of a case: as many container
// creates as the case's allowed requests make, pulls of its allowed images,
// and nothing else (no volume, no exec, no other image).
func azCheckCreations(t *testing.T, ev []string, tc azWireCase) {
	t.Helper()
	creates := 0
	for _, e := range ev {
		switch {
		case strings.HasPrefix(e, "container create "):
			creates++
		case strings.HasPrefix(e, "image pull ") && slices.ContainsFunc(tc.pulls, func(p string) bool { return strings.Contains(e, p) }):
		default:
			t.Errorf("BYPASS: dockerd's events show %q\nrequest: %.600q", e, tc.raw)
		}
	}
	if creates != tc.creates*max(tc.repeat, 1) {
		t.Errorf("dockerd created %d containers, want %d: %v\nrequest: %.600q", creates, tc.creates, ev, tc.raw)
	}
}
