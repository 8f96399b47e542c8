package apifields

import (
	"encoding"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/dockgate/dockgate/authz/internal/jsonfields"
)

// found is a field that some API version defines on a body and the SDK
// type lacks, keyed by the Go struct type whose JSON object holds it.
type found struct {
	typ  reflect.Type
	name string // as the newest version that has it spells it
	// jsonType and description are the newest version's.
	jsonType    string
	description string
	versions    []apiVersion
	// at is where in a body it was first seen ("ServiceSpec.TaskTemplate.Resources").
	at string
	// handKept: api124 lists it.
	handKept bool
}

type fieldKey struct {
	typ    reflect.Type
	folded string
}

// finder walks bodies alongside their Go types and collects what it found.
type finder struct {
	found map[fieldKey]*found
	err   error
}

func newFinder() *finder { return &finder{found: make(map[fieldKey]*found)} }

// add records name on t for version v. Versions arrive oldest first, so
// the newest spelling, type and description win.
func (g *finder) add(t reflect.Type, name string, v apiVersion, jsonType, description, at string) {
	if !isASCII(name) {
		// encoding/json folds non-ASCII keys in ways foldKey does not.
		g.fail(fmt.Errorf("%s: field %q is not ASCII", at, name))
		return
	}
	k := fieldKey{t, foldKey(name)}
	f, ok := g.found[k]
	if !ok {
		f = &found{typ: t, at: at}
		g.found[k] = f
	}
	f.name, f.jsonType, f.description = name, jsonType, description
	if !slices.Contains(f.versions, v) {
		f.versions = append(f.versions, v)
	}
}

func (g *finder) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

// sorted returns what was found, by type then name.
func (g *finder) sorted() []*found {
	var out []*found
	for _, f := range g.found {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := typeName(out[i].typ), typeName(out[j].typ); a != b {
			return a < b
		}
		return out[i].name < out[j].name
	})
	return out
}

// walkSwagger walks schema s of document d alongside Go type t.
func (g *finder) walkSwagger(d *swaggerDoc, t reflect.Type, s *schema, legacy reflect.Type, at string, seen map[visit]bool) {
	t = deref(t)
	if s == nil || opaque(t) {
		return
	}
	f := d.flatten(s)
	if f.ref != "" {
		// Definitions refer to themselves (a health check's nothing,
		// but a schema may): each (type, definition) once.
		v := visit{t, f.ref}
		if seen[v] {
			return
		}
		seen[v] = true
		defer delete(seen, v)
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := jsonfields.Of(t)
		for _, name := range sortedKeys(f.props) {
			prop := f.props[name]
			if field, ok := lookup(fields, name); ok {
				g.walkSwagger(d, field.Type, prop, nil, at+"."+name, seen)
				continue
			}
			if isLegacy(legacy, name) {
				continue
			}
			g.add(t, name, d.version, d.jsonType(prop), d.flatten(prop).description, at)
		}
	case reflect.Map:
		g.walkSwagger(d, t.Elem(), f.values, nil, at+"[key]", seen)
	case reflect.Slice, reflect.Array:
		g.walkSwagger(d, t.Elem(), f.items, nil, at+"[]", seen)
	}
}

type visit struct {
	typ reflect.Type
	ref string
}

// walkExample walks a JSON value decoded from an example request (API
// 1.24's documentation) alongside Go type t.
func (g *finder) walkExample(v apiVersion, t reflect.Type, value any, legacy reflect.Type, at string) {
	t = deref(t)
	if opaque(t) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := value.(map[string]any)
		if !ok {
			return
		}
		fields := jsonfields.Of(t)
		for _, name := range sortedKeys(obj) {
			if field, ok := lookup(fields, name); ok {
				g.walkExample(v, field.Type, obj[name], nil, at+"."+name)
				continue
			}
			if isLegacy(legacy, name) {
				continue
			}
			g.add(t, name, v, exampleType(obj[name]), "(an example request of the API "+v.String()+" documentation)", at)
		}
	case reflect.Map:
		if obj, ok := value.(map[string]any); ok {
			for _, k := range sortedKeys(obj) {
				g.walkExample(v, t.Elem(), obj[k], nil, at+"[key]")
			}
		}
	case reflect.Slice, reflect.Array:
		if list, ok := value.([]any); ok {
			for _, e := range list {
				g.walkExample(v, t.Elem(), e, nil, at+"[]")
			}
		}
	}
}

// exampleType is the JSON type of an example value.
func exampleType(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			return "number"
		}
		return "integer"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "any"
}

// lookup finds the field encoding/json decodes key into: the exact name,
// else the first that folds alike.
func lookup(fields []jsonfields.Field, key string) (jsonfields.Field, bool) {
	for _, f := range fields {
		if f.Name == key {
			return f, true
		}
	}
	for _, f := range fields {
		if foldKey(f.Name) == foldKey(key) {
			return f, true
		}
	}
	return jsonfields.Field{}, false
}

// isLegacy: name is a field of legacy (or the create wrapper's old
// Cpuset), which authz refuses at the top level of a create body.
func isLegacy(legacy reflect.Type, name string) bool {
	if legacy == nil {
		return false
	}
	if foldKey(name) == foldKey("Cpuset") {
		return true
	}
	_, ok := lookup(jsonfields.Of(legacy), name)
	return ok
}

// foldKey folds an ASCII key as encoding/json matches keys with field names.
func foldKey(s string) string { return strings.ToUpper(s) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// opaque: encoding/json hands the value to the type's own decoder, and the
// strict pass does not look for fields inside it (authz buildSchema).
func opaque(t reflect.Type) bool {
	if t.Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		return true
	}
	return t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(textUnmarshalerType)
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
