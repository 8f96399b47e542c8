package signature

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/signing"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// flipByte corrupts a signature: the last byte changed.
func flipByte(b []byte) []byte {
	out := slices.Clone(b)
	out[len(out)-1] ^= 0x01
	return out
}

// flipDecoded corrupts the signature inside a base64 annotation.
func flipDecoded(b []byte) []byte {
	raw, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		panic(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(flipByte(raw)))
}

func TestVerify(t *testing.T) {
	s := testSigners(t)
	keys := mustLoadKeys(t, s.keysDir)
	ctx := context.Background()
	k := s.byName

	type env struct {
		t    *testing.T
		reg  *testRegistry
		opts Options
	}
	tests := []struct {
		name      string
		referrers bool // the registry has the referrers API
		// setup pushes and signs, and returns the repository and digest
		// to judge.
		setup       func(e *env) (repo, digest string)
		wantStatus  Status
		wantKeys    []string
		wantFailure Failure
		wantCause   string
	}{
		{
			name: "cosign signature by a trusted key",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"]))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Signed, wantKeys: []string{"release"},
		},
		{
			name: "cosign signature by each kind of key cosign accepts",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				for _, n := range []string{"p384", "ed", "rsa"} {
					must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k[n]))
				}
				return e.reg.host + "/team/app", d
			},
			wantStatus: Signed, wantKeys: []string{"ed", "p384", "rsa"},
		},
		{
			name: "cosign signature found by tag when the image was signed by tag",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.host+"/team/app:latest", k["release"]))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Signed, wantKeys: []string{"release"},
		},
		{
			name: "bundle by a trusted key through the referrers API", referrers: true,
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.AttachBundle(ctx, e.reg.ref("team/app", d), k["release"]))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Signed, wantKeys: []string{"release"},
		},
		{
			name: "bundle by a trusted key through the referrers tag",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.AttachBundle(ctx, e.reg.ref("team/app", d), k["release"]))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Signed, wantKeys: []string{"release"},
		},
		{
			name: "message-signature bundle over the manifest", referrers: true,
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.AttachBundle(ctx, e.reg.ref("team/app", d), k["release"], signing.MessageSignature()))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Signed, wantKeys: []string{"release"},
		},
		{
			name: "DSSE bundles by an Ed25519 and a P-384 key", referrers: true,
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.AttachBundle(ctx, e.reg.ref("team/app", d), k["ed"]))
				must(e.t, signing.AttachBundle(ctx, e.reg.ref("team/app", d), k["p384"]))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Signed, wantKeys: []string{"ed", "p384"},
		},
		{
			name: "both formats by two keys name both",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["ci"]))
				must(e.t, signing.AttachBundle(ctx, e.reg.ref("team/app", d), k["release"]))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Signed, wantKeys: []string{"ci", "release"},
		},
		{
			name: "one good signature among bad ones counts",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["stranger"]))
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"]))
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["ci"], signing.Tamper(flipDecoded)))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Signed, wantKeys: []string{"release"},
		},
		{
			name: "no signature at all",
			setup: func(e *env) (string, string) {
				return e.reg.host + "/team/app", e.reg.push(e.t, "team/app")
			},
			wantStatus: Unsigned, wantCause: "no signature of sha256:",
		},
		{
			name: "no signature at all, referrers API", referrers: true,
			setup: func(e *env) (string, string) {
				return e.reg.host + "/team/app", e.reg.push(e.t, "team/app")
			},
			wantStatus: Unsigned, wantCause: "no signature of sha256:",
		},
		{
			name: "cosign signature by an untrusted key",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["stranger"]))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailBadSignature, wantCause: "verifies with none of the keys (ci, ed, p384, release, rsa)",
		},
		{
			name: "bundle by an untrusted key", referrers: true,
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.AttachBundle(ctx, e.reg.ref("team/app", d), k["stranger"]))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailBadSignature, wantCause: "verifies with none of the keys",
		},
		{
			name: "cosign payload for another digest attached to this one",
			setup: func(e *env) (string, string) {
				other := e.reg.push(e.t, "team/other")
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"], signing.ForDigest(other)))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailDigestMismatch, wantCause: "signature names sha256:",
		},
		{
			name: "cosign payload naming another repository",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"], signing.WithDockerReference(e.reg.host+"/team/other")))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailReferenceMismatch, wantCause: "/team/other not ",
		},
		{
			name: "image and its signature copied into another repository",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"]))
				sigTag := "sha256-" + strings.TrimPrefix(d, "sha256:") + ".sig"
				for _, tag := range []string{"latest", sigTag} {
					src, err := name.ParseReference(e.reg.host + "/team/app:" + tag)
					must(e.t, err)
					img, err := remote.Image(src)
					must(e.t, err)
					dst, err := name.ParseReference(e.reg.host + "/evil/app:" + tag)
					must(e.t, err)
					must(e.t, remote.Write(dst, img))
				}
				return e.reg.host + "/evil/app", d
			},
			wantStatus: Unsigned, wantFailure: FailReferenceMismatch, wantCause: "/team/app not ",
		},
		{
			name: "cosign annotation that is not base64",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"],
					signing.Tamper(func([]byte) []byte { return []byte("not base64!") })))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailMalformed, wantCause: "is not base64",
		},
		{
			name: "corrupted cosign signature",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"], signing.Tamper(flipDecoded)))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailBadSignature,
		},
		{
			name: "bundle for another digest attached to this one", referrers: true,
			setup: func(e *env) (string, string) {
				other := e.reg.push(e.t, "team/other")
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.AttachBundle(ctx, e.reg.ref("team/app", d), k["release"], signing.ForDigest(other)))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailDigestMismatch, wantCause: "signature names sha256:",
		},
		{
			name: "corrupted bundle signature", referrers: true,
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.AttachBundle(ctx, e.reg.ref("team/app", d), k["release"], signing.Tamper(flipByte)))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailBadSignature,
		},
		{
			name: "corrupted message-signature bundle", referrers: true,
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.AttachBundle(ctx, e.reg.ref("team/app", d), k["release"], signing.MessageSignature(), signing.Tamper(flipByte)))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailBadSignature,
		},
		{
			name: "attestation by a trusted key is not a signature", referrers: true,
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.AttachBundle(ctx, e.reg.ref("team/app", d), k["release"], signing.WithPredicate("https://slsa.dev/provenance/v1")))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailMalformed, wantCause: "is an attestation (https://slsa.dev/provenance/v1)",
		},
		{
			name: "more signatures than are looked at",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				for range maxSignatures {
					must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["stranger"]))
				}
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"]))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailMalformed, wantCause: fmt.Sprintf("more than %d signatures", maxSignatures),
		},
		{
			name: "oversized signature manifest",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"]))
				e.reg.intercept(func(w http.ResponseWriter, r *http.Request) bool {
					if !strings.HasSuffix(r.URL.Path, ".sig") {
						return false
					}
					w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
					w.(http.Flusher).Flush() // no Content-Length: the bound is met while reading
					chunk := []byte(strings.Repeat(" ", 64<<10))
					for range (maxManifest / len(chunk)) + 2 {
						if _, err := w.Write(chunk); err != nil {
							return true
						}
					}
					return true
				})
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unsigned, wantFailure: FailMalformed, wantCause: "exceeds 4194304 bytes",
		},
		{
			name: "registry down",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				e.reg.srv.Close()
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unverified, wantFailure: FailUnreachable, wantCause: "unreachable",
		},
		{
			name: "registry answers 500",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"]))
				e.reg.intercept(func(w http.ResponseWriter, r *http.Request) bool {
					http.Error(w, "broken", http.StatusInternalServerError)
					return true
				})
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unverified, wantFailure: FailUnreachable, wantCause: "unreachable",
		},
		{
			name: "referrers fail while the cosign signature is there: signed, not remembered", referrers: true,
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"]))
				e.reg.intercept(func(w http.ResponseWriter, r *http.Request) bool {
					if !strings.Contains(r.URL.Path, "/referrers/") {
						return false
					}
					http.Error(w, "broken", http.StatusBadGateway)
					return true
				})
				return e.reg.host + "/team/app", d
			},
			wantStatus: Signed, wantKeys: []string{"release"},
		},
		{
			name: "registry wants credentials and dockgate has none",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"]))
				e.reg.intercept(requireBasicAuth("dockgate", "s3cret"))
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unverified, wantFailure: FailAuth, wantCause: "denied dockgate access",
		},
		{
			name: "registry wants credentials and the docker config has them",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				must(e.t, signing.SignCosign(ctx, e.reg.ref("team/app", d), k["release"]))
				e.reg.intercept(requireBasicAuth("dockgate", "s3cret"))
				e.opts.DockerConfig = writeDockerConfig(e.t, e.reg.host, "dockgate", "s3cret")
				return e.reg.host + "/team/app", d
			},
			wantStatus: Signed, wantKeys: []string{"release"},
		},
		{
			name: "registry does not answer in time",
			setup: func(e *env) (string, string) {
				d := e.reg.push(e.t, "team/app")
				e.reg.intercept(func(w http.ResponseWriter, r *http.Request) bool {
					if r.URL.Path == "/v2/" {
						return false
					}
					<-r.Context().Done()
					return true
				})
				e.opts.Timeout = 300 * time.Millisecond
				return e.reg.host + "/team/app", d
			},
			wantStatus: Unverified, wantFailure: FailTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &env{t: t, reg: newTestRegistry(t, tt.referrers)}
			repo, digest := tt.setup(e)
			v := mustVerifier(t, e.opts)
			got := v.Verify(ctx, repo, digest, keys)
			if got.Status != tt.wantStatus || !slices.Equal(got.Keys, tt.wantKeys) ||
				got.Failure != tt.wantFailure || !strings.Contains(got.Cause, tt.wantCause) {
				t.Errorf("Verify = %+v\nwant status %v, keys %v, failure %q, cause containing %q",
					got, tt.wantStatus, tt.wantKeys, tt.wantFailure, tt.wantCause)
			}
		})
	}
}

// requireBasicAuth answers 401 to every request without the credentials.
func requireBasicAuth(user, pass string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == user && p == pass {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return true
	}
}

func writeDockerConfig(t *testing.T, host, user, pass string) string {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	p := filepath.Join(t.TempDir(), "config.json")
	must(t, os.WriteFile(p, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)), 0o600))
	return p
}
