package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"reflect"
	"strings"
	"testing"
)

// decodeEntry reads what encoding/json reads, or fails where it fails.
func FuzzDecodeEntry(f *testing.F) {
	var b bytes.Buffer
	l := NewLogger(&b)
	for i := range 40 {
		l.Write(genRecord(i))
	}
	l.Write(fullRecord())
	hostile := fullRecord()
	hostile.Reason = "line1\nline2\r\"}{\"type\":\"audit\"\x00\x1b[31m\u2028 caf\xc3 \xff"
	hostile.Path = `/containers/a"b\c/json`
	l.Write(hostile)
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		f.Add([]byte(line))
	}
	for _, s := range []string{`{}`, `{"type":"audit","status":01}`, `{"type":"audit","status":1.5}`, `{"Type":"audit"}`,
		`{"caller":null}`, `{"facts":[]}`, `{"type":"audit"} x`, `{"seq":-1}`, `{"caller":{"pid":4294967296}}`,
		`{"time":"2026-11-26T18:04:05Z","duration_ms":1e3}`, `{"type":"audit","x":1}`, `{"status":+1}`, `{"status":-0}`, `{"duration_ms":0.}`, `{"duration_ms":1e}`, `{"duration_ms":-}`, `{"duration_ms":1.5e+3}`,
		`{"caller":{"uid":4294967295,"cert":"ci","cert_sans":["cert-dns:runner.example.com","cert-uri:spiffe://example.com/ci"]}}`, `{"caller":{"cert_sans":[]}}`, `{"caller":{"cert_sans":null}}`, `{"rewrites":[]}`, `{"rewrites":null}`, `{"rewrites":["a",1]}`,
		`{"caller":{"gids":[1000,998]}}`, `{"caller":{"gids":[]}}`, `{"caller":{"gids":null}}`, `{"caller":{"gids":[4294967296]}}`, `{"caller":{"gids":[-1]}}`, `{"caller":{"gids":["1"]}}`,
		`{"caller":{"creators":[["user:a","*"],[]]}}`, `{"caller":{"creators":[]}}`, `{"caller":{"creators":null}}`, `{"caller":{"creators":[null]}}`, `{"caller":{"creators":[["a",1]]}}`, `{"caller":{"creators":["a"]}}`} {
		f.Add([]byte(s))
	}
	// One symbol table for all the inputs, as a query has for all the
	// lines of a trail: its strings, made from earlier inputs, must never
	// show in a later one's record unless its bytes are there.
	var syms symbols
	f.Fuzz(func(t *testing.T, line []byte) {
		var ref Entry
		errRef := json.Unmarshal(line, &ref)
		for _, dec := range []struct {
			name   string
			decode func([]byte, *Entry) error
		}{
			{"fast", decodeEntry},
			{"fast with symbols", func(line []byte, e *Entry) error { return decodeEntrySyms(line, e, &syms) }},
		} {
			var fast Entry
			errFast := dec.decode(line, &fast)
			if (errFast == nil) != (errRef == nil) {
				t.Fatalf("%q: %s %v, encoding/json %v", line, dec.name, errFast, errRef)
			}
			if errRef != nil {
				continue
			}
			if !fast.Time.Equal(ref.Time) {
				t.Fatalf("%q: %s: time %v, want %v", line, dec.name, fast.Time, ref.Time)
			}
			fast.Time = ref.Time
			if !reflect.DeepEqual(fast, ref) {
				t.Fatalf("%q:\n%s %+v\nref  %+v", line, dec.name, fast, ref)
			}
		}
	})
}

// The symbol table keeps at most maxSymbols strings of at most
// maxSymbolLen bytes, and gives every string back as it was, kept or not.
func TestSymbolsAreBounded(t *testing.T) {
	var syms symbols
	long := strings.Repeat("r", maxSymbolLen+1)
	if got := syms.get([]byte(long)); got != long || len(syms.m) != 0 {
		t.Fatalf("a %d-byte string: got it back %v, table holds %d", len(long), got == long, len(syms.m))
	}
	for i := range maxSymbols + 100 {
		v := fmt.Sprint("user-", i)
		b := []byte(v)
		got := syms.get(b)
		b[0] = 'X' // the line's buffer is reused for the next line
		if got != v || syms.get([]byte(v)) != v {
			t.Fatalf("got %q, want %q", got, v)
		}
	}
	if len(syms.m) != maxSymbols {
		t.Fatalf("table holds %d strings, want the bound, %d", len(syms.m), maxSymbols)
	}
}

// notPlain must mark the first byte rawStr stops at, wherever it is in the
// word and whatever plain text or other stops come after it.
func TestNotPlainMarksTheFirstStop(t *testing.T) {
	stop := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	for pos := range 8 {
		for c := range 256 {
			for _, after := range []byte{'a', 0x00, 0xff, '"', 0x1f, 0x20, 0x7f} {
				var w [8]byte
				for i := range w {
					w[i] = 'x'
					if i > pos {
						w[i] = after
					}
				}
				w[pos] = byte(c)
				want := 8
				for i, b := range w {
					if stop(b) {
						want = i
						break
					}
				}
				m := notPlain(binary.LittleEndian.Uint64(w[:]))
				got := 8
				if m != 0 {
					got = bits.TrailingZeros64(m) / 8
				}
				if got != want {
					t.Fatalf("word %q: first stop at %d, want %d", w, got, want)
				}
			}
		}
	}
}
