package signature

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

type fixedBody struct{ n int64 }

func (f fixedBody) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, ContentLength: -1, Body: io.NopCloser(io.LimitReader(zeros{}, f.n)), Request: req}, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestResponsesAreBoundedByWhatTheyFetch(t *testing.T) {
	tests := []struct {
		name string
		path string
		size int64
		ok   bool
	}{
		{"a manifest of exactly 4 MiB", "/v2/team/app/manifests/latest", maxManifest, true},
		{"a manifest one byte over", "/v2/team/app/manifests/latest", maxManifest + 1, false},
		{"a referrers index one byte over", "/v2/team/app/referrers/sha256:00", maxManifest + 1, false},
		{"a blob of exactly 1 MiB", "/v2/team/app/blobs/sha256:00", maxSignatureBlob, true},
		{"a blob one byte over", "/v2/team/app/blobs/sha256:00", maxSignatureBlob + 1, false},
		{"a blob in a repository named manifests", "/v2/team/manifests/blobs/sha256:00", maxSignatureBlob + 1, false},
		{"a manifest in a repository named blobs", "/v2/team/blobs/manifests/latest", maxManifest, true},
		{"a token response one byte over", "/token", maxOtherResponse + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://registry.test"+tt.path, nil)
			must(t, err)
			resp, err := limitTransport{next: fixedBody{n: tt.size}}.RoundTrip(req)
			must(t, err)
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			var big *errTooLarge
			if tt.ok && (err != nil || n != tt.size) {
				t.Errorf("read %d bytes, %v; want all %d", n, err, tt.size)
			}
			if !tt.ok && !errors.As(err, &big) {
				t.Errorf("read %d bytes, %v; want errTooLarge", n, err)
			}
		})
	}
}

func TestAPanicVerifyingASignatureIsASignatureThatDoesNotCount(t *testing.T) {
	j := &judgement{found: map[string]bool{}}
	j.guard("signature sha256:ab", func() { panic("a library met bytes it did not expect") })
	if j.rejected == nil || j.rejected.failure != FailMalformed || !strings.Contains(j.rejected.cause, "did not expect") {
		t.Fatalf("rejected = %+v", j.rejected)
	}
	if r, _ := j.result(); r.Status != Unsigned {
		t.Errorf("result %+v, want unsigned", r)
	}
}
