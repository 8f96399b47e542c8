package signature

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

const simpleSigningType = "cosign container image signature"

// simpleSigning is the payload cosign signs for an image: what it is, by
// digest, and where it was signed.
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// parseSimpleSigning reads a signed payload as cosign's verifier does
// (encoding/json), and refuses one that is not an image signature or has
// data after its object.
func parseSimpleSigning(b []byte) (*simpleSigning, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var p simpleSigning
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("payload: data after the JSON object")
	}
	if p.Critical.Type != simpleSigningType {
		return nil, fmt.Errorf("payload type %q is not %q", p.Critical.Type, simpleSigningType)
	}
	if p.Critical.Image.DockerManifestDigest == "" {
		return nil, fmt.Errorf("payload names no docker-manifest-digest")
	}
	return &p, nil
}

// intotoSubjects returns the sha256 digests a DSSE envelope's in-toto
// statement names, to say why a bundle that no key verifies was refused.
func intotoSubjects(payload []byte) []string {
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if json.Unmarshal(payload, &st) != nil {
		return nil
	}
	var out []string
	for _, s := range st.Subject {
		if h, ok := s.Digest["sha256"]; ok {
			out = append(out, "sha256:"+h)
		}
	}
	return out
}
