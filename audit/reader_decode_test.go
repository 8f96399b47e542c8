package audit

import (
	"bytes"
	"encoding/json"
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
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast, ref Entry
		errFast := decodeEntry(line, &fast)
		errRef := json.Unmarshal(line, &ref)
		if (errFast == nil) != (errRef == nil) {
			t.Fatalf("%q: fast %v, encoding/json %v", line, errFast, errRef)
		}
		if errRef != nil {
			return
		}
		if !fast.Time.Equal(ref.Time) {
			t.Fatalf("%q: time %v, want %v", line, fast.Time, ref.Time)
		}
		fast.Time = ref.Time
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("%q:\nfast %+v\nref  %+v", line, fast, ref)
		}
	})
}
