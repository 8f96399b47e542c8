package apifields

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// swaggerDoc is the part of one API version's swagger file the walk reads.
type swaggerDoc struct {
	version     apiVersion
	Info        struct{ Version string }
	Definitions map[string]*schema
	Paths       map[string]pathItem
}

type pathItem struct {
	Post *operation
	Put  *operation
}

type operation struct {
	Parameters []struct {
		In     string
		Schema *schema
	}
}

// schema is a swagger schema object, as much of it as names properties.
type schema struct {
	Ref                  string `yaml:"$ref"`
	Type                 typeNames
	Format               string
	Description          string
	Properties           map[string]*schema
	AdditionalProperties *schema `yaml:"additionalProperties"`
	Items                *schema
	AllOf                []*schema `yaml:"allOf"`
}

// typeNames is a schema's type: one name, or (older versions, for a
// command given as a string or a list) several.
type typeNames []string

func (t *typeNames) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*t = typeNames{n.Value}
		return nil
	}
	var names []string
	if err := n.Decode(&names); err != nil {
		return err
	}
	*t = names
	return nil
}

func (t typeNames) String() string { return strings.Join(t, " or ") }

// apiVersion is an Engine API version, 1.<minor>.
type apiVersion int

func (v apiVersion) String() string { return "1." + strconv.Itoa(int(v)) }

func parseAPIVersion(s string) (apiVersion, error) {
	minor, ok := strings.CutPrefix(s, "1.")
	n, err := strconv.Atoi(minor)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("API version %q is not 1.<minor>", s)
	}
	return apiVersion(n), nil
}

// loadSwagger reads every docs/v1.*.yaml of the moby/moby/api module in
// dir, oldest first. The module keeps one swagger file per released API
// version from 1.25 on; 1.24 and older are markdown (api124.go).
func loadSwagger(dir string) ([]*swaggerDoc, error) {
	files, err := filepath.Glob(filepath.Join(dir, "docs", "v1.*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no swagger files (docs/v1.*.yaml) in %s", dir)
	}
	var docs []*swaggerDoc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d := new(swaggerDoc)
		if err := yaml.Unmarshal(b, d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if d.version, err = parseAPIVersion(d.Info.Version); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		docs = append(docs, d)
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].version < docs[j].version })
	return docs, nil
}

// bodySchema returns the schema of the JSON body of the operation at, or
// nil when this version has no such operation.
func (d *swaggerDoc) bodySchema(at swaggerAt) *schema {
	if at.definition != "" {
		s := d.Definitions[at.definition]
		for _, p := range at.properties {
			if s == nil {
				return nil
			}
			s = d.flatten(s).props[p]
		}
		return s
	}
	item, ok := d.Paths[at.path]
	if !ok {
		return nil
	}
	var op *operation
	switch at.method {
	case "POST":
		op = item.Post
	case "PUT":
		op = item.Put
	}
	if op == nil {
		return nil
	}
	for _, p := range op.Parameters {
		if p.In == "body" {
			return p.Schema
		}
	}
	return nil
}

// resolve follows $ref to a definition of this document.
func (d *swaggerDoc) resolve(s *schema) (*schema, string) {
	ref := ""
	for s != nil && s.Ref != "" {
		ref = strings.TrimPrefix(s.Ref, "#/definitions/")
		s = d.Definitions[ref]
	}
	return s, ref
}

// flatSchema is a schema with its $ref followed and its allOf merged.
type flatSchema struct {
	ref         string
	typ         string
	format      string
	description string
	props       map[string]*schema
	items       *schema
	values      *schema // additionalProperties
}

func (d *swaggerDoc) flatten(s *schema) flatSchema {
	s, ref := d.resolve(s)
	f := flatSchema{ref: ref, props: make(map[string]*schema)}
	if s == nil {
		return f
	}
	f.typ, f.format, f.description = s.Type.String(), s.Format, s.Description
	f.items, f.values = s.Items, s.AdditionalProperties
	for k, v := range s.Properties {
		f.props[k] = v
	}
	for _, sub := range s.AllOf {
		g := d.flatten(sub)
		if f.typ == "" {
			f.typ = g.typ
		}
		if f.description == "" {
			f.description = g.description
		}
		for k, v := range g.props {
			if _, ok := f.props[k]; !ok {
				f.props[k] = v
			}
		}
		if f.items == nil {
			f.items = g.items
		}
		if f.values == nil {
			f.values = g.values
		}
	}
	if f.typ == "" && len(f.props) > 0 {
		f.typ = "object"
	}
	return f
}

// jsonType names the JSON type of s as the swagger gives it: "string",
// "integer (int64)", "array of string", "object (HealthConfig)".
func (d *swaggerDoc) jsonType(s *schema) string {
	f := d.flatten(s)
	t := f.typ
	if t == "" {
		t = "any"
	}
	switch {
	case t == "array" && f.items != nil:
		t = "array of " + d.jsonType(f.items)
	case f.format != "":
		t += " (" + f.format + ")"
	case f.ref != "" && t == "object":
		t += " (" + f.ref + ")"
	}
	return t
}
