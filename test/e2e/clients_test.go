package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/test/testbed"
)

// TestTenantInspectsAnImageByName: `docker inspect NAME` asks for a
// container of that name first and falls back to the image on dockerd's
// 404 (Jenkins' docker-workflow runs `docker inspect -f . IMAGE` before
// `inside {}`). A name no container can have must get dockerd's 404
// through dockgate too, for a tenant, not a 400 that ends the command.
func TestTenantInspectsAnImageByName(t *testing.T) {
	_, c, a, _, _ := tnBed(t, tnPolicy(t))
	env := testbed.Shared(t)
	const built = "ci.local/e2e-cl-inspect:1"
	ctx, cancel := azCtx()
	defer cancel()
	if err := c.ImageTag(ctx, env.Image, built); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { azRemoveImage(t, c, built) })
	for _, name := range []string{env.Image, built} {
		if out := a.must("inspect", "-f", ".", name); strings.TrimSpace(out) != "." {
			t.Errorf("docker inspect -f . %s: %q", name, out)
		}
	}
	r := a.run("inspect", "e2e-cl-no-such-thing")
	if r.code == 0 || !strings.Contains(r.stderr, "No such object: e2e-cl-no-such-thing") {
		t.Errorf("docker inspect of nothing: want dockerd's \"No such object\", got %v", r)
	}
	for _, path := range []string{"/containers/" + built + "/json", "/containers/" + built + "/start"} {
		method := "GET"
		if strings.HasSuffix(path, "/start") {
			method = "POST"
		}
		resp, err := azSend(t, strings.TrimPrefix(a.host, "unix://"), azReq(method, "/v1.41"+path, false, ""))
		if err == nil && len(resp) == 1 && resp[0].status != 404 {
			t.Errorf("%s %s as root: %d %s, want dockerd's 404", method, path, resp[0].status, resp[0].body)
		}
	}
}

// TestExecCreateWithTheContainerField: docker-py (5.x: docker-compose v1,
// Ansible, molecule, testcontainers-python) sends the exec create body
// with a Container field that API 1.24 defined and dockerd ignores; it
// must work through dockgate, for a tenant too.
func TestExecCreateWithTheContainerField(t *testing.T) {
	_, _, a, _, _ := tnBed(t, tnPolicy(t))
	env := testbed.Shared(t)
	id := strings.TrimSpace(a.must("run", "-d", "--label", tnTestLabel, env.Image, "sleep", "60"))
	sock := strings.TrimPrefix(a.host, "unix://")
	resp, err := azSend(t, sock, azCreate("/v1.41/containers/"+id+"/exec", `{"Container":"`+id+`","User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Cmd":["echo","hi"],"Env":null}`))
	if err != nil || len(resp) != 1 || resp[0].status != 201 {
		t.Fatalf("docker-py's exec create through dockgate: %v %v", resp, err)
	}
	var e struct{ Id string }
	if err := json.Unmarshal([]byte(resp[0].body), &e); err != nil || e.Id == "" {
		t.Fatalf("exec create answer %q: %v", resp[0].body, err)
	}
}
