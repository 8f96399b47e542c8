package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// decodeEntry reads a record line into e. Query reads every line of
// trails of millions of records, and encoding/json takes ~6 µs a record:
// this decoder knows the record's fields and takes a fraction of that. On
// anything it does not expect (an escape, an unknown shape) it leaves the
// line to encoding/json, whose result is the reference.
func decodeEntry(line []byte, e *Entry) error {
	return decodeEntryFrom(fastDec{b: line}, e)
}

// decodeEntrySyms is decodeEntry with the repeating strings taken from
// syms, for a reader of many records.
func decodeEntrySyms(line []byte, e *Entry, syms *symbols) error {
	return decodeEntryFrom(fastDec{b: line, table: syms}, e)
}

// decodeEntryShared is decodeEntry with the record's strings sharing the
// bytes of line, which must never change again: ReadTrail's batches,
// whose records are most of what a replay allocates otherwise.
func decodeEntryShared(line []byte, e *Entry) error {
	return decodeEntryFrom(fastDec{b: line, share: true}, e)
}

func decodeEntryFrom(d fastDec, e *Entry) error {
	*e = Entry{}
	if d.entry(e) {
		return nil
	}
	*e = Entry{}
	return json.Unmarshal(d.b, e)
}

type fastDec struct {
	b []byte
	i int
	// share makes strings that share b's bytes rather than copy them.
	share bool
	// table, when set, gives the repeating strings (sym).
	table *symbols
}

func (d *fastDec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *fastDec) eat(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// rawStr returns the bytes of a string without escapes, or false.
func (d *fastDec) rawStr() ([]byte, bool) {
	if !d.eat('"') {
		return nil, false
	}
	start := d.i
	ascii := true
	for {
		// Eight bytes at a time up to the first that is not plain
		// ASCII text: most of a record is in its strings, and a query
		// reads every one of them.
		for d.i+8 <= len(d.b) {
			if m := notPlain(binary.LittleEndian.Uint64(d.b[d.i:])); m != 0 {
				d.i += bits.TrailingZeros64(m) / 8
				break
			}
			d.i += 8
		}
		if d.i >= len(d.b) {
			return nil, false
		}
		switch c := d.b[d.i]; {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
		d.i++
	}
}

// notPlain has the high bit set in each byte of x (little-endian) that
// is a quote, a backslash, a control byte or not ASCII. A borrow can set
// it in a byte above one of those too, never below: the lowest bit set
// marks the first such byte.
func notPlain(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	zero := func(v uint64) uint64 { return (v - ones) &^ v & highs }
	below := (x - ones*0x20) &^ x & highs
	return zero(quote) | zero(backslash) | below | x&highs
}

func (d *fastDec) str() (string, bool) {
	s, ok := d.rawStr()
	if d.share && len(s) > 0 {
		return unsafe.String(&s[0], len(s)), ok
	}
	return string(s), ok
}

// sym is str for the strings that repeat from record to record: a
// caller's fields, actions, decisions, fact kinds and rules, reasons. With
// a symbol table (a query's), each is made once per distinct value rather
// than once per record.
func (d *fastDec) sym() (string, bool) {
	if d.table == nil || d.share {
		return d.str()
	}
	s, ok := d.rawStr()
	return d.table.get(s), ok
}

// symbols maps the bytes of a repeating string to the one string made of
// them. It is bounded, in entries and in their length: a trail whose
// "repeating" strings are all different costs a query no more than it did
// without it.
type symbols struct{ m map[string]string }

const (
	maxSymbols   = 4096
	maxSymbolLen = 256
)

func (t *symbols) get(b []byte) string {
	if s, ok := t.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(b) <= maxSymbolLen && len(t.m) < maxSymbols {
		if t.m == nil {
			t.m = make(map[string]string)
		}
		t.m[s] = s
	}
	return s
}

func (d *fastDec) num() ([]byte, bool) {
	d.ws()
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			d.i++
			continue
		}
		break
	}
	n := d.b[start:d.i]
	return n, jsonNumber(n) // if not, encoding/json decides
}

// jsonNumber says whether n is a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(n []byte) bool {
	i := 0
	digits := func() int {
		s := i
		for i < len(n) && n[i] >= '0' && n[i] <= '9' {
			i++
		}
		return i - s
	}
	if i < len(n) && n[i] == '-' {
		i++
	}
	if i < len(n) && n[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(n) && n[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(n) && (n[i] == 'e' || n[i] == 'E') {
		i++
		if i < len(n) && (n[i] == '+' || n[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(n)
}

func (d *fastDec) boolean() (bool, bool) {
	d.ws()
	switch {
	case bytes.HasPrefix(d.b[d.i:], []byte("true")):
		d.i += 4
		return true, true
	case bytes.HasPrefix(d.b[d.i:], []byte("false")):
		d.i += 5
		return false, true
	}
	return false, false
}

func (d *fastDec) int64() (int64, bool) {
	n, ok := d.num()
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	return v, err == nil
}

func (d *fastDec) uint(bits int) (uint64, bool) {
	n, ok := d.num()
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(string(n), 10, bits)
	return v, err == nil
}

// object calls field for each key of an object; field reads the value.
func (d *fastDec) object(field func(key []byte) bool) bool {
	if !d.eat('{') {
		return false
	}
	if d.eat('}') {
		return true
	}
	for {
		k, ok := d.rawStr()
		if !ok || !d.eat(':') || !field(k) {
			return false
		}
		if d.eat(',') {
			continue
		}
		return d.eat('}')
	}
}

func (d *fastDec) entry(e *Entry) bool {
	ok := d.object(func(k []byte) bool {
		var ok bool
		switch string(k) {
		case "type":
			e.Type, ok = d.sym()
		case "time":
			var s []byte
			if s, ok = d.rawStr(); ok {
				t, err := time.Parse(time.RFC3339Nano, string(s))
				e.Time, ok = t, err == nil
			}
		case "request_id":
			e.RequestID, ok = d.str()
		case "phase":
			e.Phase, ok = d.sym()
		case "caller":
			e.Caller = &Caller{}
			ok = d.caller(e.Caller)
		case "method":
			e.Method, ok = d.sym()
		case "path":
			e.Path, ok = d.str()
		case "api_version":
			e.APIVersion, ok = d.sym()
		case "action":
			e.Action, ok = d.sym()
		case "facts":
			ok = d.facts(&e.Facts)
		case "decision":
			e.Decision, ok = d.sym()
		case "would_deny":
			e.WouldDeny, ok = d.boolean()
		case "reason":
			e.Reason, ok = d.sym()
		case "outcome":
			e.Outcome, ok = d.sym()
		case "status":
			var n int64
			n, ok = d.int64()
			e.Status = int(n)
		case "bytes_in":
			e.BytesIn, ok = d.int64()
		case "bytes_out":
			e.BytesOut, ok = d.int64()
		case "duration_ms":
			var n []byte
			if n, ok = d.num(); ok {
				f, err := strconv.ParseFloat(string(n), 64)
				e.DurationMS, ok = f, err == nil
			}
		case "hijacked":
			e.Hijacked, ok = d.boolean()
		case "object_id":
			e.ObjectID, ok = d.str()
		case "forwarded":
			e.Forwarded, ok = d.str()
		case "rewrites":
			return d.strs(&e.Rewrites)
		case "exit_code":
			var n int64
			if n, ok = d.int64(); ok {
				c := int(n)
				e.ExitCode = &c
			}
		case "seq":
			e.Seq, ok = d.uint(64)
		case "hash":
			_, ok = d.rawStr()
		}
		return ok // an unknown key: encoding/json decides
	})
	d.ws()
	return ok && d.i == len(d.b)
}

func (d *fastDec) caller(c *Caller) bool {
	return d.object(func(k []byte) bool {
		var ok bool
		var n uint64
		switch string(k) {
		case "uid":
			n, ok = d.uint(32)
			c.UID = uint32(n)
		case "gid":
			n, ok = d.uint(32)
			c.GID = uint32(n)
		case "pid":
			var v int64
			v, ok = d.int64()
			c.PID = int32(v)
			ok = ok && int64(c.PID) == v
		case "user":
			c.User, ok = d.sym()
		case "groups":
			return d.syms(&c.Groups)
		case "gids":
			return d.uint32s(&c.GIDs)
		case "cert_sans":
			return d.strs(&c.CertSANs)
		case "exe":
			c.Exe, ok = d.sym()
		case "unit":
			c.Unit, ok = d.sym()
		case "container":
			c.Container, ok = d.sym()
		case "container_name":
			c.ContainerName, ok = d.sym()
		case "subjects":
			return d.syms(&c.Subjects)
		case "creators":
			return d.strLists(&c.Creators)
		case "acts_for":
			c.ActsFor, ok = d.sym()
		case "cert":
			c.Cert, ok = d.sym()
		}
		return ok
	})
}

// strLists reads a JSON array of arrays of strings (an empty one as an
// empty slice).
func (d *fastDec) strLists(out *[][]string) bool {
	if !d.eat('[') {
		return false
	}
	*out = [][]string{}
	if d.eat(']') {
		return true
	}
	for {
		var l []string
		if !d.strs(&l) {
			return false
		}
		*out = append(*out, l)
		if d.eat(',') {
			continue
		}
		return d.eat(']')
	}
}

// uint32s reads a JSON array of unsigned 32-bit numbers.
func (d *fastDec) uint32s(out *[]uint32) bool {
	if !d.eat('[') {
		return false
	}
	*out = []uint32{}
	if d.eat(']') {
		return true
	}
	for {
		n, ok := d.uint(32)
		if !ok {
			return false
		}
		*out = append(*out, uint32(n))
		if d.eat(']') {
			return true
		}
		if !d.eat(',') {
			return false
		}
	}
}

// strs reads a JSON array of strings (an empty one as an empty slice).
func (d *fastDec) strs(out *[]string) bool { return d.strArray(out, (*fastDec).str) }

// syms is strs for arrays whose strings repeat from record to record.
func (d *fastDec) syms(out *[]string) bool { return d.strArray(out, (*fastDec).sym) }

func (d *fastDec) strArray(out *[]string, str func(*fastDec) (string, bool)) bool {
	if !d.eat('[') {
		return false
	}
	*out = []string{}
	if d.eat(']') {
		return true
	}
	for {
		g, ok := str(d)
		if !ok {
			return false
		}
		*out = append(*out, g)
		if d.eat(',') {
			continue
		}
		return d.eat(']')
	}
}

func (d *fastDec) facts(fs *[]FactResult) bool {
	if !d.eat('[') {
		return false
	}
	*fs = []FactResult{}
	if d.eat(']') {
		return true
	}
	for {
		var f FactResult
		if !d.object(func(k []byte) bool {
			var ok bool
			switch string(k) {
			case "kind":
				f.Kind, ok = d.sym()
			case "value":
				f.Value, ok = d.sym()
			case "decision":
				f.Decision, ok = d.sym()
			case "rule":
				f.Rule, ok = d.sym()
			}
			return ok
		}) {
			return false
		}
		*fs = append(*fs, f)
		if d.eat(',') {
			continue
		}
		return d.eat(']')
	}
}
