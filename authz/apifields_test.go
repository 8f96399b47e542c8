package authz

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/dockgate/dockgate/authz/internal/apifields"
	"github.com/dockgate/dockgate/authz/internal/jsonfields"

	"github.com/dockgate/dockgate/authz/internal/strictjson"
)

// TestAPIFieldsUpToDate keeps apifields_gen.go in step with the swagger
// history and the decisions: a decision or a body added without
// regenerating fails here, and so does a field no decision covers.
func TestAPIFieldsUpToDate(t *testing.T) {
	dir, err := apifields.APIDir()
	if errors.Is(err, apifields.ErrNoSwagger) {
		t.Skipf("cannot check %s: %v", apifields.Output, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	want, err := apifields.Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join("..", filepath.FromSlash(apifields.Output))
	if *updateGenerated {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date; run: go run ./authz/internal/apifields/gen", file)
	}
}

// TestAPIFieldBodies: the generator looks at every type a body is decoded
// into with the strict pass, so that no body's other-version fields are
// missed. It reads the calls of decodeStrictJSON(body, &v, …) in this
// package and the type of v's var declaration.
func TestAPIFieldBodies(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	decoded := make(map[string]bool)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			vars := make(map[string]string)
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if vs, ok := n.(*ast.ValueSpec); ok && vs.Type != nil {
					for _, id := range vs.Names {
						vars[id.Name] = types.ExprString(vs.Type)
					}
				}
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) < 2 {
					return true
				}
				if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "decodeStrictJSON" {
					return true
				}
				if u, ok := call.Args[1].(*ast.UnaryExpr); ok && u.Op == token.AND {
					if id, ok := u.X.(*ast.Ident); ok && vars[id.Name] != "" {
						decoded[vars[id.Name]] = true
						return true
					}
				}
				t.Errorf("%s: cannot tell what decodeStrictJSON decodes into (write var v T; decodeStrictJSON(body, &v, …))", fset.Position(call.Pos()))
				return true
			})
		}
	}
	var got, want []string
	for name := range decoded {
		got = append(got, name)
	}
	for _, typ := range apifields.BodyTypes() {
		want = append(want, typ.String())
	}
	sort.Strings(got)
	sort.Strings(want)
	want = slices.Compact(want)
	if !slices.Equal(got, want) {
		t.Errorf("decodeStrictJSON decodes into %q;\nthe generator (authz/internal/apifields/bodies.go) looks at %q", got, want)
	}
}

// TestAPIFieldDecisions: every field judged harmless is known to the
// strict pass (once: twice is still ambiguous), and every field refused is
// refused as unknown, as decided, whether or not the swagger is at hand.
func TestAPIFieldDecisions(t *testing.T) {
	for _, d := range apifields.Decisions() {
		t.Run(d.Type.String()+"."+d.Name, func(t *testing.T) {
			one := `{"` + d.Name + `":1}`
			err := strictjson.Check([]byte(one), d.Type, strictjson.Options{})
			if d.Harmless {
				if err != nil {
					t.Errorf("harmless, but %s is refused: %v", one, err)
				}
				twice := `{"` + d.Name + `":1,"` + strings.ToLower(d.Name) + `":1}`
				if strictjson.Check([]byte(twice), d.Type, strictjson.Options{}) == nil {
					t.Errorf("%s is accepted", twice)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "unknown field") {
				t.Errorf("refused, but %s gives %v", one, err)
			}
		})
	}
}

// TestAPIFieldsAddNothingKnown: an entry of apiFields is not a field the
// SDK type has already, nor a HostConfig field at the top level of a
// create body, which old daemons apply and the strict pass refuses
// (legacyTopLevel): a known key there would bypass that refusal.
func TestAPIFieldsAddNothingKnown(t *testing.T) {
	legacy := strictjson.ContainerCreate().LegacyTopLevel
	for typ, extra := range strictjson.APIFields() {
		known := make(map[string]bool)
		for _, f := range jsonfields.Of(typ) {
			known[strictjson.FoldKey(f.Name)] = true
		}
		for _, f := range extra {
			if known[strictjson.FoldKey(f.Name)] {
				t.Errorf("%v already has %s", typ, f.Name)
			}
			if _, ok := legacy[strictjson.FoldKey(f.Name)]; ok && typ == reflect.TypeFor[container.CreateRequest]() {
				t.Errorf("%s is a top-level HostConfig field of a create body", f.Name)
			}
		}
	}
}

// TestOtherAPIVersionsBodies: bodies that clients of other API versions
// send are read, and what they may not do is still refused.
func TestOtherAPIVersionsBodies(t *testing.T) {
	const (
		dockerPyExec = `{"Container":"abc","User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Cmd":["echo","hi"],"Env":null}`
		execTarget   = "/v1.41/containers/c1/exec"
	)
	image := []string{"image docker.io/library/busybox:latest"}
	service := func(resources string) string {
		return `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Resources":` + resources + `}}`
	}
	clusterVolume := func(accessMode string) string {
		return `{"Name":"cv","Driver":"csi","ClusterVolumeSpec":{"AccessMode":` + accessMode + `}}`
	}
	runFactCases(t, []factCase{
		{name: "docker-py 5.x exec create (Container, API 1.24)", target: execTarget, body: dockerPyExec, exact: true},
		{name: "docker-py exec naming its container twice", target: execTarget, body: `{"Container":"abc","container":"def","Cmd":["true"]}`, status: 400},
		{name: "exec with a field no version knows", target: execTarget, body: `{"Containr":"abc","Cmd":["true"]}`, status: 400},
		{name: "create with Umask (API 1.56)", target: createTarget, body: create(`{"Umask":18}`), want: image, exact: true},
		{name: "create with Umask twice", target: createTarget, body: create(`{"Umask":18,"umask":0}`), status: 400},
		{name: "create with DiskQuota (API 1.25-1.39)", target: createTarget, body: create(`{"DiskQuota":1048576}`), want: image, exact: true},
		{name: "create with Capabilities (API 1.40) refused", target: createTarget, body: create(`{"Capabilities":["CAP_SYS_ADMIN"]}`), status: 400},
		{name: "create with a HostConfig field no version knows", target: createTarget, body: create(`{"Umaks":18}`), status: 400},
		{name: "top-level Umask refused like any HostConfig field", target: createTarget, body: `{"Image":"busybox","Umask":18}`, status: 400},
		{name: "update with Init (swagger's Resources)", target: "/v1.41/containers/c1/update", body: `{"Memory":67108864,"Init":true}`},
		{name: "service with SwapBytes and MemorySwappiness (API 1.52)", target: "/v1.41/services/create", body: service(`{"Limits":{"MemoryBytes":67108864},"SwapBytes":1024,"MemorySwappiness":10}`), want: image, exact: true},
		{name: "service with GenericResources as a limit (API 1.32-1.40)", target: "/v1.41/services/create", body: service(`{"Limits":{"GenericResources":[{"DiscreteResourceSpec":{"Kind":"SSD","Value":1}}]}}`), want: image, exact: true},
		{name: "service with a resource no version knows", target: "/v1.41/services/create", body: service(`{"SwapByte":1024}`), status: 400},
		{name: "service plugin with PluginPrivilege refused", target: "/v1.41/services/create", body: `{"Name":"p","TaskTemplate":{"Runtime":"plugin","PluginSpec":{"Name":"p","Remote":"vieux/sshfs","PluginPrivilege":[{"Name":"mount","Value":["/"]}]}}}`, status: 400},
		{name: "cluster volume with Availability in AccessMode", target: "/v1.42/volumes/create", body: clusterVolume(`{"Scope":"single","Sharing":"none","Availability":"active","CapacityRange":{"RequiredBytes":1}}`)},
		{name: "cluster volume with Secrets in AccessMode refused", target: "/v1.42/volumes/create", body: clusterVolume(`{"Secrets":[{"Key":"k","Secret":"s"}]}`), status: 400},
	})
}
