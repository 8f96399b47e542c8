package authz

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"google.golang.org/protobuf/proto"

	"github.com/dockgate/dockgate/authz/policy"
)

// bkRequest is a gRPC call as the proxy hands it to Judge: POST, the full
// method as the path, the first message as the body, the metadata as the
// header.
func bkRequest(m *Match, body []byte, md http.Header, solve *BuildKitSolve) *Request {
	return &Request{Method: http.MethodPost, URL: &url.URL{Path: m.Path}, Header: md, Body: body,
		Caller: "user:test", Creator: [][]string{{"user:test", "*"}}, Solve: solve}
}

// bkFacts reads the facts of one call on m with the fake inspector.
func bkFacts(t *testing.T, m *Match, body []byte, md http.Header, solve *BuildKitSolve) ([]string, *Request, error) {
	t.Helper()
	req := bkRequest(m, body, md, solve)
	facts, err := newExtractor(fakeHost(t))(context.Background(), m, req, newFakeInspector())
	have := []string{}
	for _, f := range facts {
		have = append(have, f.Kind+" "+f.Value)
		if !slices.Contains(policy.FactKinds(), f.Kind) {
			t.Errorf("fact %s %s has a kind policies cannot name", f.Kind, f.Value)
		}
	}
	return have, req, err
}

// marshalPB is the wire form of a BuildKit message.
func marshalPB(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// llbDef marshals an LLB state with BuildKit's own builder.
func llbDef(t *testing.T, st llb.State) *pb.Definition {
	t.Helper()
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return def.ToPB()
}

// spoolFile is a spooled request body, as the proxy spools a tarball.
func spoolFile(t *testing.T, body []byte) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "body"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(body); err != nil {
		t.Fatal(err)
	}
	return f
}
