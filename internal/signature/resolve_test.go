package signature

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		setup       func(t *testing.T, reg *testRegistry) (ref, want string)
		wantFailure Failure // "" = no error
	}{
		{
			name: "a tag resolves to the manifest it names now",
			setup: func(t *testing.T, reg *testRegistry) (string, string) {
				reg.push(t, "team/app")
				d := reg.push(t, "team/app") // the tag moved
				return reg.host + "/team/app:latest", d
			},
		},
		{
			name: "a registry that answers HEAD without a digest is asked with GET",
			setup: func(t *testing.T, reg *testRegistry) (string, string) {
				d := reg.push(t, "team/app")
				reg.intercept(func(w http.ResponseWriter, r *http.Request) bool {
					if r.Method != http.MethodHead {
						return false
					}
					w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
					w.Header().Set("Content-Length", "100")
					w.WriteHeader(http.StatusOK)
					return true
				})
				return reg.host + "/team/app:latest", d
			},
		},
		{
			name: "a registry that refuses HEAD is asked with GET",
			setup: func(t *testing.T, reg *testRegistry) (string, string) {
				d := reg.push(t, "team/app")
				reg.intercept(func(w http.ResponseWriter, r *http.Request) bool {
					if r.Method != http.MethodHead {
						return false
					}
					w.WriteHeader(http.StatusMethodNotAllowed)
					return true
				})
				return reg.host + "/team/app:latest", d
			},
		},
		{
			name: "a digest reference is its own answer",
			setup: func(t *testing.T, reg *testRegistry) (string, string) {
				d := reg.push(t, "team/app")
				reg.srv.Close()
				return reg.ref("team/app", d), d
			},
		},
		{
			name: "a missing tag is not found",
			setup: func(t *testing.T, reg *testRegistry) (string, string) {
				reg.push(t, "team/app")
				return reg.host + "/team/app:nope", ""
			},
			wantFailure: FailNotFound,
		},
		{
			name: "an unreachable registry",
			setup: func(t *testing.T, reg *testRegistry) (string, string) {
				reg.srv.Close()
				return reg.host + "/team/app:latest", ""
			},
			wantFailure: FailUnreachable,
		},
		{
			name: "a registry that wants credentials dockgate does not have",
			setup: func(t *testing.T, reg *testRegistry) (string, string) {
				reg.push(t, "team/app")
				reg.intercept(requireBasicAuth("u", "p"))
				return reg.host + "/team/app:latest", ""
			},
			wantFailure: FailAuth,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newTestRegistry(t, false)
			ref, want := tt.setup(t, reg)
			v := mustVerifier(t, Options{})
			got, err := v.Resolve(ctx, ref)
			if tt.wantFailure == "" {
				if err != nil || got != want {
					t.Fatalf("Resolve(%s) = %q, %v; want %q", ref, got, err, want)
				}
				if f := v.Stats().Failures; len(f) != 0 {
					t.Errorf("a resolved tag counted failures: %v", f)
				}
				return
			}
			var re *RegistryError
			if !errors.As(err, &re) || re.Failure != tt.wantFailure || !strings.Contains(err.Error(), reg.host) {
				t.Fatalf("Resolve(%s) = %q, %v; want a %s error naming %s", ref, got, err, tt.wantFailure, reg.host)
			}
			// The metrics see a registry that fails pulls by tag.
			if f := v.Stats().Failures; f[tt.wantFailure] != 1 || len(f) != 1 {
				t.Errorf("Stats().Failures = %v, want one %s", f, tt.wantFailure)
			}
		})
	}
}
