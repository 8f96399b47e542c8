package signature

import (
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

func TestRegistryCAs(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))
	notPEM := filepath.Join(dir, "ca.txt")
	must(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o644))

	get := func(v *Verifier) error {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v2/", nil)
		must(t, err)
		resp, err := v.transport.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(mustVerifier(t, Options{})); err == nil {
		t.Error("a registry whose CA is not configured was trusted")
	}
	v := mustVerifier(t, Options{CAFiles: []string{ca}})
	lazy := v.transport.(limitTransport).next.(*lazyTransport)
	v.Close()
	if lazy.built.Load() {
		t.Error("Close made the registry transport that no request had needed")
	}
	// The CA file is read by New: the transport, made on the first
	// request, trusts what the file held then, not what it holds now.
	must(t, os.WriteFile(ca, []byte("replaced"), 0o644))
	if err := get(v); err != nil {
		t.Errorf("a registry whose CA is configured: %v", err)
	}
	if !lazy.built.Load() {
		t.Error("the registry transport was not made by the first request")
	}
	v.Close()
	for _, tc := range []struct{ file, want string }{
		{notPEM, "ca.txt: no PEM certificate"},
		{filepath.Join(dir, "missing.pem"), "missing.pem"},
	} {
		if _, err := New(Options{CAFiles: []string{tc.file}}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New with CA file %s: %v, want an error containing %q", tc.file, err, tc.want)
		}
	}
}

func TestDockerConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "config.json")
	must(t, os.WriteFile(bad, []byte("{not json"), 0o600))
	for _, p := range []string{bad, filepath.Join(dir, "missing.json")} {
		if _, err := New(Options{DockerConfig: p}); err == nil || !strings.Contains(err.Error(), filepath.Base(p)) {
			t.Errorf("New with docker config %s: %v, want an error naming it", p, err)
		}
	}
}

func TestInsecureRegistriesAreSpokenToOverHTTP(t *testing.T) {
	v := mustVerifier(t, Options{Insecure: []string{"registry.test:5000"}})
	for ref, want := range map[string]string{
		"registry.test:5000/team/app:1":  "http",
		"registry.test:5000/team/app":    "http",
		"registry.test:50000/team/app:1": "https",
		"registry.test/team/app":         "https",
		"docker.io/library/busybox":      "https",
	} {
		r, err := name.ParseReference(ref, v.nameOptions(ref)...)
		must(t, err)
		if got := r.Context().Scheme(); got != want {
			t.Errorf("%s is reached over %s, want %s", ref, got, want)
		}
	}
}
