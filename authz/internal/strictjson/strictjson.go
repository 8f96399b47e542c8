// Package strictjson decodes a request body as dockerd's encoding/json
// does, after refusing every body whose meaning depends on encoding/json's
// leniencies (folded and duplicate keys, unknown fields, trailing data), so
// that no other reader can take it to mean something else.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/docker/docker/api/types/container"

	"github.com/dockgate/dockgate/authz/internal/jsonfields"
)

// Strict JSON: dockerd decodes request bodies with Go's encoding/json into
// typed structs, which is lenient in ways a hostile caller can use to make
// two readers disagree (BRIEF §7 item 1): keys match fields
// case-insensitively, including the Unicode folds K (U+212A) → k and
// ſ (U+017F) → s; the last of duplicate keys wins and duplicate objects
// merge; unknown keys are dropped; \u escapes are decoded in keys; dockerd
// ignores bytes after the first value; and old daemons read HostConfig
// fields at the top level of a create body.
//
// dockgate decodes with the same package into the same types, so what it
// evaluates is what dockerd acts on. The strict pass below runs first and
// refuses every body whose meaning depends on those leniencies, so that no
// other reader (an older dockerd, a plugin, a log) can read it differently:
//
//   - duplicate keys: in a struct object, keys that fold to the same field
//     name; in a map object, identical keys (map keys are not folded);
//   - keys that match no field of the type, unless their value is null,
//     false, 0, "", [] or {} (an older or newer daemon may know the field).
//     The fields of the type are those of the SDK (API 1.51) and those
//     other API versions define and were judged harmless (apiFields,
//     generated from the API's swagger history by
//     authz/internal/apifields, where each is decided);
//   - top-level HostConfig fields in a create body (LegacyTopLevel);
//   - anything after the value other than whitespace;
//   - invalid UTF-8 (encoding/json would silently replace it);
//   - nesting deeper than maxJSONDepth.
//
// The pass only refuses; it never changes the bytes. The typed value decoded
// afterwards with encoding/json is the only thing facts are read from.

// maxJSONDepth bounds the nesting of a body. The deepest Engine API body
// (a service spec's mount driver options) nests about eight levels.
const maxJSONDepth = 64

// MaxBytes backs up the proxy's body limit: no Engine API JSON body
// comes near it.
const MaxBytes = 32 << 20

// ContainerCreate are the options of a container create body: HostConfig
// fields at the top level are refused, since old daemons apply them (the
// embedded *HostConfig of runconfig's ContainerConfigWrapper; Debian's
// dockerd 20.10.24 creates {"Image":…,"Privileged":true,"Binds":[…]} as a
// privileged container with those binds).
var ContainerCreate = sync.OnceValue(func() Options {
	legacy := TopLevelFieldsOf(reflect.TypeFor[container.HostConfig](), reflect.TypeFor[container.CreateRequest]())
	// The wrapper's deprecated top-level Cpuset.
	legacy[FoldKey("Cpuset")] = "Cpuset"
	return Options{LegacyTopLevel: legacy}
})

// Options tune the strict pass for one endpoint.
type Options struct {
	// LegacyTopLevel maps folded key → field name of keys refused at the
	// top level whatever their value (HostConfig fields in a create body).
	LegacyTopLevel map[string]string
}

// Error is a body the strict pass refuses: one that is not exactly one
// unambiguous JSON value of its type (a 400 to the client), or one larger
// than MaxBytes (TooLarge, a 413).
type Error struct {
	Message  string
	TooLarge bool
}

func (e *Error) Error() string { return e.Message }

func badBody(format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...)}
}

// Decode runs the strict pass over data for the type of v and then
// decodes data into v with encoding/json, as dockerd does.
func Decode(data []byte, v any, opts Options) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return fmt.Errorf("strictjson: Decode needs a pointer, got %T", v)
	}
	if err := Check(data, t.Elem(), opts); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return badBody("invalid JSON body: %v", err)
	}
	return nil
}

// Check is the strict pass: it refuses (400) data that is not
// exactly one unambiguous JSON value for type t.
func Check(data []byte, t reflect.Type, opts Options) error {
	if len(data) > MaxBytes {
		return &Error{TooLarge: true, Message: fmt.Sprintf("JSON body larger than %d bytes", MaxBytes)}
	}
	if !utf8.Valid(data) {
		return badBody("JSON body is not valid UTF-8")
	}
	// encoding/json's own scanner settles syntax and trailing data; the
	// walk below then only meets well-formed JSON.
	if !json.Valid(data) {
		return invalidJSON(data)
	}
	w := strictWalker{data: data, opts: opts}
	_, err := w.value(schemaOf(t), 0)
	return err
}

// invalidJSON says why data is not one JSON value.
func invalidJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return badBody("invalid JSON body: empty")
		}
		return badBody("invalid JSON body: %v", err)
	}
	return badBody("trailing data after the JSON body")
}

// strictWalker walks a well-formed JSON value (json.Valid) alongside the
// schema of the type it decodes into.
type strictWalker struct {
	data []byte
	pos  int
	opts Options
	// path leads to the value being walked, for messages; it is built
	// into a string only then.
	path []pathElem
}

// pathElem is an object key (raw, as sent), or a list index when index >= 0.
type pathElem struct {
	key   []byte
	index int
}

// where names the value being walked ("body.HostConfig.Binds[0]").
func (w *strictWalker) where() string {
	var b strings.Builder
	b.WriteString("body")
	for _, p := range w.path {
		if p.index >= 0 {
			b.WriteString("[" + strconv.Itoa(p.index) + "]")
			continue
		}
		b.WriteString("." + unquoteKey(p.key))
	}
	return b.String()
}

func (w *strictWalker) skipSpace() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\r', '\n':
			w.pos++
		default:
			return
		}
	}
}

// next returns the next non-space byte without consuming it.
func (w *strictWalker) next() byte {
	w.skipSpace()
	if w.pos >= len(w.data) {
		return 0
	}
	return w.data[w.pos]
}

// str consumes a string and returns its bytes between the quotes, still
// escaped, and whether it has escapes.
func (w *strictWalker) str() (raw []byte, escaped bool) {
	w.pos++ // opening quote
	start := w.pos
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case '\\':
			escaped = true
			w.pos += 2
			continue
		case '"':
			raw = w.data[start:w.pos]
			w.pos++
			return raw, escaped
		}
		w.pos++
	}
	return w.data[start:], escaped
}

// value walks one JSON value expected to have shape s and reports whether
// it is a zero value (null, false, 0, "", [] or {}).
func (w *strictWalker) value(s *jsonSchema, depth int) (zero bool, err error) {
	switch c := w.next(); c {
	case '{', '[':
		if depth+1 > maxJSONDepth {
			return false, badBody("JSON body nests deeper than %d levels", maxJSONDepth)
		}
		w.pos++
		if c == '{' {
			return w.object(s, depth+1)
		}
		return w.array(s, depth+1)
	case '"':
		raw, _ := w.str()
		return len(raw) == 0, nil
	case 'n':
		w.pos += len("null")
		return true, nil
	case 'f':
		w.pos += len("false")
		return true, nil
	case 't':
		w.pos += len("true")
		return false, nil
	default:
		// A number: zero when every digit of the mantissa is 0.
		zero = true
		mantissa := true
		for ; w.pos < len(w.data); w.pos++ {
			switch b := w.data[w.pos]; {
			case b == 'e' || b == 'E':
				mantissa = false
			case b >= '1' && b <= '9':
				if mantissa {
					zero = false
				}
			case b == '0' || b == '-' || b == '+' || b == '.':
			default:
				return zero, nil
			}
		}
		return zero, nil
	}
}

func (w *strictWalker) array(s *jsonSchema, depth int) (bool, error) {
	elem := anySchema
	if s.kind == schemaList {
		elem = s.elem
	}
	if w.next() == ']' {
		w.pos++
		return true, nil
	}
	w.path = append(w.path, pathElem{index: 0})
	for i := 0; ; i++ {
		w.path[len(w.path)-1].index = i
		if _, err := w.value(elem, depth); err != nil {
			return false, err
		}
		c := w.next()
		w.pos++
		if c != ',' {
			break
		}
	}
	w.path = w.path[:len(w.path)-1]
	return false, nil
}

func (w *strictWalker) object(s *jsonSchema, depth int) (bool, error) {
	if w.next() == '}' {
		w.pos++
		return true, nil
	}
	// Keys already seen: struct fields by index; map keys exactly; other
	// keys (unknown fields, objects of unknown shape) folded.
	var seenFields []int
	var seenKeys map[string][]byte
	var fold [64]byte
	for {
		w.next()
		raw, escaped := w.str()
		key := raw
		if escaped {
			key = []byte(unquoteKey(raw))
		}
		w.next()
		w.pos++ // ':'
		child := anySchema
		known := false
		switch s.kind {
		case schemaMap:
			if prev, dup := seenKeys[string(key)]; dup {
				return false, badBody("ambiguous JSON body: keys %q and %q in %s are the same key", unquoteKey(prev), unquoteKey(raw), w.where())
			}
			seenKeys = setKey(seenKeys, string(key), raw)
			child, known = s.elem, true
		case schemaStruct:
			folded := appendFoldedKey(fold[:0], key)
			i, ok := s.exact[string(key)]
			if !ok {
				i, ok = s.folded[string(folded)]
			}
			if ok {
				for _, j := range seenFields {
					if j == i {
						return false, badBody("ambiguous JSON body: two keys in %s name the field %q (the second is %q)", w.where(), s.names[i], unquoteKey(raw))
					}
				}
				seenFields = append(seenFields, i)
				child, known = s.fields[i], true
				break
			}
			if depth == 1 {
				if name, legacy := w.opts.LegacyTopLevel[string(folded)]; legacy {
					return false, badBody("HostConfig field %q at the top level of the body (key %q): old daemons apply it, put it under HostConfig", name, unquoteKey(raw))
				}
			}
			fallthrough
		default:
			folded := string(appendFoldedKey(fold[:0], key))
			if prev, dup := seenKeys[folded]; dup {
				return false, badBody("ambiguous JSON body: keys %q and %q in %s differ only in case", unquoteKey(prev), unquoteKey(raw), w.where())
			}
			seenKeys = setKey(seenKeys, folded, raw)
		}
		w.path = append(w.path, pathElem{key: raw, index: -1})
		zero, err := w.value(child, depth)
		if err != nil {
			return false, err
		}
		w.path = w.path[:len(w.path)-1]
		if s.kind == schemaStruct && !known && !zero {
			return false, badBody("unknown field %q in %s: dockgate cannot judge what it does not know", unquoteKey(raw), w.where())
		}
		c := w.next()
		w.pos++
		if c != ',' {
			break
		}
	}
	return false, nil
}

func setKey(m map[string][]byte, k string, raw []byte) map[string][]byte {
	if m == nil {
		m = make(map[string][]byte)
	}
	m[k] = raw
	return m
}

// unquoteKey decodes the escapes of a raw key exactly as encoding/json
// does (invalid surrogates become U+FFFD).
func unquoteKey(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	q = append(q, '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return string(raw)
	}
	return s
}

// FoldKey folds a key the way encoding/json compares keys with field
// names (its foldName, go/src/encoding/json/fold.go): ASCII letters to upper
// case, every other rune to the smallest rune of its Unicode fold set, so
// that "privileged", "PRIVILEGED" and "Bind\u017f" fold like the field names
// they match.
func FoldKey(s string) string {
	return string(appendFoldedKey(nil, []byte(s)))
}

// appendFoldedKey appends the folded key to out (encoding/json's
// appendFoldedName).
func appendFoldedKey(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

// foldRune returns the smallest rune of r's fold set (encoding/json's foldRune).
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// jsonSchema is what the strict pass knows of the type a JSON value decodes
// into: enough to tell struct objects (keys folded, unknown keys checked)
// from map objects (keys exact) and to follow the nesting.
type jsonSchema struct {
	kind schemaKind
	// struct: field indexes by exact JSON name and by folded name (the
	// first field in index order for each fold, as encoding/json keeps it).
	exact  map[string]int
	folded map[string]int
	fields []*jsonSchema
	names  []string
	// map value or list element.
	elem *jsonSchema
}

type schemaKind int

const (
	// schemaAny: interface{}, custom unmarshalers and scalars. Objects in
	// it are checked for keys that differ only in case.
	schemaAny schemaKind = iota
	schemaStruct
	schemaMap
	schemaList
)

var anySchema = &jsonSchema{kind: schemaAny}

// field returns the schema of the field key decodes into, or nil.
func (s *jsonSchema) field(key, folded string) *jsonSchema {
	i, ok := s.exact[key]
	if !ok {
		i, ok = s.folded[folded]
	}
	if !ok {
		return nil
	}
	return s.fields[i]
}

var (
	schemaCache sync.Map // reflect.Type → *jsonSchema
	schemaMu    sync.Mutex

	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// schemaOf returns the schema of t, built once per type.
func schemaOf(t reflect.Type) *jsonSchema {
	if s, ok := schemaCache.Load(t); ok {
		return s.(*jsonSchema)
	}
	schemaMu.Lock()
	defer schemaMu.Unlock()
	building := make(map[reflect.Type]*jsonSchema)
	s := buildSchema(t, building)
	for bt, bs := range building {
		schemaCache.LoadOrStore(bt, bs)
	}
	return s
}

func buildSchema(t reflect.Type, building map[reflect.Type]*jsonSchema) *jsonSchema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := schemaCache.Load(t); ok {
		return s.(*jsonSchema)
	}
	if s, ok := building[t]; ok {
		return s
	}
	if t.Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		return anySchema
	}
	switch t.Kind() {
	case reflect.Struct:
		if reflect.PointerTo(t).Implements(textUnmarshalerType) {
			return anySchema
		}
		s := &jsonSchema{kind: schemaStruct, exact: make(map[string]int), folded: make(map[string]int)}
		building[t] = s
		for i, f := range append(jsonfields.Of(t), apiFields[t]...) {
			s.fields = append(s.fields, buildSchema(f.Type, building))
			s.names = append(s.names, f.Name)
			s.exact[f.Name] = i
			if _, ok := s.folded[FoldKey(f.Name)]; !ok {
				s.folded[FoldKey(f.Name)] = i
			}
		}
		return s
	case reflect.Map:
		s := &jsonSchema{kind: schemaMap}
		building[t] = s
		s.elem = buildSchema(t.Elem(), building)
		return s
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return anySchema // []byte is a base64 string
		}
		s := &jsonSchema{kind: schemaList}
		building[t] = s
		s.elem = buildSchema(t.Elem(), building)
		return s
	}
	return anySchema
}

// TopLevelFieldsOf returns, folded → name, the JSON field names of t that
// are not also fields of within: the HostConfig fields that old daemons
// read at the top level of a create body.
func TopLevelFieldsOf(t, within reflect.Type) map[string]string {
	known := make(map[string]bool)
	for _, f := range jsonfields.Of(within) {
		known[FoldKey(f.Name)] = true
	}
	out := make(map[string]string)
	for _, f := range jsonfields.Of(t) {
		if k := FoldKey(f.Name); !known[k] {
			out[k] = f.Name
		}
	}
	return out
}

// APIFields are the fields other Engine API versions define on the bodies
// dockgate judges that the SDK types lack and that were judged harmless
// (apifields_gen.go), by type: what the strict pass knows beyond the SDK.
// The map is shared: read it, never change it.
func APIFields() map[reflect.Type][]jsonfields.Field { return apiFields }
