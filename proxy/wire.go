package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Limits bound what one client may make dockgate hold in memory.
type Limits struct {
	// MaxRequestLine bounds the request line (method, target, version).
	MaxRequestLine int
	// MaxHeaderBytes bounds the whole request head, request line included.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a body that must be read whole to be judged.
	MaxBodyBytes int64
	// MaxSpoolBytes bounds a body spooled to a temporary file to be judged
	// (image load, build, plugin create); 0 means DefaultMaxSpoolBytes.
	MaxSpoolBytes int64
	// SpoolDir is where spooled bodies go; "" means os.TempDir().
	SpoolDir string
}

// DefaultLimits follow dockerd's own: Go's net/http accepts 1 MiB of header,
// and docker clients send long filter queries.
func DefaultLimits() Limits {
	return Limits{MaxRequestLine: 256 << 10, MaxHeaderBytes: 1 << 20, MaxBodyBytes: 2 << 20}
}

// wireError is a request dockgate refuses to parse; it is answered with
// Status and never forwarded.
type wireError struct {
	Status int
	Msg    string
}

func (e *wireError) Error() string { return e.Msg }

// errHTTP2 is the request line of an HTTP/2 client with prior knowledge
// (RFC 9113 §3.4): dockgate judges HTTP/1.1 only. On a connection's first
// request it is answered in HTTP/2 (http2.go).
var errHTTP2 = badRequest("HTTP/2 is not supported on this socket; use HTTP/1.1")

func badRequest(format string, args ...any) error {
	return &wireError{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// headerField is one header line as the client spelled it, with its
// name's canonical form (the Header key).
type headerField struct {
	Name, Value string
	key         string
}

// requestHead is a parsed request head. The parser is stricter than Go's
// net/http on purpose: anything two HTTP parsers could read differently
// (request smuggling, CVE-2024-41110) is refused rather than normalised.
type requestHead struct {
	Method string
	Target string
	URL    *url.URL
	// Minor is the HTTP/1.x minor version.
	Minor int
	// Fields are the header lines in order, for forwarding as sent.
	Fields []headerField
	// Header is the same headers keyed canonically, for lookups.
	Header http.Header
	// ContentLength is the body length, 0 when there is none and -1 when
	// the body is chunked.
	ContentLength int64
	// HasContentLength says the client sent a Content-Length header.
	HasContentLength bool
	// Close says the client wants the connection closed after this request.
	Close bool
	// Upgrade says the client asked to switch protocols (Connection: Upgrade).
	Upgrade bool
	// ExpectContinue says the client waits for "100 Continue" before the body.
	ExpectContinue bool
	// Size is the number of bytes of the head on the wire.
	Size int
	// bodyRead says reading the body has begun: where it ends can no
	// longer be told from its framing alone (see linger).
	bodyRead bool
	// spool holds the whole body when it was spooled to be judged
	// (spoolBody); it is forwarded from there, spoolSize bytes.
	spool     *os.File
	spoolSize int64
	// filter rewrites a 200 response's body before the client gets it
	// (authz.Decision.FilterResponse); nil for almost every request.
	filter func([]byte) ([]byte, error)
	// verify checks dockerd's answer before the client gets any of it
	// (authz.Decision.Verify); nil for almost every request.
	verify func(ctx context.Context, status int, body []byte) error
	// fieldsBuf and valuesBuf hold Fields and the first value of each
	// Header entry (values) for a head of common size, so that parsing
	// it takes no allocation of its own for them.
	fieldsBuf [8]headerField
	valuesBuf [8]string
	values    []string
	// lines, when set, follows the response's progress stream line by
	// line to end it with what dockgate adds (progress_lines.go): a
	// BuildKit /build's refusal on its session, a pinned pull's tag.
	lines lineGuard
}

// reset makes h a head with nothing in it, keeping its header map (empty)
// for the next head to be parsed into.
func (h *requestHead) reset() {
	hdr := h.Header
	clear(hdr)
	*h = requestHead{Header: hdr}
}

func (h *requestHead) chunked() bool { return h.ContentLength < 0 }

func (h *requestHead) hasBody() bool { return h.ContentLength != 0 }

// readLine reads one CRLF-terminated line of at most max bytes (CRLF
// included). tooLong is the status to answer when the line is longer.
func readLine(br *bufio.Reader, max int, tooLong int, what string) ([]byte, error) {
	frag, err := br.ReadSlice('\n')
	if err == nil && len(frag) <= max {
		// The common case: the line is a slice of the reader's buffer,
		// valid until the next read; the callers copy what they keep.
		return crlfLine(frag, what)
	}
	var line []byte
	for {
		if len(line)+len(frag) > max {
			return nil, &wireError{Status: tooLong, Msg: fmt.Sprintf("%s longer than %d bytes", what, max)}
		}
		line = append(line, frag...)
		if err == nil {
			return crlfLine(line, what)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		frag, err = br.ReadSlice('\n')
	}
}

// crlfLine is line without its CRLF, which it must end in.
func crlfLine(line []byte, what string) ([]byte, error) {
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, badRequest("%s ends in a bare LF; HTTP requires CRLF", what)
	}
	return line[:len(line)-2], nil
}

// readRequestHead reads and validates one request head. When the request
// line was read but the rest was not, the partial head comes back with the
// error, so that the refusal's audit record can name method and path.
func readRequestHead(br *bufio.Reader, lim Limits) (*requestHead, error) {
	return readNextRequestHead(br, lim, nil)
}

// headCache is what a client connection keeps of its previous request
// head: the strings of its lines, which a client sends again byte for byte
// (the request line of a poll, Host, User-Agent), and what its request
// line was parsed into; lines no longer than maxKeptLine only. Strings
// cannot change, and nothing changes a parsed URL, so that the next head
// may share them. It also holds the storage the next head is parsed into:
// a connection reads its next head only once the request before it is
// over (its record written, the goroutines that read its head done), so
// a head is valid until the next readNextRequestHead with the same cache.
type headCache struct {
	line           string
	method, target string
	minor          int
	url            *url.URL
	fields         keptLines
	head           requestHead
}

// readNextRequestHead is readRequestHead on a connection whose previous
// head is in prev (nil: none kept).
func readNextRequestHead(br *bufio.Reader, lim Limits, prev *headCache) (*requestHead, error) {
	line, err := readLine(br, min(lim.MaxRequestLine, lim.MaxHeaderBytes), http.StatusRequestURITooLong, "request line")
	if err != nil {
		return nil, err
	}
	var h *requestHead
	if prev != nil {
		h = &prev.head
		if h.Size != 0 {
			// Not emptied since its last head (forgetRequest does it
			// on a connection).
			h.reset()
		}
	} else {
		h = new(requestHead)
	}
	if h.Header == nil {
		h.Header = make(http.Header, 8)
	}
	h.Size = len(line) + 2
	h.Fields, h.values = h.fieldsBuf[:0], h.valuesBuf[:0]
	switch {
	case prev != nil && prev.url != nil && prev.line == string(line):
		h.Method, h.Target, h.URL, h.Minor = prev.method, prev.target, prev.url, prev.minor
	case prev != nil:
		ls := string(line)
		prev.line, prev.url = "", nil
		if err := h.parseRequestLine(ls); err != nil {
			return nil, err
		}
		if len(line) <= maxKeptLine {
			prev.line, prev.method, prev.target, prev.minor, prev.url = ls, h.Method, h.Target, h.Minor, h.URL
		}
	default:
		if err := h.parseRequestLine(string(line)); err != nil {
			return nil, err
		}
	}
	var fields *keptLines
	if prev != nil {
		fields = &prev.fields
	}
	for i := 0; ; i++ {
		line, err := readLine(br, lim.MaxHeaderBytes-h.Size, http.StatusRequestHeaderFieldsTooLarge, "request header")
		if err != nil {
			var we *wireError
			if errors.As(err, &we) && we.Status == http.StatusRequestHeaderFieldsTooLarge {
				we.Msg = fmt.Sprintf("request head larger than %d bytes", lim.MaxHeaderBytes)
			}
			return h, err
		}
		h.Size += len(line) + 2
		if len(line) == 0 {
			break
		}
		if err := h.addField(line, fields.reuse(i, line)); err != nil {
			return h, err
		}
	}
	return h, h.parseFraming()
}

func (h *requestHead) parseRequestLine(line string) error {
	if line == "PRI * HTTP/2.0" {
		return errHTTP2
	}
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || strings.Contains(proto, " ") {
		return badRequest("malformed request line %q", truncate(line, 80))
	}
	if !isToken(method) {
		return badRequest("malformed method %q", truncate(method, 40))
	}
	switch proto {
	case "HTTP/1.1":
		h.Minor = 1
	case "HTTP/1.0":
		h.Minor = 0
	default:
		return badRequest("unsupported protocol %q; use HTTP/1.1", truncate(proto, 40))
	}
	if !strings.HasPrefix(target, "/") {
		// Absolute-form and "*" targets name something other than the path
		// dockerd routes on; refuse them rather than guess which one counts.
		return badRequest("request target %q is not an absolute path (absolute-form and * targets are refused)", truncate(target, 80))
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return badRequest("request target has a byte not allowed in a URI (0x%02x)", c)
		}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return badRequest("malformed request target: %v", err)
	}
	h.Method, h.Target, h.URL = method, target, u
	return nil
}

// addField adds the header line line, whose string is ls.
func (h *requestHead) addField(line []byte, ls string) error {
	if line[0] == ' ' || line[0] == '\t' {
		return badRequest("obsolete header line folding is refused")
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return badRequest("malformed header line %q", truncate(ls, 80))
	}
	// One string for the whole line, of which name and value are parts.
	name := ls[:colon]
	if !isToken(name) {
		return badRequest("malformed header name %q", truncate(name, 80))
	}
	value := strings.Trim(ls[colon+1:], " \t")
	if i := ctlByte(value); i >= 0 {
		return badRequest("header %s has a control byte (0x%02x)", name, value[i])
	}
	key := textproto.CanonicalMIMEHeaderKey(name)
	h.Fields = append(h.Fields, headerField{Name: name, Value: value, key: key})
	if vs := h.Header[key]; len(vs) > 0 {
		h.Header[key] = append(vs, value)
	} else {
		// A header's first value is a one-element slice of the head's
		// common array, not a slice of its own.
		h.values = append(h.values, value)
		n := len(h.values)
		h.Header[key] = h.values[n-1 : n : n]
	}
	return nil
}

// parseFraming decides where the body ends, refusing every combination that
// another parser could read with a different length.
func (h *requestHead) parseFraming() error {
	te, hasTE := h.Header["Transfer-Encoding"]
	cl, hasCL := h.Header["Content-Length"]
	switch {
	case hasTE && hasCL:
		return badRequest("both Transfer-Encoding and Content-Length are set")
	case hasTE:
		if h.Minor == 0 {
			return badRequest("Transfer-Encoding is not allowed in HTTP/1.0")
		}
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return badRequest("unsupported transfer coding %q; only chunked is accepted", strings.Join(te, ", "))
		}
		h.ContentLength = -1
	case hasCL:
		if len(cl) != 1 {
			return badRequest("more than one Content-Length")
		}
		n, ok := parseContentLength(cl[0])
		if !ok {
			return badRequest("invalid Content-Length %q", truncate(cl[0], 40))
		}
		h.ContentLength, h.HasContentLength = n, true
	}
	if hosts := h.Header["Host"]; len(hosts) > 1 || (h.Minor == 1 && len(hosts) == 0) {
		return badRequest("an HTTP/1.1 request needs exactly one Host header")
	}
	keepAlive := false
	for _, v := range h.Header["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			switch strings.ToLower(strings.TrimSpace(tok)) {
			case "close":
				h.Close = true
			case "keep-alive":
				keepAlive = true
			case "upgrade":
				h.Upgrade = len(h.Header["Upgrade"]) > 0
			}
		}
	}
	if h.Minor == 0 && !keepAlive {
		h.Close = true
	}
	// A header the client names in Connection is not forwarded
	// (writeUpstreamHead drops it), so it must not be judged either: else
	// a request could be decided on, say, a Content-Type dockerd never sees.
	for k := range connectionNamed(h.Header) {
		if !hopByHop[k] {
			delete(h.Header, k)
		}
	}
	if ex, ok := h.Header["Expect"]; ok {
		if len(ex) != 1 || !strings.EqualFold(ex[0], "100-continue") {
			return &wireError{Status: http.StatusExpectationFailed, Msg: fmt.Sprintf("unsupported Expect %q", strings.Join(ex, ", "))}
		}
		h.ExpectContinue = true
	}
	return nil
}

// parseContentLength accepts only plain decimal digits: no sign, no spaces,
// no list, nothing strconv would be lenient about.
func parseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// hopByHop are headers that describe one connection and are not forwarded
// (RFC 9110 §7.6.1); Content-Length is rewritten from the parsed framing.
var hopByHop = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Connection":    true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Http2-Settings":      true,
	"Expect":              true,
	"Content-Length":      true,
}

// connectionNamed lists the headers the Connection header names as hop-by-hop.
func connectionNamed(hdr http.Header) map[string]bool {
	var named map[string]bool
	for _, v := range hdr["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				if named == nil {
					named = make(map[string]bool)
				}
				named[http.CanonicalHeaderKey(tok)] = true
			}
		}
	}
	return named
}

// writeUpstreamHead writes the request to dockerd: the client's request line
// and end-to-end headers as sent, and framing dockgate chose itself, so that
// dockerd reads exactly the body dockgate read. bodyLen -1 means chunked.
func writeUpstreamHead(w *bufio.Writer, h *requestHead, bodyLen int64) {
	w.WriteString(h.Method)
	w.WriteByte(' ')
	w.WriteString(h.Target)
	w.WriteString(" HTTP/1.1\r\n")
	named := connectionNamed(h.Header)
	hasHost := false
	for _, f := range h.Fields {
		k := f.key
		keep := !hopByHop[k] && !named[k]
		if h.Upgrade && (k == "Upgrade" || k == "Http2-Settings") {
			keep = true
		}
		if keep {
			hasHost = hasHost || k == "Host"
			w.WriteString(f.Name)
			w.WriteString(": ")
			w.WriteString(f.Value)
			w.WriteString("\r\n")
		}
	}
	if !hasHost {
		// The request goes out as HTTP/1.1, which needs a Host: an HTTP/1.0
		// client may send none (or name it in Connection), and dockerd
		// would answer 400 "missing required Host header".
		w.WriteString("Host: docker\r\n")
	}
	if h.Upgrade {
		w.WriteString("Connection: Upgrade\r\n")
	}
	switch {
	case bodyLen < 0:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case bodyLen > 0 || h.HasContentLength || h.chunked():
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(bodyLen, 10))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
}

// ctlByte is the index of the first byte a header field value may not
// hold (a control byte other than tab, or DEL), or -1: the same rule for
// request heads, dockerd's answer heads and chunked trailers.
func ctlByte[T string | []byte](v T) int {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return i
		}
	}
	return -1
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
