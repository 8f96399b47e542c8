package policy

import (
	"fmt"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// MaxPatternLen bounds a pattern's length in characters, which bounds the
// matcher's state set (maxPatternWords × 64 states, kept on the stack).
const MaxPatternLen = 480

const maxPatternWords = (MaxPatternLen + 1 + 63) / 64

// Pattern is a compiled policy glob (BRIEF §3): "*" matches any run of
// characters except "/", "**" any run including "/", a trailing "/**" also
// the path itself, "?" one character except "/"; everything else is literal
// and case-sensitive. A character is a UTF-8 code point; a byte that is not
// valid UTF-8 in a value is a character that no literal matches.
//
// Matching allocates nothing. The common shapes (literal, prefix + "**",
// prefix + "/**", prefix + "*", "**" + suffix) are string comparisons; the
// rest run a small NFA over the pattern's characters, linear in the value's
// length whatever the pattern, so a policy cannot make dockgate backtrack.
type Pattern struct {
	src   string
	shape patternShape
	// lit is the literal part of the simple shapes; litSlash is lit + "/".
	lit, litSlash string
	// elems is the NFA of the general shape: state i waits for elems[i];
	// state len(elems) accepts. head is the literal text of its first
	// headLen states, compared as a string before the NFA starts.
	elems   []patternElem
	head    string
	headLen int
}

type patternShape uint8

const (
	shapeGeneral       patternShape = iota
	shapeLiteral                    // "abc"
	shapePrefixAny                  // "abc**"
	shapePrefixDir                  // "abc/**": abc itself, or abc/ and anything
	shapePrefixSegment              // "abc*"
	shapeSuffixAny                  // "**abc"
)

type patternOp uint8

const (
	opLiteral  patternOp = iota // one given character
	opOne                       // "?": one character except "/"
	opStar                      // "*": stays on any character except "/"
	opAny                       // "**": stays on any character
	opDirSlash                  // the "/" of a trailing "/**", which may be skipped with the "**"
)

type patternElem struct {
	op patternOp
	r  rune
}

// CompilePattern checks and compiles a pattern. An empty pattern, a run of
// three or more "*", a character that is not valid UTF-8, a control
// character, or more than MaxPatternLen characters is an error.
func CompilePattern(s string) (*Pattern, error) {
	if s == "" {
		return nil, fmt.Errorf("empty pattern")
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("pattern %q is not valid UTF-8", s)
	}
	n := utf8.RuneCountInString(s)
	if n > MaxPatternLen {
		return nil, fmt.Errorf("pattern of %d characters is longer than %d", n, MaxPatternLen)
	}
	// At most one element a character: "**" and the "/**" ending take
	// fewer.
	p := &Pattern{src: s, elems: make([]patternElem, 0, n)}
	for i, r := range s {
		if r < 0x20 || r == 0x7f {
			return nil, fmt.Errorf("pattern %q has a control character at byte %d", s, i)
		}
	}
	if strings.Contains(s, "***") {
		return nil, fmt.Errorf("pattern %q: a run of three or more '*' has no meaning (use * or **)", s)
	}
	body, dir := s, false
	if strings.HasSuffix(s, "/**") {
		body, dir = s[:len(s)-3], true
	}
	for i := 0; i < len(body); {
		switch {
		case strings.HasPrefix(body[i:], "**"):
			p.elems = append(p.elems, patternElem{op: opAny})
			i += 2
		case body[i] == '*':
			p.elems = append(p.elems, patternElem{op: opStar})
			i++
		case body[i] == '?':
			p.elems = append(p.elems, patternElem{op: opOne})
			i++
		default:
			r, w := utf8.DecodeRuneInString(body[i:])
			p.elems = append(p.elems, patternElem{op: opLiteral, r: r})
			i += w
		}
	}
	if dir {
		p.elems = append(p.elems, patternElem{op: opDirSlash, r: '/'}, patternElem{op: opAny})
	}
	p.classify()
	return p, nil
}

// MustCompilePattern is CompilePattern for patterns that are constants of
// the program.
func MustCompilePattern(s string) *Pattern {
	p, err := CompilePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// classify picks a string-comparison shape when the pattern has one. The
// literal text of a shape is a slice of the pattern as written: the
// elements are its characters, decoded from valid UTF-8, in order.
func (p *Pattern) classify() {
	literal := func(es []patternElem) bool {
		for _, e := range es {
			if e.op != opLiteral {
				return false
			}
		}
		return true
	}
	s, n := p.src, len(p.elems)
	if literal(p.elems) {
		p.shape, p.lit = shapeLiteral, s
		return
	}
	last := p.elems[n-1].op
	if literal(p.elems[:n-1]) {
		switch last {
		case opAny: // "lit**"
			p.shape, p.lit = shapePrefixAny, s[:len(s)-2]
		case opStar: // "lit*"
			p.shape, p.lit = shapePrefixSegment, s[:len(s)-1]
		}
		return
	}
	if n >= 2 && p.elems[n-2].op == opDirSlash && literal(p.elems[:n-2]) {
		// "lit/**"
		p.shape, p.lit, p.litSlash = shapePrefixDir, s[:len(s)-3], s[:len(s)-2]
		return
	}
	if p.elems[0].op == opAny && literal(p.elems[1:]) {
		// "**lit"
		p.shape, p.lit = shapeSuffixAny, s[2:]
		return
	}
	head := 0
	for p.headLen < n && p.elems[p.headLen].op == opLiteral {
		head += utf8.RuneLen(p.elems[p.headLen].r)
		p.headLen++
	}
	p.head = s[:head]
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.src }

// IsLiteral reports whether the pattern matches exactly one value (itself).
func (p *Pattern) IsLiteral() bool { return p.shape == shapeLiteral }

// Match reports whether the pattern matches the whole of v.
func (p *Pattern) Match(v string) bool {
	switch p.shape {
	case shapeLiteral:
		return v == p.lit
	case shapePrefixAny:
		return strings.HasPrefix(v, p.lit)
	case shapePrefixDir:
		return v == p.lit || strings.HasPrefix(v, p.litSlash)
	case shapePrefixSegment:
		return strings.HasPrefix(v, p.lit) && strings.IndexByte(v[len(p.lit):], '/') < 0
	case shapeSuffixAny:
		return strings.HasSuffix(v, p.lit)
	}
	return p.matchNFA(v)
}

type stateSet [maxPatternWords]uint64

// add puts state i and the states reachable from it without reading a
// character into set: a "*" or "**" may match nothing, and the "/" of a
// trailing "/**" may be skipped together with its "**".
func (p *Pattern) add(set *stateSet, i int) {
	for {
		set[i>>6] |= 1 << (i & 63)
		if i >= len(p.elems) {
			return
		}
		switch p.elems[i].op {
		case opStar, opAny:
			i++
		case opDirSlash:
			i += 2
		default:
			return
		}
	}
}

func (p *Pattern) matchNFA(v string) bool {
	if !strings.HasPrefix(v, p.head) {
		return false
	}
	var set1, set2 stateSet
	cur, next := &set1, &set2
	words := (len(p.elems) + 1 + 63) >> 6
	p.add(cur, p.headLen)
	for i := len(p.head); i < len(v); {
		r, w := rune(v[i]), 1
		if r >= utf8.RuneSelf {
			r, w = utf8.DecodeRuneInString(v[i:])
			if r == utf8.RuneError && w == 1 {
				r = -1 // an invalid byte: not "/", equal to no literal
			}
		}
		i += w
		live := false
		for k := 0; k < words; k++ {
			next[k] = 0
		}
		for k := 0; k < words; k++ {
			for word := cur[k]; word != 0; word &= word - 1 {
				s := k<<6 | bits.TrailingZeros64(word)
				if s >= len(p.elems) {
					continue
				}
				e := p.elems[s]
				switch e.op {
				case opLiteral, opDirSlash:
					if r == e.r {
						p.add(next, s+1)
						live = true
					}
				case opOne:
					if r != '/' {
						p.add(next, s+1)
						live = true
					}
				case opStar:
					if r != '/' {
						p.add(next, s)
						live = true
					}
				case opAny:
					p.add(next, s)
					live = true
				}
			}
		}
		if !live {
			return false
		}
		cur, next = next, cur
	}
	end := len(p.elems)
	return cur[end>>6]&(1<<(end&63)) != 0
}
