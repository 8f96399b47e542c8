package dockermux

import (
	"fmt"
	"strings"
)

// A template is one route's path template, compiled to what gorilla/mux's
// regexp for it does, without a regexp: gorilla/mux compiles
// "/containers/{name:.*}/json" to ^/containers/(?P<v0>.*)/json$ and tries
// it on the decoded path, which costs microseconds on a long container ID,
// route after route. The variable patterns dockerd's routes use are few
// (varClass); a template with another one is refused when it is loaded.
type template struct {
	src   string
	parts []part
	// names are the variables in template order.
	names []string
	// key is the template's first path segment when it is literal
	// ("containers" for "/containers/{name:.*}/json"): a path whose first
	// segment differs cannot match. wild: the first segment holds a
	// variable, so any path may.
	key  string
	wild bool
}

// varClass is a variable's pattern, matched as Go's regexp matches it on
// a string: "." is any character but a newline, "[^/]" any character but
// a slash (newline included: regexp.Compile sets syntax.ClassNL), an
// invalid UTF-8 byte is one character. On bytes that is one excluded byte
// each, since no byte of a multi-byte character is ASCII.
type varClass uint8

const (
	classAny        varClass = iota // ".*"
	classSome                       // ".+"
	classSegment                    // "[^/]+", gorilla/mux's default
	classVersionRun                 // "[0-9.]+", dockerd's version prefix
)

// maxVars bounds the variables of one template, so that a match collects
// them on the stack.
const maxVars = 4

// part is a literal run of the template, or one variable.
type part struct {
	lit   string
	isVar bool
	class varClass
	// tail, for a variable that only literal text follows, is that text:
	// the variable then has one possible extent, the rest of the path
	// before it.
	tail     string
	tailOnly bool
}

// compileTemplate reads a template as gorilla/mux's braceIndices and
// newRouteRegexp read it. It refuses what gorilla/mux would refuse
// (unbalanced braces, an empty name) and what this matcher does not
// implement (another variable pattern, a literal that is not ASCII, a
// template not starting with "/").
func compileTemplate(src string) (*template, error) {
	if !strings.HasPrefix(src, "/") {
		return nil, fmt.Errorf("template %q does not start with /", src)
	}
	t := &template{src: src}
	rest := src
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.parts = append(t.parts, part{lit: rest})
			break
		}
		if rest[open] == '}' {
			return nil, fmt.Errorf("unbalanced braces in %q", src)
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] != '}' {
			return nil, fmt.Errorf("unbalanced or nested braces in %q", src)
		}
		if open > 0 {
			t.parts = append(t.parts, part{lit: rest[:open]})
		}
		name, pattern, hasPattern := strings.Cut(rest[open+1:open+1+end], ":")
		if name == "" || hasPattern && pattern == "" {
			return nil, fmt.Errorf("missing name or pattern in %q", src)
		}
		class, ok := classOf(pattern)
		if !ok {
			return nil, fmt.Errorf("variable %s of %q: pattern %q is not one dockermux implements", name, src, pattern)
		}
		t.parts = append(t.parts, part{isVar: true, class: class})
		t.names = append(t.names, name)
		rest = rest[open+1+end+1:]
	}
	if len(t.names) > maxVars {
		return nil, fmt.Errorf("%q has %d variables, more than %d", src, len(t.names), maxVars)
	}
	for i := range t.parts {
		p := &t.parts[i]
		if !p.isVar {
			for j := 0; j < len(p.lit); j++ {
				if p.lit[j] >= 0x80 {
					return nil, fmt.Errorf("%q: a literal that is not ASCII", src)
				}
			}
			continue
		}
		var tail strings.Builder
		p.tailOnly = true
		for _, q := range t.parts[i+1:] {
			if q.isVar {
				p.tailOnly = false
				break
			}
			tail.WriteString(q.lit)
		}
		p.tail = tail.String()
	}
	// The first part is literal: src starts with "/".
	first := t.parts[0].lit[1:]
	if seg, _, cut := strings.Cut(first, "/"); cut || len(t.parts) == 1 {
		t.key = seg
	} else {
		t.wild = true
	}
	return t, nil
}

func classOf(pattern string) (varClass, bool) {
	switch pattern {
	case ".*":
		return classAny, true
	case ".+":
		return classSome, true
	case "", "[^/]+": // "": no pattern, gorilla/mux's default
		return classSegment, true
	case "[0-9.]+":
		return classVersionRun, true
	}
	return 0, false
}

// match reports whether the template matches the whole of s and puts its
// variables, in template order, into vars. Among several ways to match it
// picks the one Go's regexp picks (leftmost-first: each variable as long
// as the rest still matches), trying longer extents first.
func (t *template) match(s string, vars *[maxVars]string) bool {
	return matchParts(t.parts, s, vars[:0])
}

func matchParts(parts []part, s string, vars []string) bool {
	for len(parts) > 0 && !parts[0].isVar {
		if !strings.HasPrefix(s, parts[0].lit) {
			return false
		}
		s, parts = s[len(parts[0].lit):], parts[1:]
	}
	if len(parts) == 0 {
		return s == ""
	}
	p := &parts[0]
	longest := p.class.longest(s)
	least := 1
	if p.class == classAny {
		least = 0
	}
	if p.tailOnly {
		// Only literal text follows: the one extent that leaves it.
		n := len(s) - len(p.tail)
		if n < least || n > longest || s[n:] != p.tail {
			return false
		}
		vars = append(vars, s[:n])
		return true
	}
	for n := longest; n >= least; n-- {
		if matchParts(parts[1:], s[n:], append(vars, s[:n])) {
			return true
		}
	}
	return false
}

// longest is the length of the longest prefix of s that the class
// matches.
func (c varClass) longest(s string) int {
	var stop int
	switch c {
	case classAny, classSome:
		stop = strings.IndexByte(s, '\n')
	case classSegment:
		stop = strings.IndexByte(s, '/')
	case classVersionRun:
		stop = 0
		for stop < len(s) && (s[stop] == '.' || '0' <= s[stop] && s[stop] <= '9') {
			stop++
		}
		return stop
	}
	if stop < 0 {
		return len(s)
	}
	return stop
}
