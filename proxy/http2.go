package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// http2Preface is the client connection preface (RFC 9113 §3.4);
// http2PrefaceRest is what follows its request line "PRI * HTTP/2.0".
const (
	http2Preface     = "PRI * HTTP/2.0\r\n" + http2PrefaceRest
	http2PrefaceRest = "\r\nSM\r\n\r\n"
)

// http2RefuseDeadline bounds an HTTP/2 refusal: the client's SETTINGS and
// first HEADERS come at once from any real client.
const http2RefuseDeadline = 5 * time.Second

// refuseHTTP2 answers an HTTP/2 client with prior knowledge (h2c) in
// HTTP/2, which is all it can read. dockerd 29 serves every endpoint, gRPC
// included, over h2c on its socket; dockgate judges HTTP/1.1 only, so the
// first request (stream) of the connection is refused, clearly to its
// client (writeHTTP2Refusal), and the connection ends. The refusal is
// recorded like any other request, with the method and path of that
// stream.
func (cn *clientConn) refuseHTTP2(start time.Time) {
	_ = cn.nc.SetDeadline(time.Now().Add(http2RefuseDeadline))
	method, path := "PRI", "*"
	record := func(status int, reason string) {
		rec := cn.newRecord(start, &requestHead{Method: method, Target: path})
		rec.Action = authz.ActionUnknown
		rec.Decision = audit.DecisionError
		rec.Status = status
		rec.Reason = reason
		cn.finish(rec, start)
	}
	rest := make([]byte, len(http2PrefaceRest))
	if _, err := io.ReadFull(cn.br, rest); err != nil || string(rest) != http2PrefaceRest {
		record(http.StatusBadRequest, "malformed HTTP/2 connection preface")
		return
	}
	err := cn.serveHTTP2Refusals(func(m, p string) string {
		method, path = m, p
		msg := fmt.Sprintf("%s may not %s %s over HTTP/2: dockgate judges the Docker API over HTTP/1.1 only (BuildKit clients connect through the /grpc and /session upgrades)", cn.name, m, p)
		record(http.StatusForbidden, msg)
		return msg
	}, true)
	if err != nil && method == "PRI" {
		record(http.StatusBadRequest, "HTTP/2 connection closed before its first request: "+err.Error())
	}
}

// refuseGRPCUpgrade refuses an h2c upgrade to dockerd's gRPC endpoint
// (/grpc, BuildKit's control API) inside the protocol its client speaks.
// A 403 to the upgrade itself is no message to buildx: it takes it to
// mean "this daemon has no BuildKit" and quietly builds with another
// driver, whose failure then names something else (the moby/buildkit
// image it tries to pull). So the upgrade is answered with 101 and every
// gRPC call on it with PERMISSION_DENIED and the refusal, which buildx
// prints ("rpc error: code = PermissionDenied desc = dockgate: ...").
// Nothing reaches dockerd; the request is on record as refused (rec).
func (cn *clientConn) refuseGRPCUpgrade(rec *audit.Record, msg string) bool {
	rec.Decision, rec.Reason, rec.Status = audit.DecisionDeny, msg, http.StatusForbidden
	cn.finish(rec, rec.Time)
	_ = cn.nc.SetDeadline(time.Now().Add(http2RefuseDeadline))
	cn.bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	if cn.bw.Flush() != nil {
		return false
	}
	pre := make([]byte, len(http2Preface))
	if _, err := io.ReadFull(cn.br, pre); err != nil || string(pre) != http2Preface {
		return false
	}
	_ = cn.serveHTTP2Refusals(func(string, string) string { return msg }, false)
	return false
}

// isGRPCUpgrade says whether a request asks for dockerd's gRPC endpoint
// over an h2c upgrade.
func isGRPCUpgrade(head *requestHead, m *authz.Match) bool {
	return head.Upgrade && m != nil && m.GRPC &&
		strings.EqualFold(strings.TrimSpace(head.Header.Get("Upgrade")), "h2c")
}

// serveHTTP2Refusals is the server side of an HTTP/2 connection whose
// preface was read: it sends its SETTINGS, answers the client's SETTINGS
// and PINGs, and answers each request (stream) with the refusal message
// refusal returns for it, until the client goes or the deadline passes.
// With firstOnly, GOAWAY follows the first answer: streams the client
// opened after it are left unanswered (the client retries them on a new
// connection, RFC 9113 §6.8), and what the client still sends is read and
// dropped rather than cut off, so that it reads the answer instead of a
// broken pipe. It ends with GOAWAY.
func (cn *clientConn) serveHTTP2Refusals(refusal func(method, path string) string, firstOnly bool) error {
	fr := http2.NewFramer(cn.bw, cn.br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = uint32(cn.set.Limits.MaxHeaderBytes)
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	if err := cn.bw.Flush(); err != nil {
		return err
	}
	var last uint32
	var lastMsg string
	goneAway := false
	defer func() {
		if !goneAway {
			_ = fr.WriteGoAway(last, http2.ErrCodeNo, []byte(lastMsg))
			_ = cn.bw.Flush()
		}
	}()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if goneAway && (errors.Is(err, io.EOF) || isClosedErr(err)) {
				return nil
			}
			return err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			if goneAway {
				continue
			}
			last = f.StreamID
			lastMsg = "dockgate: " + refusal(f.PseudoValue("method"), f.PseudoValue("path"))
			if err := writeHTTP2Refusal(fr, f, lastMsg); err != nil {
				return err
			}
			if firstOnly {
				goneAway = true
				_ = fr.WriteGoAway(last, http2.ErrCodeNo, []byte(lastMsg))
			}
		}
		if err := cn.bw.Flush(); err != nil {
			return err
		}
	}
}

// writeHTTP2Refusal answers the stream of req with the refusal msg: a gRPC
// call with grpc-status PERMISSION_DENIED (its client prints "rpc error:
// code = PermissionDenied desc = dockgate: ..."), anything else with a 403
// and the Docker-style JSON body.
func writeHTTP2Refusal(fr *http2.Framer, req *http2.MetaHeadersFrame, msg string) error {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	field := func(name, value string) { _ = enc.WriteField(hpack.HeaderField{Name: name, Value: value}) }
	grpc := false
	for _, h := range req.RegularFields() {
		if h.Name == "content-type" && strings.HasPrefix(h.Value, "application/grpc") {
			grpc = true
		}
	}
	id := req.StreamID
	if grpc {
		// A trailers-only response (gRPC over HTTP/2, "Responses").
		field(":status", "200")
		field("content-type", "application/grpc")
		field("grpc-status", "7") // PERMISSION_DENIED
		field("grpc-message", grpcPercentEncode(msg))
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	}
	body, _ := json.Marshal(errorBody{Message: msg})
	body = append(body, '\n')
	field(":status", "403")
	field("content-type", "application/json")
	field("content-length", strconv.Itoa(len(body)))
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		return err
	}
	return fr.WriteData(id, true, body)
}

// grpcPercentEncode encodes a grpc-message value: bytes outside printable
// ASCII, and '%', as %XX.
func grpcPercentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
