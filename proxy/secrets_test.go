package proxy

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
)

// No secret reaches the audit log: Env values, registry
// credentials (X-Registry-Auth, X-Registry-Config), /auth bodies and what
// dockerd answers to them, secret and config data. The requests go through
// the real PolicyDecider and DefaultExtractor, allowed and refused, and the
// log is searched for every secret in every spelling it was sent in.
func TestAuditLogHoldsNoSecrets(t *testing.T) {
	const (
		envSecret      = "s3cr3t-env-Value-0451"
		execEnvSecret  = "s3cr3t-exec-env-7781"
		registryPass   = "s3cr3t-registry-pw-1337"
		registryToken  = "s3cr3t-registry-token-99"
		authPass       = "s3cr3t-auth-pw-4242"
		identityToken  = "s3cr3t-identity-token-8080"
		swarmSecret    = "s3cr3t-swarm-secret-2718"
		configSecret   = "s3cr3t-config-data-3141"
		deniedEnv      = "s3cr3t-denied-env-1618"
		chunkedEnv     = "s3cr3t-chunked-env-5772"
		registryConfig = "s3cr3t-registry-config-6626"
	)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	b64url := func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) }
	regAuth := b64url(`{"username":"ci","password":"` + registryPass + `","serveraddress":"registry.example.com"}`)
	regAuthToken := b64url(`{"identitytoken":"` + registryToken + `"}`)
	regConfig := b64url(`{"registry.example.com":{"username":"ci","password":"` + registryConfig + `"}}`)
	secrets := map[string][]string{
		"env":             {envSecret, b64(envSecret)},
		"exec env":        {execEnvSecret},
		"registry auth":   {registryPass, regAuth},
		"registry token":  {registryToken, regAuthToken},
		"registry config": {registryConfig, regConfig},
		"auth body":       {authPass},
		"identity token":  {identityToken},
		"secret data":     {swarmSecret, b64(swarmSecret)},
		"config data":     {configSecret, b64(configSecret)},
		"denied env":      {deniedEnv},
		"chunked env":     {chunkedEnv},
	}

	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			io.WriteString(w, "OK")
		case r.Method == "GET" && strings.Contains(r.URL.Path, "/images/"):
			// The inspector asks what an image is before a create.
			io.WriteString(w, `{"Id":"sha256:1111111111111111111111111111111111111111111111111111111111111111","RepoTags":["busybox:latest"],"RepoDigests":[]}`)
		case r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/json") && strings.Contains(r.URL.Path, "/containers/0123"):
			// dockgate checks the image a created container got.
			io.WriteString(w, `{"Id":"0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab","Image":"sha256:1111111111111111111111111111111111111111111111111111111111111111"}`)
		case r.Method == "GET":
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"not found"}`)
		case strings.HasSuffix(r.URL.Path, "/auth"):
			io.WriteString(w, `{"Status":"Login Succeeded","IdentityToken":"`+identityToken+`"}`)
		case strings.HasSuffix(r.URL.Path, "/images/create"), strings.HasSuffix(r.URL.Path, "/push"), strings.HasSuffix(r.URL.Path, "/build"):
			io.WriteString(w, `{"status":"done"}`+"\n")
		default:
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"Id":"0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab","Warnings":[]}`)
		}
	}))
	pol, err := policy.LoadFS(fstest.MapFS{"test.csv": {Data: []byte(
		"p, user:tester, endpoint, *, allow\n" +
			"p, user:tester, image, **, allow\n" +
			"p, user:tester, local-image, **, allow\n" +
			"p, user:tester, privileged, true, deny\n")}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	decider := authz.NewPolicyDecider(pol)
	decider.Extract = authz.DefaultExtractor()
	inspector, err := dockerd.New("unix://" + up.path)
	if err != nil {
		t.Fatal(err)
	}
	defer inspector.Close()
	decider.Inspector = inspector
	p := startProxy(t, dir, up.upstream())
	p.srv.cfg.Decider = decider

	post := func(path, body string, headers ...string) string {
		h := "POST " + path + " HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
		for _, x := range headers {
			h += x + "\r\n"
		}
		return h + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	c := p.dial()
	var statuses []int
	do := func(method, raw string) {
		statuses = append(statuses, c.roundTrip(method, raw).StatusCode)
	}
	do("POST", post("/v1.41/containers/create?name=web", `{"Image":"busybox","Env":["DB_PASSWORD=`+envSecret+`","B64=`+b64(envSecret)+`"],"Cmd":["true"]}`))
	do("POST", post("/v1.41/containers/create?name=bad", `{"Image":"busybox","Env":["TOKEN=`+deniedEnv+`"],"HostConfig":{"Privileged":true}}`))
	chunk := `{"Image":"busybox","Env":["K=` + chunkedEnv + `"]}`
	do("POST", "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+strconv.FormatInt(int64(len(chunk)), 16)+"\r\n"+chunk+"\r\n0\r\n\r\n")
	do("POST", post("/v1.41/containers/web/exec", `{"Cmd":["sh"],"Env":["PASS=`+execEnvSecret+`"]}`))
	do("POST", post("/v1.41/images/create?fromImage=registry.example.com%2Fapproved%2Fapp&tag=1", "", "X-Registry-Auth: "+regAuth))
	do("POST", post("/v1.41/images/registry.example.com/approved/app:1/push", "", "X-Registry-Auth: "+regAuthToken))
	do("POST", post("/v1.41/build?t=ci.local%2Fapp", "", "X-Registry-Config: "+regConfig))
	do("POST", post("/v1.41/auth", `{"username":"ci","password":"`+authPass+`","serveraddress":"registry.example.com"}`))
	do("POST", post("/v1.41/secrets/create", `{"Name":"db","Data":"`+b64(swarmSecret)+`"}`))
	do("POST", post("/v1.41/configs/create", `{"Name":"app","Data":"`+b64(configSecret)+`"}`))

	recs := p.finalRecords()
	if len(finals(recs)) != len(statuses) {
		t.Fatalf("%d final records for %d requests:\n%s", len(finals(recs)), len(statuses), p.audit.String())
	}
	// The test means something only if the requests got through and were
	// judged: the privileged create refused, the others allowed.
	if statuses[1] != 403 || statuses[0] != 201 || statuses[7] != 200 {
		t.Fatalf("statuses %v\n%s", statuses, p.audit.String())
	}
	log := p.audit.String()
	for what, spellings := range secrets {
		for _, s := range spellings {
			for _, form := range []string{s, url.QueryEscape(s), strings.ToLower(s)} {
				if strings.Contains(strings.ToLower(log), strings.ToLower(form)) {
					t.Errorf("the audit log holds the %s secret (%q)", what, form)
				}
			}
		}
	}
	// Nor any header that carries credentials, by name.
	for _, h := range []string{"X-Registry-Auth", "X-Registry-Config", "Authorization", "password", "IdentityToken"} {
		if strings.Contains(strings.ToLower(log), strings.ToLower(h)) {
			t.Errorf("the audit log names %s", h)
		}
	}
	if t.Failed() {
		t.Logf("audit log:\n%s", log)
	}
}
