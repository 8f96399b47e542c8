package audit

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTrail writes n records through a Logger opened on path (so with a
// segment header and the chain recovered from what path already holds).
func writeTrail(t *testing.T, path string, n int, o Options) {
	t.Helper()
	l, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := fullRecord()
		r.RequestID = fmt.Sprintf("%s-%d", filepath.Base(path), i)
		l.Write(r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(b), "\n")
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustVerify(t *testing.T, o VerifyOptions, paths ...string) *VerifyResult {
	t.Helper()
	res, err := VerifyFiles(paths, o)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return res
}

func mustFail(t *testing.T, o VerifyOptions, wantLine int, wantWhy string, paths ...string) {
	t.Helper()
	_, err := VerifyFiles(paths, o)
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("verify: %v, want a VerifyError", err)
	}
	if ve.Line != wantLine || !strings.Contains(ve.Reason, wantWhy) {
		t.Fatalf("verify: %v; want line %d and %q", ve, wantLine, wantWhy)
	}
}

func TestChainVerifiesAcrossRestartsAndFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	writeTrail(t, a, 5, Options{})
	writeTrail(t, a, 3, Options{}) // restart: recovers seq 5 and its hash
	res := mustVerify(t, VerifyOptions{}, a)
	if res.Records != 8 || res.LastSeq != 8 || res.Segments != 2 || res.StartHash != GenesisHash {
		t.Fatalf("one file: %+v", res)
	}
	lines := readLines(t, a)
	if !strings.Contains(lines[6], `"reason":"restart"`) || !strings.Contains(lines[6], `"seq":5,`) {
		t.Fatalf("restart header %s", lines[6])
	}

	// A second file that goes on from the first (as rotation does): the
	// header carries the first file's final hash.
	tail, err := recoverTail(a)
	if err != nil || !tail.found || tail.seq != 8 || tail.hash != res.LastHash {
		t.Fatalf("tail %+v, %v", tail, err)
	}
	f, err := os.Create(b)
	if err != nil {
		t.Fatal(err)
	}
	cw := newChainWriter(f, Options{})
	tail.torn = false
	if err := cw.startSegment(tail); err != nil {
		t.Fatal(err)
	}
	writeVia(cw, 4)
	f.Close()
	res2 := mustVerify(t, VerifyOptions{}, a, b)
	if res2.Records != 12 || res2.LastSeq != 12 || res2.Segments != 3 {
		t.Fatalf("two files: %+v", res2)
	}
	// The second file alone verifies too, continuing from the first's end.
	res3 := mustVerify(t, VerifyOptions{}, b)
	if res3.StartSeq != 8 || res3.StartHash != res.LastHash || res3.FirstSeq != 9 {
		t.Fatalf("second file alone: %+v", res3)
	}
	// Out of order, or with the first file missing a record, the link breaks.
	mustFail(t, VerifyOptions{}, 1, "broken link", b, a)
	mustFail(t, VerifyOptions{}, 1, "broken link", a, a)
	// Gzipped (rotated and compressed) files verify the same.
	gz := filepath.Join(dir, "a.log.gz")
	gzipFileTo(t, a, gz)
	mustVerify(t, VerifyOptions{}, gz, b)
	// The anchor: the trail must reach a known record.
	mustVerify(t, VerifyOptions{AnchorSeq: 12, AnchorHash: res2.LastHash}, a, b)
	mustFail(t, VerifyOptions{AnchorSeq: 12, AnchorHash: res2.LastHash}, 0, "before the anchor", a)
	mustFail(t, VerifyOptions{AnchorSeq: 3, AnchorHash: res2.LastHash}, 4, "anchor mismatch", a)
}

// writeVia writes n records through a chain writer the way the Logger does.
func writeVia(cw *chainWriter, n int) {
	l := NewLogger(nil)
	l.zl = l.zl.Output(cw)
	for i := range n {
		r := fullRecord()
		r.RequestID = fmt.Sprintf("via-%d", i)
		l.Write(r)
	}
}

func gzipFileTo(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	if err := os.WriteFile(dst, z.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Each way of tampering with a trail is found, at its line.
func TestVerifyDetectsTampering(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.log")
	writeTrail(t, orig, 10, Options{})
	lines := readLines(t, orig) // lines[0] is the header, lines[i] record seq i; the last element is ""
	res := mustVerify(t, VerifyOptions{}, orig)

	edit := func(name string, f func([]string) []string) string {
		p := filepath.Join(dir, name)
		writeLines(t, p, f(append([]string(nil), lines...)))
		return p
	}
	// Delete record seq 4 (line 5): record 5 (now line 5) follows seq 3.
	mustFail(t, VerifyOptions{}, 5, "seq gap", edit("delete", func(l []string) []string { return append(l[:4], l[5:]...) }))
	// Insert a copy of record 2 after record 6.
	mustFail(t, VerifyOptions{}, 8, "seq repeat", edit("insert", func(l []string) []string {
		return append(l[:7], append([]string{l[2]}, l[7:]...)...)
	}))
	// Modify one byte of a field of record 7 (line 8).
	mustFail(t, VerifyOptions{}, 8, "hash mismatch", edit("modify", func(l []string) []string {
		l[7] = strings.Replace(l[7], `"status":403`, `"status":200`, 1)
		return l
	}))
	mustFail(t, VerifyOptions{}, 3, "hash mismatch", edit("modify-user", func(l []string) []string {
		l[2] = strings.Replace(l[2], `"user":"jenkins"`, `"user":"jenkinz"`, 1)
		return l
	}))
	// Modify the hash itself: that record fails.
	mustFail(t, VerifyOptions{}, 4, "hash mismatch", edit("modify-hash", func(l []string) []string {
		i := strings.LastIndex(l[3], `"}`) - 1
		c := byte('0')
		if l[3][i] == '0' {
			c = '1'
		}
		l[3] = l[3][:i] + string(c) + l[3][i+1:]
		return l
	}))
	// Modify a seq and recompute nothing: seq check.
	mustFail(t, VerifyOptions{}, 6, "seq", edit("modify-seq", func(l []string) []string {
		l[5] = strings.Replace(l[5], `"seq":5,`, `"seq":6,`, 1)
		return l
	}))
	// Reorder records 3 and 4.
	mustFail(t, VerifyOptions{}, 4, "seq gap", edit("reorder", func(l []string) []string {
		l[3], l[4] = l[4], l[3]
		return l
	}))
	// Truncate: records removed from the end are found with an anchor.
	trunc := edit("truncate", func(l []string) []string { return l[:8] })
	if r := mustVerify(t, VerifyOptions{}, trunc); r.LastSeq != 7 {
		t.Fatalf("truncated: %+v", r)
	}
	mustFail(t, VerifyOptions{AnchorSeq: 10, AnchorHash: res.LastHash}, 0, "before the anchor", trunc)
	// Truncate the head: the first record has no header and seq 3.
	mustFail(t, VerifyOptions{}, 1, "records before it are missing", edit("truncate-head", func(l []string) []string { return l[3:] }))
	// Remove the header: the first record does not chain to genesis.
	mustFail(t, VerifyOptions{}, 1, "hash mismatch", edit("no-header", func(l []string) []string { return l[1:] }))
	// A torn last line.
	mustFail(t, VerifyOptions{}, 11, "torn last line", edit("torn", func(l []string) []string {
		l[10] = l[10][:len(l[10])/2]
		return l
	}))
	// A line that is not a record.
	mustFail(t, VerifyOptions{}, 4, "unparsable", edit("garbage", func(l []string) []string {
		return append(l[:3], append([]string{"hello\n"}, l[3:]...)...)
	}))
	// A "\r" added at a line's end is a change (lines split on "\n" only).
	mustFail(t, VerifyOptions{}, 2, "", edit("cr", func(l []string) []string {
		l[1] = strings.TrimSuffix(l[1], "\n") + "\r\n"
		return l
	}))
}

// A restart after a torn write never changes the file: the header starts a
// new line, says the line before was torn, and chains to the last whole one.
func TestRestartAfterTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	writeTrail(t, path, 3, Options{})
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"type":"audit","time":"2026-`)
	f.Close()
	torn, _ := os.ReadFile(path)
	writeTrail(t, path, 2, Options{})
	after, _ := os.ReadFile(path)
	if !bytes.HasPrefix(after, torn) {
		t.Fatal("the restart changed what the file held")
	}
	lines := readLines(t, path)
	if !strings.Contains(lines[5], `"torn":true`) || !strings.Contains(lines[5], `"seq":3,`) {
		t.Fatalf("header after the torn line: %s", lines[5])
	}
	res := mustVerify(t, VerifyOptions{}, path)
	if res.Records != 5 || res.LastSeq != 5 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], ":5: torn line") {
		t.Fatalf("%+v", res)
	}
	// Without the acknowledging header, the torn line is an error.
	lines = append(lines[:5:5], lines[6:]...) // drop the header: record seq 4 follows the torn line
	bad := filepath.Join(t.TempDir(), "b.log")
	writeLines(t, bad, lines)
	mustFail(t, VerifyOptions{}, 5, "unparsable", bad)
}

// failingWriter writes the first `ok` bytes of a Write and fails it.
type failingWriter struct {
	buf  bytes.Buffer
	fail int // bytes to write before failing; < 0: do not fail
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.fail < 0 {
		return w.buf.Write(p)
	}
	n := min(w.fail, len(p))
	w.buf.Write(p[:n])
	w.fail = -1
	return n, errors.New("disk full")
}

func TestWriteErrorsKeepTheChainVerifiable(t *testing.T) {
	for _, cut := range []int{0, 1, 100} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			w := &failingWriter{fail: -1}
			cw := newChainWriter(w, Options{})
			if err := cw.startSegment(chainTail{}); err != nil {
				t.Fatal(err)
			}
			writeVia(cw, 2)
			w.fail = cut
			writeVia(cw, 3) // the first of these fails
			path := filepath.Join(t.TempDir(), "a.log")
			os.WriteFile(path, w.buf.Bytes(), 0o600)
			res := mustVerify(t, VerifyOptions{}, path)
			if res.Records != 4 || res.LastSeq != 4 || (cut > 0) != (len(res.Warnings) == 1) {
				t.Fatalf("%+v\n%s", res, w.buf.Bytes())
			}
		})
	}
}

func TestHMACChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	key := []byte("0123456789abcdef0123456789abcdef")
	writeTrail(t, path, 3, Options{HMACKey: key})
	writeTrail(t, path, 2, Options{HMACKey: key})
	if !strings.Contains(readLines(t, path)[0], `"alg":"hmac-sha256"`) {
		t.Fatal("header does not name HMAC")
	}
	if r := mustVerify(t, VerifyOptions{HMACKey: key}, path); r.Records != 5 {
		t.Fatalf("%+v", r)
	}
	mustFail(t, VerifyOptions{}, 1, "give --hmac-key", path)
	mustFail(t, VerifyOptions{HMACKey: []byte("wrong key")}, 1, "hash mismatch", path)

	// A plain SHA-256 chain is refused when a key is given: anyone could
	// have rewritten it.
	plain := filepath.Join(t.TempDir(), "p.log")
	writeTrail(t, plain, 1, Options{})
	mustFail(t, VerifyOptions{HMACKey: key}, 1, "plain SHA-256", plain)
}

func TestParseAnchor(t *testing.T) {
	h := strings.Repeat("ab", 32)
	if s, got, err := ParseAnchor("12:" + strings.ToUpper(h)); err != nil || s != 12 || got != h {
		t.Fatalf("%d %s %v", s, got, err)
	}
	for _, bad := range []string{"", "12", "0:" + h, "x:" + h, "12:abc", "12:" + strings.Repeat("zz", 32)} {
		if _, _, err := ParseAnchor(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
