package authz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/dockgate/dockgate/authz/internal/strictjson"
)

// patchJSON returns the body raw with only what dockgate changed in its
// typed value replaced: orig is raw decoded, changed the same value after
// dockgate added the owner labels or pinned container references. Members
// whose values are equal in both keep the client's bytes, so that what
// the typed encoding cannot tell apart (an empty list from null, once
// omitempty drops it: `"Entrypoint":[]` resets the image's entrypoint,
// null keeps it) reaches dockerd as the client sent it. docker-compose v1
// sends such bodies. The caller checks that the result decodes to changed.
func patchJSON(raw []byte, orig, changed reflect.Value) ([]byte, error) {
	if reflect.DeepEqual(orig.Interface(), changed.Interface()) {
		return raw, nil
	}
	for orig.Kind() == reflect.Pointer && changed.Kind() == reflect.Pointer && !orig.IsNil() && !changed.IsNil() {
		orig, changed = orig.Elem(), changed.Elem()
	}
	if orig.Kind() != reflect.Struct || !isJSONObject(raw) || hasOwnJSONCoding(orig.Type()) {
		return json.Marshal(changed.Interface())
	}
	members, err := jsonMembers(raw)
	if err != nil {
		return nil, err
	}
	for _, f := range jsonStructFields(orig, changed) {
		if reflect.DeepEqual(f.orig.Interface(), f.changed.Interface()) {
			continue
		}
		i := findMember(members, f.name)
		if i < 0 {
			if f.omitEmpty && f.changed.IsZero() {
				continue
			}
			b, err := json.Marshal(f.changed.Interface())
			if err != nil {
				return nil, fmt.Errorf("encoding %s: %w", f.name, err)
			}
			members = append(members, jsonMember{key: f.name, value: b})
			continue
		}
		b, err := patchJSON(members[i].value, f.orig, f.changed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		members[i].value = b
	}
	return encodeMembers(members)
}

type jsonMember struct {
	key   string
	value json.RawMessage
}

func isJSONObject(raw []byte) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// hasOwnJSONCoding: a type that encodes itself is replaced whole.
func hasOwnJSONCoding(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(reflect.TypeFor[json.Marshaler]()) || p.Implements(reflect.TypeFor[json.Marshaler]()) ||
		p.Implements(reflect.TypeFor[json.Unmarshaler]())
}

// jsonMembers splits a JSON object into its members, in order.
func jsonMembers(raw []byte) ([]jsonMember, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var out []jsonMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key %v", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, jsonMember{key: key, value: v})
	}
	return out, nil
}

func encodeMembers(members []jsonMember) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// findMember finds the member encoding/json decodes into the field name:
// an exact match, else one equal under its case folding. The strict pass
// has refused bodies where two members fold to one field.
func findMember(members []jsonMember, name string) int {
	for i, m := range members {
		if m.key == name {
			return i
		}
	}
	for i, m := range members {
		if strictjson.FoldKey(m.key) == strictjson.FoldKey(name) {
			return i
		}
	}
	return -1
}

// jsonField is one field as encoding/json sees it, with its value in the
// decoded and in the changed struct.
type jsonField struct {
	name          string
	omitEmpty     bool
	orig, changed reflect.Value
}

// jsonStructFields lists the JSON fields of two values of one struct
// type, the fields of embedded structs (container.CreateRequest embeds
// *Config) at the level of the struct's own.
func jsonStructFields(orig, changed reflect.Value) []jsonField {
	var out []jsonField
	t := orig.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		o, c := orig.Field(i), changed.Field(i)
		if sf.Anonymous && name == "" {
			for o.Kind() == reflect.Pointer && c.Kind() == reflect.Pointer && !o.IsNil() && !c.IsNil() {
				o, c = o.Elem(), c.Elem()
			}
			if o.Kind() == reflect.Struct {
				out = append(out, jsonStructFields(o, c)...)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, jsonField{name: name, omitEmpty: strings.Contains(","+opts+",", ",omitempty,"), orig: o, changed: c})
	}
	return out
}
