package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
)

// Progress streams dockgate follows line by line. dockerd's answers to a
// build or a pull are JSON messages, one a line, the last of which says
// whether the act failed (errorDetail). Where dockgate has something to add
// at the end of such a stream (a refused build's error, the tag of a pull
// it pinned), the stream goes on in whole lines, so that dockgate's message
// can follow any of them, and ends with what dockgate adds.

// lineGuard follows one progress stream for copyResponse.
type lineGuard interface {
	// attach gives the guard dockerd's connection of the stream.
	attach(up net.Conn)
	// pass returns what of p, bytes as dockerd sent them, goes on now.
	pass(p []byte) []byte
	// finish is called once dockerd's copy ended (copyErr nil when
	// dockerd ended the stream): what goes out before the stream's end,
	// the audit record's reason ("" to keep it), and whether copyErr was
	// dockgate's own cut, which ends the stream well.
	finish(ctx context.Context, copyErr error) (tail []byte, reason string, absorbed bool)
	// stop is called when the copy ends however it ends.
	stop()
}

// lineSplitter holds back the part of a stream after its last newline.
type lineSplitter struct {
	pending []byte
}

// whole returns the complete lines of what came so far and p; p's bytes
// may be kept until the rest of their line comes (p may be reused after).
func (l *lineSplitter) whole(p []byte) []byte {
	data := p
	if len(l.pending) > 0 {
		data = append(l.pending, p...)
	}
	end := bytes.LastIndexByte(data, '\n') + 1
	l.pending = append(l.pending[:0:0], data[end:]...)
	return data[:end]
}

// rest is what came after the last newline, once the stream ended.
func (l *lineSplitter) rest() []byte {
	r := l.pending
	l.pending = nil
	return r
}

// dropErrorMessages returns lines without the messages that end a stream
// with an error.
func dropErrorMessages(lines []byte) []byte {
	var out []byte
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n') + 1
		if !isErrorMessage(lines[:i]) {
			out = append(out, lines[:i]...)
		}
		lines = lines[i:]
	}
	return out
}

// hasErrorMessage says whether lines hold a message that ends the stream
// with an error.
func hasErrorMessage(lines []byte) bool {
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n') + 1
		if i == 0 {
			i = len(lines)
		}
		if isErrorMessage(lines[:i]) {
			return true
		}
		lines = lines[i:]
	}
	return false
}

// isErrorMessage reports whether line is a progress message that ends the
// stream with an error (the docker client stops at the first one).
func isErrorMessage(line []byte) bool {
	if !bytes.Contains(line, []byte(`"error`)) {
		return false
	}
	var m struct {
		ErrorDetail json.RawMessage `json:"errorDetail"`
		Error       json.RawMessage `json:"error"`
	}
	if json.Unmarshal(line, &m) != nil {
		return true
	}
	return m.ErrorDetail != nil || m.Error != nil
}

// errorMessage is a progress message that ends a stream with msg, as
// dockerd writes one.
func errorMessage(msg string) []byte {
	type detail struct {
		Message string `json:"message"`
	}
	b, _ := json.Marshal(struct {
		ErrorDetail detail `json:"errorDetail"`
		Error       string `json:"error"`
	}{detail{msg}, msg})
	return append(b, '\r', '\n')
}
