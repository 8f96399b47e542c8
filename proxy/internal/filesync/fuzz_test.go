package filesync

import (
	"encoding/binary"
	"testing"

	"github.com/tonistiigi/fsutil/types"
)

// encodeMessages frames a message sequence for the fuzzer: per message a
// direction byte (odd: from the client), a two-byte length and the bytes.
func encodeMessages(msgs []message) []byte {
	var b []byte
	for _, m := range msgs {
		dir := byte(0)
		if m.fromSender {
			dir = 1
		}
		n := len(m.bytes)
		if n > 0xffff {
			n = 0xffff
		}
		b = append(b, dir, byte(n>>8), byte(n))
		b = append(b, m.bytes[:n]...)
	}
	return b
}

func decodeMessages(b []byte) []message {
	var msgs []message
	for len(b) >= 3 {
		fromSender := b[0]&1 == 1
		n := int(binary.BigEndian.Uint16(b[1:3]))
		b = b[3:]
		if n > len(b) {
			n = len(b)
		}
		msgs = append(msgs, message{fromSender: fromSender, bytes: b[:n]})
		b = b[n:]
	}
	return msgs
}

func FuzzReader(f *testing.F) {
	src := makeTree(f, map[string]node{
		"Dockerfile":              {link: "docker/Dockerfile"},
		"docker/Dockerfile":       {content: dockerfile},
		"Dockerfile.dockerignore": {content: dockerignore},
	})
	f.Add(encodeMessages(transfer(f, src, f.TempDir(), syncOpt{include: dockerfileDir, follow: dockerfileDir})))
	f.Add(encodeMessages([]message{
		{true, packet(f, &types.Packet{Type: types.Packet_PACKET_STAT, Stat: &types.Stat{Path: "A", Mode: modeFile}})},
		{true, packet(f, &types.Packet{Type: types.Packet_PACKET_STAT, Stat: &types.Stat{Path: "Dockerfile", Mode: modeFile, Linkname: "A"}})},
		{true, packet(f, &types.Packet{Type: types.Packet_PACKET_STAT, Stat: &types.Stat{Path: "Dockerfile.dockerignore", Mode: modeSymlink, Linkname: "../Dockerfile"}})},
		{false, packet(f, &types.Packet{Type: types.Packet_PACKET_REQ})},
		{true, packet(f, &types.Packet{Type: types.Packet_PACKET_DATA, Data: []byte("FROM a")})},
		{true, packet(f, &types.Packet{Type: types.Packet_PACKET_DATA})},
		{true, packet(f, &types.Packet{Type: types.Packet_PACKET_STAT})},
		{false, packet(f, &types.Packet{Type: types.Packet_PACKET_FIN})},
		{true, packet(f, &types.Packet{Type: types.Packet_PACKET_FIN})},
	}))
	const limit = 1 << 10
	f.Fuzz(func(t *testing.T, b []byte) {
		wanted := map[string]bool{"Dockerfile": true, "Dockerfile.dockerignore": true}
		r := NewReader([]string{"Dockerfile", "Dockerfile.dockerignore"}, WithLimit(limit), WithMaxEntries(64), WithFreshStats(0x1234))
		var failed error
		for _, m := range decodeMessages(b) {
			var ev Event
			var err error
			if m.fromSender {
				ev, err = r.FromSender(m.bytes)
			} else {
				err = r.FromReceiver(m.bytes)
			}
			if failed != nil {
				if err == nil || err.Error() != failed.Error() {
					t.Fatalf("after %v, a message got %v", failed, err)
				}
				continue
			}
			if err != nil {
				failed = err
				continue
			}
			for _, c := range ev.Complete {
				if !wanted[c.Name] {
					t.Fatalf("completed %q, which is not wanted", c.Name)
				}
				if len(c.Content) > limit {
					t.Fatalf("%q has %d bytes, past the limit", c.Name, len(c.Content))
				}
			}
			if ev.Replace != nil && len(ev.Replace) != len(m.bytes) {
				t.Fatalf("a replacement of %d bytes for a message of %d", len(ev.Replace), len(m.bytes))
			}
			for _, name := range ev.Missing {
				if !wanted[name] {
					t.Fatalf("missing %q, which is not wanted", name)
				}
			}
		}
		if r.kept > limit {
			t.Fatalf("kept %d bytes, past the limit", r.kept)
		}
	})
}
