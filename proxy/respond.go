package proxy

import (
	"bufio"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
)

// errorBody is dockerd's error shape, so that docker clients print the
// message as the daemon's own.
type errorBody struct {
	Message string `json:"message"`
}

// writeError answers a request dockgate does not forward. The message is
// prefixed "dockgate: " so that a user can tell who refused. A HEAD request
// gets the head only.
func writeError(w *bufio.Writer, method string, status int, msg string, closeConn bool) error {
	return writeAnswer(w, method, status, "dockgate: "+msg, closeConn)
}

// writeAnswer writes an error answer whose message is msg as it stands:
// dockgate's own with its prefix (writeError), or dockerd's, which
// dockgate gives as dockerd would (authz.Decision.Answer).
func writeAnswer(w *bufio.Writer, method string, status int, msg string, closeConn bool) error {
	body, _ := json.Marshal(errorBody{Message: msg})
	body = append(body, '\n')
	w.WriteString("HTTP/1.1 ")
	w.WriteString(strconv.Itoa(status))
	w.WriteByte(' ')
	w.WriteString(http.StatusText(status))
	w.WriteString("\r\nContent-Type: application/json\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	w.WriteString("\r\n")
	if closeConn {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	if method != http.MethodHead {
		w.Write(body)
	}
	return w.Flush()
}

// bodyFraming is how a response body is delimited towards the client.
type bodyFraming int

const (
	framingNone   bodyFraming = iota // no body (HEAD, 1xx, 204, 304)
	framingLength                    // Content-Length
	framingChunked
	framingClose // until the connection closes (also hijacked streams)
)

// writeResponseHead writes dockerd's response head to the client. Headers
// pass unchanged except hop-by-hop ones; keepUpgrade keeps Connection and
// Upgrade for a 101. Keys are sorted so that the output is reproducible.
func writeResponseHead(w *bufio.Writer, resp *http.Response, framing bodyFraming, keepUpgrade, closeConn bool) {
	w.WriteString("HTTP/1.1 ")
	if code := resp.Status; len(code) >= 3 && int(code[0]-'0')*100+int(code[1]-'0')*10+int(code[2]-'0') == resp.StatusCode && (len(code) == 3 || code[3] == ' ') {
		w.WriteString(resp.Status)
	} else {
		w.WriteString(strconv.Itoa(resp.StatusCode))
		w.WriteByte(' ')
		w.WriteString(http.StatusText(resp.StatusCode))
	}
	w.WriteString("\r\n")
	named := connectionNamed(resp.Header)
	// On the stack for a head of common size: slices.Sort, unlike
	// sort.Strings, does not make it escape.
	var keyBuf [16]string
	keys := keyBuf[:0]
	for k := range resp.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		keep := !hopByHop[k] && !named[k]
		if keepUpgrade && (k == "Connection" || k == "Upgrade") {
			keep = true
		}
		if !keep {
			continue
		}
		for _, v := range resp.Header[k] {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	switch framing {
	case framingLength:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(resp.ContentLength, 10))
		w.WriteString("\r\n")
	case framingChunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case framingNone:
		// A HEAD answer keeps the length the GET would have had.
		if cl := resp.Header.Get("Content-Length"); cl != "" {
			w.WriteString("Content-Length: ")
			w.WriteString(cl)
			w.WriteString("\r\n")
		}
	}
	if closeConn && !keepUpgrade {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
}
