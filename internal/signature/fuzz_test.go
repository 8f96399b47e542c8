package signature

import (
	"encoding/json"
	"testing"
)

// FuzzParseSimpleSigning: whatever a registry serves as a payload, the
// parser never panics, and what it accepts is an image signature naming a
// digest, read as encoding/json reads it.
func FuzzParseSimpleSigning(f *testing.F) {
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/app"},"image":{"docker-manifest-digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"type":"cosign container image signature"},"optional":null}`))
	f.Add([]byte(`{"critical":{"type":"cosign container image signature","image":{"docker-manifest-digest":"sha256:1"}}} {}`))
	f.Add([]byte(`{"Critical":{"TYPE":"cosign container image signature","image":{"Docker-Manifest-Digest":"x"}}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseSimpleSigning(b)
		if err != nil {
			return
		}
		if p.Critical.Type != simpleSigningType || p.Critical.Image.DockerManifestDigest == "" {
			t.Fatalf("accepted %q as %+v", b, p)
		}
		var again simpleSigning
		if err := json.Unmarshal(b, &again); err != nil || again.Critical != p.Critical {
			t.Fatalf("encoding/json reads %q as %+v (%v), the parser as %+v", b, again.Critical, err, p.Critical)
		}
	})
}

// FuzzIntotoSubjects: a statement's subjects are read without panicking,
// and each digest returned is a sha256 one.
func FuzzIntotoSubjects(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"ab"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`))
	f.Add([]byte(`{"subject":[{"digest":{"sha512":"ab"}},{"digest":null}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range intotoSubjects(b) {
			if len(d) < 7 || d[:7] != "sha256:" {
				t.Fatalf("subject digest %q from %q", d, b)
			}
		}
	})
}
