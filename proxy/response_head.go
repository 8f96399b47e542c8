package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// Reading dockerd's response heads.
//
// net/http's ReadResponse costs eighteen allocations for a /_ping answer,
// a string for every header line and value among them, although dockerd
// sends the same header lines again and again on a connection. This reader
// keeps the lines of the previous response of its connection and reuses
// those that come again byte for byte (all but Date, mostly), and the
// storage of the previous head (response, header map, body reader), which
// is dead once its answer is forwarded; it frames the body exactly as
// net/http's client does (readTransfer): the same *http.Response fields,
// the same bodies for the same framing. It is as strict with dockerd as the
// request parser is with clients: what it cannot read without guessing is
// an error, and the client gets 502.

// maxResponseHead bounds a response head from dockerd.
const maxResponseHead = 1 << 20

// respReader is what a dockerd connection keeps from one response head to
// the next: the previous head's lines, and the storage the next head is
// read into. Responses on a connection are read one after the other, each
// once the one before it has been forwarded (or the connection dropped), so
// the head readResponseHead returns is valid until it is called again.
type respReader struct {
	lines keptLines
	resp  http.Response
	// values hold the first value of each header of a head of common
	// size, so that none takes an allocation of its own.
	values [16]string
	body   upstreamBody
}

// keptLines are the header lines of the previous head on a connection
// (dockerd's responses, or a client's requests: headCache), for reuse.
type keptLines []string

// chunkedCoding is the TransferEncoding of every chunked response; its
// capacity is its length, so that an append copies it.
var chunkedCoding = []string{"chunked"}

// readResponseHead reads one response head from br into rr and sets up its
// body as net/http would for a request with method.
func readResponseHead(br *bufio.Reader, method string, rr *respReader) (*http.Response, error) {
	line, err := readLine(br, maxResponseHead, http.StatusBadGateway, "response status line")
	if err != nil {
		return nil, fromDockerd(err)
	}
	size := len(line) + 2
	prev := &rr.lines
	h := rr.resp.Header
	if h == nil {
		h = make(http.Header, 8)
	}
	clear(h)
	resp := &rr.resp
	*resp = http.Response{ProtoMajor: 1, Header: h}
	if err := parseStatusLine(resp, prev.reuse(0, line)); err != nil {
		return nil, err
	}
	// The values of the whole head in one array.
	vals := rr.values[:0]
	for i := 1; ; i++ {
		line, err := readLine(br, maxResponseHead-size, http.StatusBadGateway, "response head")
		if err != nil {
			return nil, fromDockerd(err)
		}
		size += len(line) + 2
		if len(line) == 0 {
			*prev = (*prev)[:min(i, len(*prev))]
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, errors.New("malformed response header: obsolete line folding")
		}
		ls := prev.reuse(i, line)
		name, value, ok := strings.Cut(ls, ":")
		if !ok || !isToken(name) {
			return nil, fmt.Errorf("malformed response header line %q", truncate(ls, 80))
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		value = strings.Trim(value, " \t")
		if i := ctlByte(value); i >= 0 {
			return nil, fmt.Errorf("response header %s has a control byte (0x%02x)", name, value[i])
		}
		if vs := resp.Header[key]; len(vs) > 0 {
			resp.Header[key] = append(vs, value)
			continue
		}
		vals = append(vals, value)
		n := len(vals)
		resp.Header[key] = vals[n-1 : n : n]
	}
	if err := frameResponse(resp, br, method, &rr.body); err != nil {
		return nil, err
	}
	return resp, nil
}

// fromDockerd is a read error of dockerd's response: what readLine calls
// a malformed request is a malformed response here, answered with 502
// like any other (a wireError would be answered with its own status).
func fromDockerd(err error) error {
	var we *wireError
	if errors.As(err, &we) {
		return errors.New(we.Msg)
	}
	return err
}

// maxKeptLine bounds a line kept for the next head to reuse: what a
// connection holds between requests stays small (at most 32 lines of it)
// however large a head its client once sent. The lines that come again
// (Host, User-Agent, a poll's request line, dockerd's own) are short.
const maxKeptLine = 256

// reuse returns line as a string: the previous head's line i when it is
// the same, else a new one that line i becomes, unless it is longer than
// maxKeptLine. A nil p keeps nothing.
func (p *keptLines) reuse(i int, line []byte) string {
	if p == nil {
		return string(line)
	}
	if i < len(*p) && (*p)[i] == string(line) {
		return (*p)[i]
	}
	s := string(line)
	keep := s
	if len(line) > maxKeptLine {
		// Its place is kept, empty, for the lines after it.
		keep = ""
	}
	if i < len(*p) {
		(*p)[i] = keep
	} else if i == len(*p) && i < 32 {
		*p = append(*p, keep)
	}
	return s
}

// parseStatusLine reads "HTTP/1.x NNN reason".
func parseStatusLine(resp *http.Response, line string) error {
	proto, status, ok := strings.Cut(line, " ")
	switch {
	case !ok:
		return fmt.Errorf("malformed response status line %q", truncate(line, 80))
	case proto == "HTTP/1.1":
		resp.ProtoMinor = 1
	case proto == "HTTP/1.0":
	default:
		return fmt.Errorf("response in unsupported protocol %q", truncate(proto, 40))
	}
	resp.Proto = proto
	resp.Status = strings.TrimLeft(status, " ")
	code, _, _ := strings.Cut(resp.Status, " ")
	if len(code) != 3 || code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' {
		return fmt.Errorf("malformed response status code %q", truncate(code, 20))
	}
	resp.StatusCode = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	return nil
}

// frameResponse sets Close, TransferEncoding, ContentLength and Body as
// net/http's readTransfer does for a response; a body to read is body.
func frameResponse(resp *http.Response, br *bufio.Reader, method string, body *upstreamBody) error {
	h := resp.Header
	conn := h["Connection"]
	hasClose := headerHasToken(conn, "close")
	if resp.ProtoMinor == 0 {
		resp.Close = hasClose || !headerHasToken(conn, "keep-alive")
	} else {
		resp.Close = hasClose
		if hasClose {
			delete(h, "Connection")
		}
	}
	chunked := false
	if te, ok := h["Transfer-Encoding"]; ok {
		if resp.ProtoMinor == 0 {
			// net/http ignores it and reads until close; another reader
			// might not.
			return errors.New("HTTP/1.0 response with Transfer-Encoding")
		}
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return fmt.Errorf("response in unsupported transfer encoding %q", strings.Join(te, ", "))
		}
		chunked = true
		delete(h, "Transfer-Encoding")
		resp.TransferEncoding = chunkedCoding
	}
	length, err := responseLength(resp.StatusCode, method, h, chunked)
	if err != nil {
		return err
	}
	if chunked {
		if err := dropTrailerDeclaration(h); err != nil {
			return err
		}
	}
	resp.ContentLength = length
	noBody := resp.StatusCode < 200 || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	switch {
	case noBody || method == http.MethodHead:
		resp.Body = http.NoBody
	case chunked:
		*body = upstreamBody{src: newChunkedReader(br), br: br, left: -1}
		resp.Body = body
	case length == 0:
		resp.Body = http.NoBody
	case length > 0:
		*body = upstreamBody{src: br, br: br, left: length}
		resp.Body = body
	default:
		// Until dockerd closes the connection.
		resp.Close = true
		*body = upstreamBody{src: br, br: br, left: -1}
		resp.Body = body
	}
	return nil
}

// responseLength is net/http's fixLength for a response: a Content-Length
// is valid whatever the status, and counts only where a body may follow.
func responseLength(status int, method string, h http.Header, chunked bool) (int64, error) {
	cl := h["Content-Length"]
	if len(cl) > 1 {
		first := strings.TrimSpace(cl[0])
		for _, v := range cl[1:] {
			if strings.TrimSpace(v) != first {
				return 0, fmt.Errorf("response with differing Content-Length values %q", cl)
			}
		}
		cl = cl[:1]
		h["Content-Length"] = cl
	}
	n := int64(-1)
	if len(cl) > 0 {
		var ok bool
		if n, ok = parseContentLength(strings.TrimSpace(cl[0])); !ok {
			return 0, fmt.Errorf("response with invalid Content-Length %q", truncate(cl[0], 40))
		}
	}
	switch {
	case method == http.MethodHead:
		// The length the GET would have had, with no body here.
		return n, nil
	case status < 200 || status == http.StatusNoContent || status == http.StatusNotModified:
		return 0, nil
	case chunked:
		delete(h, "Content-Length")
		return -1, nil
	case n < 0:
		delete(h, "Content-Length")
	}
	return n, nil
}

// dropTrailerDeclaration is net/http's fixTrailer for the header map: a
// chunked response's Trailer header announces fields of the chunked coding,
// so it leaves the header (dockgate does not forward it: it is hop-by-hop),
// and naming a framing field there is refused as net/http refuses it. The
// declared names are not kept: the chunked reader checks the trailer lines
// themselves, and nothing reads resp.Trailer. Without chunking the header
// stays, as net/http keeps it: this is only called for chunked responses.
func dropTrailerDeclaration(h http.Header) error {
	vv, ok := h["Trailer"]
	if !ok {
		return nil
	}
	delete(h, "Trailer")
	for _, v := range vv {
		for key := range strings.SplitSeq(v, ",") {
			key = strings.TrimSpace(key)
			switch http.CanonicalHeaderKey(key) {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return fmt.Errorf("response declares framing field %q as a trailer", key)
			}
		}
	}
	return nil
}

// headerHasToken says whether a comma-separated header holds token.
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}

// upstreamBody is a response body as net/http's client gives it: a body
// of known length that ends early is io.ErrUnexpectedEOF, and Close reads
// what is left, so that the connection is ready for the next response.
type upstreamBody struct {
	src  io.Reader
	br   *bufio.Reader // dockerd's connection, which src reads
	left int64         // bytes of a body of known length still to come; -1: unknown (chunked, or until close)
	err  error
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left == 0 {
		b.err = io.EOF
		return 0, b.err
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.src.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		} else if err == nil && b.left == 0 {
			err = io.EOF
		}
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// ready says whether the next Read can be answered from what dockgate
// already holds, without waiting for dockerd: while it can, what is
// written to the client may wait to go out with the next piece.
func (b *upstreamBody) ready() bool {
	if b.err != nil || b.left == 0 {
		return false
	}
	if cr, ok := b.src.(*chunkedReader); ok {
		return cr.buffered()
	}
	return b.br.Buffered() > 0
}

func (b *upstreamBody) Close() error {
	if b.err == nil {
		_, err := io.Copy(io.Discard, b)
		b.err = errors.Join(err, errBodyClosed)
	}
	return nil
}

var errBodyClosed = errors.New("read on closed response body")
