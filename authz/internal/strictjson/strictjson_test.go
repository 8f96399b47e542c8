package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"

	"github.com/dockgate/dockgate/authz/internal/jsonfields"
)

// foldProbe has fields whose names contain the letters with non-ASCII
// folds: k (Kelvin sign U+212A) and s (long s U+017F).
type foldProbe struct {
	Links          bool
	ShmSize        bool
	OomKillDisable bool
	Privileged     bool
}

// TestFoldMatchesEncodingJSON: a key reaches a struct field in the strict
// pass exactly when encoding/json decodes it into that field.
func TestFoldMatchesEncodingJSON(t *testing.T) {
	keys := []string{
		"Links", "links", "LINKS", "Lin\u212As", "Lin\u212A\u017f", "\u212Aey",
		"ShmSize", "\u017fhm\u017fize", "shmſize", "SHMSIZE",
		"OomKillDisable", "oom\u212aill\u212aisable", "Oom\u212AillDisable",
		"Privileged", "privileged", "PRİVİLEGED", "Privıleged", "Privileged ", "Privileged\u0000",
	}
	for _, k := range keys {
		checkFoldAgainstEncodingJSON(t, k)
	}
}

func checkFoldAgainstEncodingJSON(t *testing.T, key string) {
	t.Helper()
	body, err := json.Marshal(map[string]bool{key: true})
	if err != nil {
		t.Fatal(err)
	}
	var p foldProbe
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	decoded := p != foldProbe{}
	s := schemaOf(reflect.TypeFor[foldProbe]())
	matched := s.field(key, FoldKey(key)) != nil
	if decoded != matched {
		t.Errorf("key %q: encoding/json sets a field: %v, strict pass matches a field: %v", key, decoded, matched)
	}
}

// fill sets every field of v to a non-zero value, so that json.Marshal
// writes every field name (omitempty ones too).
func fill(v reflect.Value, depth int) {
	if depth > 6 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), depth+1)
	case reflect.Struct:
		if v.Type().PkgPath() == "time" {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, depth+1)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	}
}

// TestFieldsMatchEncodingJSON: the strict pass knows the same field names
// as encoding/json for the API types, embedded structs included.
func TestFieldsMatchEncodingJSON(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[container.CreateRequest](),
		reflect.TypeFor[container.HostConfig](),
		reflect.TypeFor[container.UpdateConfig](),
		reflect.TypeFor[container.ExecOptions](),
		reflect.TypeFor[network.CreateRequest](),
		reflect.TypeFor[network.EndpointSettings](),
		reflect.TypeFor[volume.CreateOptions](),
		reflect.TypeFor[swarm.ServiceSpec](),
		reflect.TypeFor[swarm.ContainerSpec](),
	} {
		v := reflect.New(typ)
		fill(v.Elem(), 0)
		b, err := json.Marshal(v.Interface())
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		want := slices.Sorted(maps.Keys(m))
		var got []string
		for _, f := range jsonfields.Of(typ) {
			got = append(got, f.Name)
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%v fields:\n got %q\nwant %q", typ, got, want)
		}
	}
}

func TestLegacyTopLevelFields(t *testing.T) {
	legacy := ContainerCreate().LegacyTopLevel
	for _, f := range []string{"Binds", "Privileged", "CapAdd", "Devices", "NetworkMode", "PidMode", "Memory", "CgroupParent", "Mounts", "Cpuset"} {
		if _, ok := legacy[FoldKey(f)]; !ok {
			t.Errorf("%s is not refused at the top level", f)
		}
	}
	for _, f := range []string{"Image", "Volumes", "HostConfig", "NetworkingConfig", "Labels", "Cmd"} {
		if _, ok := legacy[FoldKey(f)]; ok {
			t.Errorf("%s is refused at the top level", f)
		}
	}
}

func TestStrictJSON(t *testing.T) {
	type inner struct {
		A bool
		M map[string]string
	}
	type outer struct {
		In   inner
		List []inner
		Any  any
	}
	typ := reflect.TypeFor[outer]()
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"plain", `{"In":{"A":true},"List":[{"A":true}]}`, true},
		{"duplicate in a list element", `{"List":[{"A":true,"a":false}]}`, false},
		{"duplicate field in nested struct", `{"In":{"A":true,"A":false}}`, false},
		{"case variants in a map", `{"In":{"M":{"k":"1","K":"2","\u212a":"3"}}}`, true},
		{"exact duplicate in a map", `{"In":{"M":{"k":"1","k":"2"}}}`, false},
		{"escaped duplicate in a map", `{"In":{"M":{"k":"1","\u006b":"2"}}}`, false},
		{"case variants in an interface value", `{"Any":{"k":1,"K":2}}`, false},
		{"unknown key with zero values", `{"X":null,"Y":false,"Z":0,"W":"","V":[],"U":{},"T":0.0,"S":-0e3}`, true},
		{"unknown key with a value", `{"X":1}`, false},
		{"unknown key with a nested value", `{"X":{"a":null,"b":[1]}}`, false},
		{"trailing value", `{} {}`, false},
		{"trailing bracket", `{}]`, false},
		{"leading whitespace", " \n{}", true},
		{"two top-level values", `1 2`, false},
		{"not JSON", `{"In":}`, false},
		{"unterminated", `{"In":{"A":true}`, false},
		{"invalid UTF-8 in a key", "{\"In\xff\":1}", false},
		{"lone surrogates that decode alike", `{"In":{"M":{"\ud800":"1","\ud801":"2"}}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.body), typ, Options{})
			if (err == nil) != tc.ok {
				t.Fatalf("Check(%s) = %v, want ok=%v", tc.body, err, tc.ok)
			}
			if err != nil {
				var se *Error
				if !errors.As(err, &se) || se.TooLarge {
					t.Fatalf("want a refusal of the body (400), got %#v", err)
				}
			}
		})
	}
}

// FuzzStrictJSON: the strict pass never panics, and what it accepts is a
// single well-formed JSON value that encoding/json reads, with no keys
// that fold together within an object of a struct type.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{
		`{"Image":"busybox","HostConfig":{"Privileged":true}}`,
		`{"Image":"busybox","hostconfig":{"privileged":true,"Privileged":false}}`,
		`{"Image":"busybox","Bind\u017f":["/:/h"]}`,
		`{"Image":"busybox","Labels":{"a":"1","A":"2"}} `,
		`{"Image":"busybox"}}`,
		`{"HostConfig":{"Mounts":[{"Type":"volume","VolumeOptions":{"DriverConfig":{"Options":{"o":"bind"}}}}]}}`,
		`[1,2,{"a":null}]`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	typ := reflect.TypeFor[container.CreateRequest]()
	opts := ContainerCreate()
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data, typ, opts)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.TooLarge {
				t.Fatalf("refusal is not a 400: %#v", err)
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted invalid UTF-8: %q", data)
		}
		// UseNumber: a number beyond float64's range is valid JSON (the
		// typed decode that follows the strict pass refuses it, 400).
		var v any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
		}
		// The top-level object of an accepted create body has no two keys
		// encoding/json would read as one field.
		if obj, ok := v.(map[string]any); ok {
			seen := map[string]bool{}
			for k := range obj {
				fk := FoldKey(k)
				if seen[fk] && schemaOf(typ).field(k, fk) != nil {
					t.Fatalf("accepted %q with folded duplicate key %q", data, k)
				}
				seen[fk] = true
			}
		}
		// Accepting is stable.
		if err := Check(data, typ, opts); err != nil {
			t.Fatalf("second pass refused what the first accepted: %v", err)
		}
		_ = json.Unmarshal(data, new(container.CreateRequest))
	})
}

// FuzzFoldKey: the strict pass and encoding/json agree on which keys reach
// a field.
func FuzzFoldKey(f *testing.F) {
	for _, k := range []string{"Links", "Lin\u212As", "\u017fhmSize", "privileged", "OOMKILLDISABLE"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if !utf8.ValidString(key) || strings.ContainsRune(key, utf8.RuneError) {
			return
		}
		checkFoldAgainstEncodingJSON(t, key)
	})
}

// TestNewerHarmlessFields: fields of Engine API versions other than the
// SDK types' that carry nothing to judge (apiFields) pass the strict pass;
// any other unknown field still does not, and duplicates of the accepted
// ones are refused too.
func TestNewerHarmlessFields(t *testing.T) {
	type createBody struct {
		container.Config
		HostConfig *container.HostConfig
	}
	for _, tc := range []struct {
		name string
		typ  reflect.Type
		body string
		ok   bool
	}{
		{"Umask (API 1.56)", reflect.TypeFor[createBody](), `{"Image":"x","HostConfig":{"Umask":18}}`, true},
		{"Umask twice", reflect.TypeFor[createBody](), `{"Image":"x","HostConfig":{"Umask":18,"umask":0}}`, false},
		{"an unknown HostConfig field", reflect.TypeFor[createBody](), `{"Image":"x","HostConfig":{"Umaks":18}}`, false},
		{"service swap (API 1.52)", reflect.TypeFor[swarm.ServiceSpec](), `{"TaskTemplate":{"Resources":{"SwapBytes":1024,"MemorySwappiness":10}}}`, true},
		{"exec Container (docker-py)", reflect.TypeFor[container.ExecOptions](), `{"Container":"abc","Cmd":["true"],"AttachStdout":true}`, true},
		{"exec with an unknown field", reflect.TypeFor[container.ExecOptions](), `{"Containr":"abc","Cmd":["true"]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Check([]byte(tc.body), tc.typ, Options{}); (err == nil) != tc.ok {
				t.Errorf("Check(%s) = %v, want ok=%v", tc.body, err, tc.ok)
			}
		})
	}
}
