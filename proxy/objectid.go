package proxy

import (
	"bytes"
	"encoding/json"
)

// maxObjectBody bounds the response read for an object ID, and one line of
// a build's progress stream.
const maxObjectBody = 64 << 10

// objectID reads the ID of a created object from dockerd's answer.
func objectID(body []byte) string {
	var v struct {
		ID   string `json:"Id"`
		Name string `json:"Name"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	if v.ID != "" {
		return v.ID
	}
	return v.Name
}

// builtImageScanner finds the ID of the image a build made in its progress
// stream, which dockerd ends with {"aux":{"ID":"sha256:…"}} (one JSON
// message per line). It sees the bytes as they pass to the client and
// keeps at most one line.
type builtImageScanner struct {
	line []byte
	skip bool // the current line outgrew maxObjectBody
	id   string
}

func (b *builtImageScanner) Write(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if !b.skip {
			if len(b.line)+len(part) > maxObjectBody {
				b.skip, b.line = true, b.line[:0]
			} else {
				b.line = append(b.line, part...)
			}
		}
		if i < 0 {
			return
		}
		if !b.skip {
			b.message(b.line)
		}
		b.line, b.skip = b.line[:0], false
		p = p[i+1:]
	}
}

func (b *builtImageScanner) message(line []byte) {
	if !bytes.Contains(line, []byte(`"aux"`)) {
		return
	}
	var m struct {
		Aux struct {
			ID string `json:"ID"`
		} `json:"aux"`
	}
	if json.Unmarshal(line, &m) == nil && m.Aux.ID != "" {
		b.id = m.Aux.ID
	}
}
