// Package jsonfields lists the fields encoding/json decodes a struct into,
// for the strict pass of package authz and for the generator of its table
// of other API versions' fields, which must agree on them.
package jsonfields

import (
	"reflect"
	"sort"
	"strings"
	"unicode"
)

// Field is one field encoding/json decodes into.
type Field struct {
	Name string
	// Tagged: the name comes from a json tag.
	Tagged bool
	// Index leads to the field through embedded structs (reflect's FieldByIndex).
	Index []int
	Type  reflect.Type
}

// Of lists the fields encoding/json decodes into for struct type t,
// following its typeFields (go/src/encoding/json/encode.go): json tags,
// "-", promotion of untagged embedded structs breadth-first, and the
// dominance rules for names that appear at several depths.
func Of(t reflect.Type) []Field {
	type walk struct {
		typ   reflect.Type
		index []int
	}
	var fields []Field
	next := []walk{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := make(map[reflect.Type]bool)
	for len(next) > 0 {
		current := next
		next = nil
		count, nextCount = nextCount, make(map[reflect.Type]int)
		for _, w := range current {
			if visited[w.typ] {
				continue
			}
			visited[w.typ] = true
			for i := 0; i < w.typ.NumField(); i++ {
				sf := w.typ.Field(i)
				if sf.Anonymous {
					ft := sf.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				if !isValidTag(name) {
					name = ""
				}
				index := make([]int, len(w.index)+1)
				copy(index, w.index)
				index[len(w.index)] = i
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					f := Field{Name: name, Tagged: name != "", Index: index, Type: sf.Type}
					if f.Name == "" {
						f.Name = sf.Name
					}
					fields = append(fields, f)
					if count[w.typ] > 1 {
						// Two copies at the same depth annihilate each other.
						fields = append(fields, f)
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, walk{typ: ft, index: index})
				}
			}
		}
	}
	sort.SliceStable(fields, func(i, j int) bool {
		a, b := fields[i], fields[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if len(a.Index) != len(b.Index) {
			return len(a.Index) < len(b.Index)
		}
		if a.Tagged != b.Tagged {
			return a.Tagged
		}
		return lessIndex(a.Index, b.Index)
	})
	out := fields[:0:0]
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].Name == fields[i].Name {
			j++
		}
		if f, ok := dominantField(fields[i:j]); ok {
			out = append(out, f)
		}
		i = j
	}
	sort.Slice(out, func(i, j int) bool { return lessIndex(out[i].Index, out[j].Index) })
	return out
}

// dominantField picks the field that wins among fields of one name (sorted
// by depth, then tagged first), as encoding/json does: the shallowest, and
// among equally shallow ones the only tagged one; otherwise none.
func dominantField(fs []Field) (Field, bool) {
	if len(fs) > 1 && len(fs[0].Index) == len(fs[1].Index) && fs[0].Tagged == fs[1].Tagged {
		return Field{}, false
	}
	return fs[0], true
}

func lessIndex(a, b []int) bool {
	for k := 0; k < len(a) && k < len(b); k++ {
		if a[k] != b[k] {
			return a[k] < b[k]
		}
	}
	return len(a) < len(b)
}

// isValidTag is encoding/json's isValidTag.
func isValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}
