package apifields

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/docker/docker/api/types/container"
)

// The Go side of the synthetic swagger below.
type (
	testBody struct {
		Known int
		Inner *testInner
		List  []testInner
		Map   map[string]testInner
		Self  *testBody
	}
	testInner  struct{ A string }
	testLegacy struct{ Old bool }
)

const testSwagger = `
info: {version: "1.30"}
definitions:
  Base:
    type: object
    properties:
      known: {type: integer}
      New: {type: string, format: uuid, description: "A new field. More."}
      Old: {type: boolean}
  Inner:
    type: object
    properties:
      A: {type: string}
      B: {type: [array, string], items: {type: string}}
  Body:
    allOf:
      - $ref: "#/definitions/Base"
      - type: object
        properties:
          Inner: {$ref: "#/definitions/Inner"}
          List: {type: array, items: {$ref: "#/definitions/Inner"}}
          Map: {type: object, additionalProperties: {$ref: "#/definitions/Inner"}}
          Self: {$ref: "#/definitions/Body"}
          Listed: {type: array, items: {$ref: "#/definitions/Inner"}}
paths:
  /things/{id}/do:
    post:
      parameters:
        - {in: query, name: q, type: string}
        - {in: body, name: body, schema: {$ref: "#/definitions/Body"}}
`

// TestWalkSwagger: fields are found at any depth, through $ref, allOf,
// lists and maps, keyed by the Go struct that lacks them; keys match
// fields as encoding/json matches them; the legacy type's fields are not
// looked for at the top level.
func TestWalkSwagger(t *testing.T) {
	d := new(swaggerDoc)
	if err := yaml.Unmarshal([]byte(testSwagger), d); err != nil {
		t.Fatal(err)
	}
	d.version = 30
	g := newFinder()
	s := d.bodySchema(post("/things/{id}/do"))
	if s == nil {
		t.Fatal("no body schema")
	}
	g.walkSwagger(d, reflect.TypeFor[testBody](), s, reflect.TypeFor[testLegacy](), "testBody", make(map[visit]bool))
	if g.err != nil {
		t.Fatal(g.err)
	}
	var got []string
	for _, f := range g.sorted() {
		got = append(got, typeName(f.typ)+"."+f.name+" "+f.jsonType+" "+versionRanges(f.versions))
	}
	want := []string{
		"apifields.testBody.Listed array of object (Inner) 1.30",
		"apifields.testBody.New string (uuid) 1.30",
		"apifields.testInner.B array or string 1.30",
	}
	if !slices.Equal(got, want) {
		t.Errorf("found\n %q\nwant\n %q", got, want)
	}
}

func TestReadExamples(t *testing.T) {
	dir := t.TempDir()
	md := "#### Exec Create\n\n" +
		"    POST /v1.24/containers/e90e/exec HTTP/1.1\n" +
		"    Content-Type: application/json\n\n" +
		"    {\n      \"Cmd\": [\"sh\"],\n\n      \"Tty\": true\n    }\n\n" +
		"**Example response**:\n\n" +
		"```\nPOST /v1.24/networks/create HTTP/1.1\nContent-Type: application/json\n\n{\"Name\":\"n\"}\n```\n" +
		"```\nPOST /v1.24/plugins/pull?name=x HTTP/1.1\n```\n\nText after the block.\n"
	if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docs", "v1.24.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	examples, err := readExamples(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct{ path, body string }{
		{"/containers/e90e/exec", `{"Cmd":["sh"],"Tty":true}`},
		{"/networks/create", `{"Name":"n"}`},
		{"/plugins/pull", ``},
	} {
		if i >= len(examples) {
			t.Fatalf("%d examples, want 3", len(examples))
		}
		e := examples[i]
		if body := strings.Join(strings.Fields(e.body), ""); e.path != tc.path || body != strings.ReplaceAll(tc.body, " ", "") {
			t.Errorf("example %d: %s %q, want %s %q", i, e.path, body, tc.path, tc.body)
		}
	}
}

func TestVersionRanges(t *testing.T) {
	for _, tc := range []struct {
		in   []apiVersion
		want string
	}{
		{[]apiVersion{56}, "1.56"},
		{[]apiVersion{25, 26, 27}, "1.25–1.27"},
		{[]apiVersion{40, 24, 25, 52, 53}, "1.24–1.25, 1.40, 1.52–1.53"},
	} {
		if got := versionRanges(tc.in); got != tc.want {
			t.Errorf("versionRanges(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPathPattern(t *testing.T) {
	for _, tc := range []struct {
		template, path string
		match          bool
	}{
		{"/containers/{id}/exec", "/containers/e90e34656806/exec", true},
		{"/containers/{id}/exec", "/containers/a/b/exec", false},
		{"/containers/create", "/containers/create", true},
		{"/containers/create", "/containers/createx", false},
		{"/plugins/{name}/set", "/plugins/sshfs/set", true},
	} {
		if got := pathPattern(tc.template).MatchString(tc.path); got != tc.match {
			t.Errorf("%s matches %s: %v, want %v", tc.template, tc.path, got, tc.match)
		}
	}
}

// TestDecide: a field no decision covers, and a decision that covers no
// field, are errors that name them.
func TestDecide(t *testing.T) {
	var all []*found
	for _, d := range append(slices.Clone(harmless), refused...) {
		all = append(all, &found{typ: d.typ, name: d.name, versions: []apiVersion{50}})
	}
	if _, err := decide(all); err != nil {
		t.Fatalf("every decision covered: %v", err)
	}
	undecided := &found{typ: reflect.TypeFor[container.HostConfig](), name: "NewDevices", jsonType: "array", versions: []apiVersion{57}}
	_, err := decide(append(slices.Clone(all), undecided))
	if err == nil || !strings.Contains(err.Error(), "container.HostConfig.NewDevices: array, API 1.57") {
		t.Errorf("an undecided field: %v", err)
	}
	_, err = decide(all[1:])
	if err == nil || !strings.Contains(err.Error(), typeName(all[0].typ)) || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("a stale decision: %v", err)
	}
}
