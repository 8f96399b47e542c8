package filesync

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"
	"google.golang.org/protobuf/proto"
)

// TestFreshStatsMakeDockerdAskAgain relays a second transfer of an unchanged
// Dockerfile into the dir dockerd kept, comparing metadata as the Dockerfile
// frontend of Engine 20.10's BuildKit has it do, through a Reader that replaces the wanted file's STAT:
// dockerd asks for the file again, and what it has is what was judged.
func TestFreshStatsMakeDockerdAskAgain(t *testing.T) {
	tests := []struct {
		name    string
		fresh   bool
		files   map[string]want
		missing []string
	}{
		{name: "rebuild forwarding the client's stats: dockerd keeps its copy, missing", missing: []string{"Dockerfile"}, files: map[string]want{}},
		{name: "rebuild with fresh stats: dockerd asks again", fresh: true, files: map[string]want{"Dockerfile": {"Dockerfile", dockerfile}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := makeTree(t, map[string]node{"Dockerfile": {content: dockerfile}, "other": {content: "x"}})
			dest := t.TempDir()
			opt := syncOpt{follow: dockerfileDir, include: dockerfileDir, differ: fsutil.DiffMetadata}
			transfer(t, src, dest, opt)
			// What dockerd kept from the first build, changed behind its
			// back with size and time kept: it must not be used unjudged.
			evil := "FROM evilxx:3.20\nRUN true\n"
			if len(evil) != len(dockerfile) {
				t.Fatalf("the changed copy must keep the size: %d, not %d", len(evil), len(dockerfile))
			}
			if err := os.WriteFile(filepath.Join(dest, "Dockerfile"), []byte(evil), 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(filepath.Join(src, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(filepath.Join(dest, "Dockerfile"), st.ModTime(), st.ModTime()); err != nil {
				t.Fatal(err)
			}

			var opts []Option
			if tc.fresh {
				opts = append(opts, WithFreshStats(0x5eed))
			}
			r := NewReader(dockerfileDir, opts...)
			out := outcome{files: make(map[string]File)}
			replaced := 0
			opt.relay = func(m message) ([]byte, error) {
				if !m.fromSender {
					return m.bytes, r.FromReceiver(m.bytes)
				}
				ev, err := r.FromSender(m.bytes)
				if err != nil {
					return nil, err
				}
				for _, f := range ev.Complete {
					out.files[f.Name] = f
				}
				if ev.Finished {
					out.finished, out.missing = true, ev.Missing
				}
				if ev.Replace != nil {
					replaced++
					return ev.Replace, nil
				}
				return m.bytes, nil
			}
			transfer(t, src, dest, opt)

			if want := map[bool]int{true: 1}[tc.fresh]; replaced != want {
				t.Fatalf("replaced %d messages, want %d", replaced, want)
			}
			if !out.finished {
				t.Fatal("the transfer never finished")
			}
			got := make(map[string]want)
			for name, f := range out.files {
				got[name] = want{f.Path, string(f.Content)}
			}
			if !reflect.DeepEqual(got, tc.files) {
				t.Errorf("files: got %v, want %v", got, tc.files)
			}
			if !reflect.DeepEqual(out.missing, tc.missing) {
				t.Errorf("missing: got %q, want %q", out.missing, tc.missing)
			}
			if tc.fresh {
				onDisk, err := os.ReadFile(filepath.Join(dest, "Dockerfile"))
				if err != nil {
					t.Fatal(err)
				}
				if string(onDisk) != dockerfile {
					t.Errorf("dockerd has %q, the Reader judged %q", onDisk, dockerfile)
				}
			}
		})
	}
}

func TestFreshStatReplacesOnlyWhatItCan(t *testing.T) {
	stat := func(path string, mode uint32, link string, mtime int64) []byte {
		return packet(t, &types.Packet{Type: types.Packet_PACKET_STAT, Stat: &types.Stat{Path: path, Mode: mode, Linkname: link, ModTime: mtime, Size: 10}})
	}
	const now = 1764960000123456789
	tests := []struct {
		name    string
		wanted  []string
		before  [][]byte
		msg     []byte
		replace bool
	}{
		{name: "wanted regular file", wanted: []string{"Dockerfile"}, msg: stat("Dockerfile", modeFile, "", now), replace: true},
		{name: "file nobody wants", wanted: []string{"Dockerfile"}, msg: stat("main.go", modeFile, "", now)},
		{name: "wanted name is a symbolic link", wanted: []string{"Dockerfile"}, msg: stat("Dockerfile", modeSymlink, "real", now)},
		{name: "file a link already named", wanted: []string{"Dockerfile"}, before: [][]byte{stat("Dockerfile", modeSymlink, "real", now)}, msg: stat("real", modeFile, "", now), replace: true},
		{name: "time zero is not in the message", wanted: []string{"Dockerfile"}, msg: stat("Dockerfile", modeFile, "", 0)},
		{name: "small time whose new value is longer", wanted: []string{"Dockerfile"}, msg: stat("Dockerfile", modeFile, "", 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.wanted, WithFreshStats(0xabcdef))
			for i, b := range tc.before {
				if _, err := r.FromSender(b); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			ev, err := r.FromSender(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if (ev.Replace != nil) != tc.replace {
				t.Fatalf("replacement %x, want one: %v", ev.Replace, tc.replace)
			}
			if ev.Replace == nil {
				return
			}
			if len(ev.Replace) != len(tc.msg) {
				t.Fatalf("replacement is %d bytes, the message %d", len(ev.Replace), len(tc.msg))
			}
			var orig, fresh types.Packet
			if err := proto.Unmarshal(tc.msg, &orig); err != nil {
				t.Fatal(err)
			}
			if err := proto.Unmarshal(ev.Replace, &fresh); err != nil {
				t.Fatal(err)
			}
			if fresh.Stat.ModTime == orig.Stat.ModTime {
				t.Fatal("the replacement keeps the modification time")
			}
			fresh.Stat.ModTime = orig.Stat.ModTime
			if !proto.Equal(&orig, &fresh) {
				t.Fatalf("the replacement changes more than the time: %v, was %v", fmt.Sprint(&fresh), fmt.Sprint(&orig))
			}
		})
	}
}
