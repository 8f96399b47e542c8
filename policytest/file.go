// Package policytest runs a policy's own tests: requests with their
// callers and what dockerd would say of the objects they name, each
// judged as serve and explain judge it, against the decision expected.
package policytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is one test file: DIR/*_test.yaml or DIR/tests/*.yaml.
type File struct {
	Path  string
	Cases []*Case
}

// Case is one test: a request, its caller, the state of dockerd it needs,
// and what is expected.
type Case struct {
	Name string `yaml:"name"`
	// As are the caller's subjects (* is added, as serve adds it);
	// Container, instead, is the container the caller runs in, judged as
	// serve judges a caller in a container.
	As        []string         `yaml:"as"`
	Container *CallerContainer `yaml:"container"`
	Method    string           `yaml:"method"`
	Path      string           `yaml:"path"`
	// Body is the request body: a string as it is, anything else as JSON.
	Body yaml.Node `yaml:"body"`
	// BodyFile is a file holding the body, relative to the test file.
	BodyFile string `yaml:"body_file"`
	// Objects and Images are what dockerd has, for the facts that ask it.
	Objects []Object `yaml:"objects"`
	Images  []Image  `yaml:"images"`
	// Registry is what registries hold, for the signature facts of a
	// policy that verifies them.
	Registry []RegistryImage `yaml:"registry"`
	// Expect is allow or deny; Refused the first refused fact
	// ("KIND VALUE"), Rule the row that decides it or "no rule allows it";
	// Facts are facts the request must have ("KIND VALUE").
	Expect  string   `yaml:"expect"`
	Refused string   `yaml:"refused"`
	Rule    string   `yaml:"rule"`
	Facts   []string `yaml:"facts"`

	// Line is the case's line in its file.
	Line int `yaml:"-"`
	body []byte
	url  *url.URL
	file string
}

// CallerContainer is the container a caller runs in, as dockerd describes
// it: its name, image and the labels its creator set, and what dockgate
// recorded on it when it was created through dockgate: the tenant it was
// created for and the subjects of its creator.
type CallerContainer struct {
	Name   string            `yaml:"name"`
	Image  string            `yaml:"image"`
	Labels map[string]string `yaml:"labels"`
	// Tenant is the owner it was created for ("" for none); CreatedBy
	// the subjects its creator was judged by ("": created outside
	// dockgate, or without a creator record).
	Tenant    string   `yaml:"tenant"`
	CreatedBy []string `yaml:"created_by"`
}

// Object is an existing container, exec, volume, network or image as
// dockerd would describe it when asked who owns it.
type Object struct {
	Kind string `yaml:"kind"`
	Name string `yaml:"name"`
	ID   string `yaml:"id"`
	// Owner is its io.dockgate.owner label ("" for none: created outside
	// dockgate); Labels are any other labels.
	Owner  string            `yaml:"owner"`
	Labels map[string]string `yaml:"labels"`
	// Binds, Volumes and Devices are what a container takes from the
	// host (its bind sources, named volumes and device paths): none when
	// not given.
	Binds   []string `yaml:"binds"`
	Volumes []string `yaml:"volumes"`
	Devices []string `yaml:"devices"`
}

// Image is an image dockerd has: its ID, and the repo digests (pulled
// from or pushed to a registry) and tags it has.
type Image struct {
	Ref         string   `yaml:"ref"`
	ID          string   `yaml:"id"`
	RepoDigests []string `yaml:"repo_digests"`
	RepoTags    []string `yaml:"repo_tags"`
}

// Error is a malformed test file, with the line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// FindFiles returns the test files of a policy directory, in lexical
// order: *_test.yaml beside the policy and *.yaml in its tests directory.
func FindFiles(dir string) ([]string, error) {
	var files []string
	for _, pattern := range []string{filepath.Join(dir, "*_test.yaml"), filepath.Join(dir, "tests", "*.yaml")} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	return files, nil
}

// ReadFile reads and checks a test file: every field known, every case
// with a name, a caller, a request and an expectation. It does not load
// the policy: `dockgate check` checks test files with it.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Tests []yaml.Node `yaml:"tests"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: path, Msg: "empty: want a tests: list"}
		}
		return nil, &Error{File: path, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Tests) == 0 {
		return nil, &Error{File: path, Msg: "no tests: want a tests: list of cases"}
	}
	f := &File{Path: path}
	names := map[string]int{}
	for i := range doc.Tests {
		n := &doc.Tests[i]
		c := &Case{Line: n.Line, file: path}
		if err := decodeStrict(n, c); err != nil {
			line := n.Line
			var le *lineError
			if errors.As(err, &le) {
				line = le.line
			}
			return nil, &Error{File: path, Line: line, Msg: err.Error()}
		}
		if err := c.check(filepath.Dir(path)); err != nil {
			return nil, &Error{File: path, Line: n.Line, Msg: err.Error()}
		}
		if prev, dup := names[c.Name]; dup {
			return nil, &Error{File: path, Line: n.Line, Msg: fmt.Sprintf("case %q is also on line %d", c.Name, prev)}
		}
		names[c.Name] = n.Line
		f.Cases = append(f.Cases, c)
	}
	return f, nil
}

// decodeStrict decodes a case node refusing unknown fields (a typo such
// as "expext" must not make a case that checks nothing), with the line of
// the field.
func decodeStrict(n *yaml.Node, c *Case) error {
	if n.Kind != yaml.MappingNode {
		return errors.New("a case must be a mapping (name:, as:, method:, path:, expect: ...)")
	}
	known := map[string]bool{}
	t := reflect.TypeOf(*c)
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			known[tag] = true
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !known[k.Value] {
			return &lineError{k.Line, fmt.Sprintf("unknown field %q", k.Value)}
		}
	}
	if err := n.Decode(c); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// lineError is an error on a line of its own, not the case's.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return e.msg }

var objectKinds = []string{"container", "exec", "volume", "network", "image"}

func (c *Case) check(dir string) error {
	switch {
	case c.Name == "":
		return errors.New("a case without a name")
	case (len(c.As) == 0) == (c.Container == nil):
		return fmt.Errorf("case %q: want one caller: as: [SUBJECT, ...] or container: {name: ...}", c.Name)
	case c.Container != nil && c.Container.Name == "":
		return fmt.Errorf("case %q: container: without a name", c.Name)
	case c.Container != nil && c.Container.Tenant != "" && len(c.Container.CreatedBy) == 0:
		return fmt.Errorf("case %q: container: a tenant's container needs created_by: (the subjects of the tenant that created it)", c.Name)
	case c.Method == "" || c.Path == "":
		return fmt.Errorf("case %q: want method: and path:", c.Name)
	case c.Expect != "allow" && c.Expect != "deny":
		return fmt.Errorf("case %q: expect: %q: want allow or deny", c.Name, c.Expect)
	case c.Expect == "allow" && (c.Refused != "" || c.Rule != ""):
		return fmt.Errorf("case %q: refused: and rule: name what a refusal refuses: they go with expect: deny", c.Name)
	case c.Rule != "" && c.Refused == "":
		return fmt.Errorf("case %q: rule: needs refused: (the fact it decides)", c.Name)
	}
	u, err := url.ParseRequestURI(c.Path)
	if err != nil {
		return fmt.Errorf("case %q: path: %v", c.Name, err)
	}
	c.url = u
	for _, f := range append(slices.Clone(c.Facts), c.Refused) {
		if f != "" && !strings.Contains(strings.TrimSpace(f), " ") {
			return fmt.Errorf("case %q: fact %q: want KIND VALUE", c.Name, f)
		}
	}
	for _, o := range c.Objects {
		if !slices.Contains(objectKinds, o.Kind) || o.Name == "" && o.ID == "" {
			return fmt.Errorf("case %q: object %+v: want kind (%s) and name or id", c.Name, o, strings.Join(objectKinds, ", "))
		}
	}
	for _, im := range c.Images {
		if im.Ref == "" {
			return fmt.Errorf("case %q: an image without ref:", c.Name)
		}
	}
	for i := range c.Registry {
		if err := c.Registry[i].check(); err != nil {
			return fmt.Errorf("case %q: %v", c.Name, err)
		}
	}
	switch {
	case c.BodyFile != "" && !c.Body.IsZero():
		return fmt.Errorf("case %q: body: and body_file: both given", c.Name)
	case c.BodyFile != "":
		if c.body, err = os.ReadFile(filepath.Join(dir, c.BodyFile)); err != nil {
			return fmt.Errorf("case %q: body_file: %v", c.Name, err)
		}
	case c.Body.Kind == yaml.ScalarNode && c.Body.Tag == "!!str":
		c.body = []byte(c.Body.Value)
	case !c.Body.IsZero():
		var v any
		if err := c.Body.Decode(&v); err != nil {
			return fmt.Errorf("case %q: body: %v", c.Name, err)
		}
		if c.body, err = json.Marshal(v); err != nil {
			return fmt.Errorf("case %q: body: %v (write it as a JSON string instead)", c.Name, err)
		}
	}
	return nil
}
