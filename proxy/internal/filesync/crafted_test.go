package filesync

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tonistiigi/fsutil/types"
	"google.golang.org/protobuf/proto"
)

// step is one crafted message and what the Reader must make of it.
type step struct {
	fromSender bool
	msg        []byte
	complete   []string // names the message completes
	senderErr  string
}

const (
	modeFile    = 0o644
	modeDir     = uint32(os.ModeDir | 0o755)
	modeSymlink = uint32(os.ModeSymlink | 0o777)
	modeDevice  = uint32(os.ModeDevice | os.ModeCharDevice | 0o666)
)

func packet(t testing.TB, p *types.Packet) []byte {
	t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The messages of both sides, as fsutil sends them.
func statOf(t testing.TB, path string, mode uint32, link string) step {
	return step{fromSender: true, msg: packet(t, &types.Packet{Type: types.Packet_PACKET_STAT, Stat: &types.Stat{Path: path, Mode: mode, Linkname: link}})}
}
func file(t testing.TB, path string) step { return statOf(t, path, modeFile, "") }
func listed(t testing.TB) step {
	return step{fromSender: true, msg: packet(t, &types.Packet{Type: types.Packet_PACKET_STAT})}
}
func req(t testing.TB, id uint32) step {
	return step{msg: packet(t, &types.Packet{Type: types.Packet_PACKET_REQ, ID: id})}
}
func data(t testing.TB, id uint32, content string, completes ...string) step {
	return step{fromSender: true, msg: packet(t, &types.Packet{Type: types.Packet_PACKET_DATA, ID: id, Data: []byte(content)}), complete: completes}
}
func receiverFIN(t testing.TB) step {
	return step{msg: packet(t, &types.Packet{Type: types.Packet_PACKET_FIN})}
}
func senderFIN(t testing.TB) step {
	return step{fromSender: true, msg: packet(t, &types.Packet{Type: types.Packet_PACKET_FIN})}
}
func senderOf(t testing.TB, p *types.Packet) step   { return step{fromSender: true, msg: packet(t, p)} }
func receiverOf(t testing.TB, p *types.Packet) step { return step{msg: packet(t, p)} }
func completing(s step, names ...string) step {
	s.complete = names
	return s
}

func TestReaderCraftedFlows(t *testing.T) {
	tests := []struct {
		name    string
		wanted  []string
		opts    []Option
		steps   []step
		err     string          // the last step fails with this; the others pass
		files   map[string]want // the wanted files' content at the end
		missing []string
	}{
		// What the Reader refuses.
		{name: "undecodable message from the client", steps: []step{{fromSender: true, msg: []byte{0xff, 0xff, 0xff}}}, err: "undecodable packet"},
		{name: "undecodable message from dockerd", steps: []step{{msg: []byte{0x0a}}}, err: "undecodable packet"},
		{name: "content for a file id never stated", steps: []step{file(t, "Dockerfile"), data(t, 5, "FROM evil")}, err: "file id 5 was never stated"},
		{name: "content dockerd did not ask for", steps: []step{file(t, "Dockerfile"), listed(t), data(t, 0, "FROM evil")}, err: "which dockerd did not ask for"},
		{
			name:   "content after the file's end",
			wanted: []string{"Dockerfile"},
			steps:  []step{file(t, "Dockerfile"), listed(t), req(t, 0), data(t, 0, "FROM alpine"), data(t, 0, "", "Dockerfile"), data(t, 0, "\nFROM evil")},
			err:    `content of "Dockerfile" (id 0) after its end`,
		},
		{name: "wanted file stated twice", wanted: []string{"Dockerfile"}, steps: []step{file(t, "Dockerfile"), file(t, "Dockerfile")}, err: `stated "Dockerfile" twice`},
		{
			name:   "wanted content past the limit",
			wanted: []string{"Dockerfile"},
			opts:   []Option{WithLimit(10)},
			steps:  []step{file(t, "Dockerfile"), req(t, 0), data(t, 0, "FROM a"), data(t, 0, "FROM b")},
			err:    "larger than 10 bytes",
		},
		{
			name:   "other files' content is not counted against the limit",
			wanted: []string{"Dockerfile"},
			opts:   []Option{WithLimit(10)},
			steps: []step{
				file(t, "Dockerfile"), file(t, "big"), listed(t), req(t, 1), req(t, 0),
				data(t, 1, strings.Repeat("x", 100)), data(t, 0, "FROM a"), data(t, 1, ""), data(t, 0, "", "Dockerfile"),
				receiverFIN(t), senderFIN(t),
			},
			files: map[string]want{"Dockerfile": {"Dockerfile", "FROM a"}},
		},
		{name: "unknown packet type from the client", steps: []step{senderOf(t, &types.Packet{Type: 7})}, err: "unknown type 7"},
		{name: "unknown packet type from dockerd", steps: []step{receiverOf(t, &types.Packet{Type: 9})}, err: "unknown type 9"},
		{name: "REQ from the client", steps: []step{file(t, "Dockerfile"), senderOf(t, &types.Packet{Type: types.Packet_PACKET_REQ})}, err: "only dockerd sends"},
		{name: "DATA from dockerd", steps: []step{receiverOf(t, &types.Packet{Type: types.Packet_PACKET_DATA})}, err: "only the sender sends"},
		{name: "file stated after the end of the listing", steps: []step{file(t, "A"), listed(t), file(t, "Dockerfile")}, err: "after the end of its listing"},
		{name: "client ends before dockerd", steps: []step{file(t, "Dockerfile"), listed(t), senderFIN(t)}, err: "before dockerd did"},
		{name: "client ends before its listing", steps: []step{file(t, "Dockerfile"), receiverFIN(t), senderFIN(t)}, err: "before its listing"},
		{name: "unclean path", steps: []step{file(t, "a/../Dockerfile")}, err: "unclean path"},
		{name: "absolute path", steps: []step{file(t, "/Dockerfile")}, err: "absolute path"},
		{name: "path outside the dir", steps: []step{file(t, "../Dockerfile")}, err: "outside its dir"},
		{name: "entry without a path", steps: []step{senderOf(t, &types.Packet{Type: types.Packet_PACKET_STAT, Stat: &types.Stat{Mode: modeFile}})}, err: "without a path"},
		{name: "metadata file that would shift dockerd's ids", steps: []step{file(t, ".fsutil-metadata")}, err: "leave out of its file ids"},
		{name: "entry stated before its directory", steps: []step{file(t, "docker/Dockerfile")}, err: `stated "docker/Dockerfile" before its directory`},
		{
			name:   "entry stated below a symbolic link",
			wanted: []string{"build/Dockerfile"},
			steps:  []step{statOf(t, "build", modeSymlink, "docker"), file(t, "build/Dockerfile")},
			err:    `stated "build/Dockerfile" before its directory`,
		},
		{name: "hard link to a path never stated", steps: []step{statOf(t, "Dockerfile", modeFile, "elsewhere")}, err: "not a regular file stated before"},
		{name: "hard link to a directory", steps: []step{statOf(t, "A", modeDir, ""), statOf(t, "Dockerfile", modeFile, "A")}, err: "not a regular file stated before"},
		{
			name:   "symbolic link loop",
			wanted: []string{"Dockerfile"},
			steps:  []step{statOf(t, "Dockerfile", modeSymlink, "a"), statOf(t, "a", modeSymlink, "b"), statOf(t, "b", modeSymlink, "a")},
			err:    "more than 40 links",
		},
		{
			name:   "link on the way leads to a regular file: nothing to judge",
			wanted: []string{"x/Dockerfile"},
			steps:  []step{file(t, "A"), req(t, 0), data(t, 0, "FROM evil"), statOf(t, "x", modeSymlink, "A"), listed(t), data(t, 0, ""), receiverFIN(t), senderFIN(t)},
			files:  map[string]want{},
		},
		{
			name:   "content passed before a symbolic link named it as the wanted file",
			wanted: []string{"Dockerfile"},
			steps:  []step{file(t, "A"), req(t, 0), data(t, 0, "FROM evil"), data(t, 0, ""), statOf(t, "Dockerfile", modeSymlink, "A")},
			err:    `content of "A" passed before a link named it as "Dockerfile"`,
		},
		{
			name:   "content passed before a hard link named it",
			wanted: []string{"Dockerfile"},
			steps:  []step{file(t, "A"), req(t, 0), data(t, 0, "FROM evil"), statOf(t, "Dockerfile", modeFile, "A")},
			err:    `content of "A" passed before a link named it as "Dockerfile"`,
		},
		{name: "dockerd asks for a directory's content", steps: []step{statOf(t, "d", modeDir, ""), req(t, 0)}, err: "a directory"},
		{name: "dockerd asks for a hard link's content", steps: []step{file(t, "A"), statOf(t, "B", modeFile, "A"), req(t, 1)}, err: "a hard link"},
		{name: "dockerd asks twice", steps: []step{file(t, "A"), req(t, 0), req(t, 0)}, err: "asked twice"},
		{name: "dockerd asks for a file never stated", steps: []step{req(t, 0)}, err: "file id 0 was never stated"},
		{name: "dockerd ends twice", steps: []step{receiverFIN(t), receiverFIN(t)}, err: "FIN twice"},
		{
			name:  "message after the client's FIN",
			steps: []step{file(t, "A"), listed(t), receiverFIN(t), senderFIN(t), data(t, 0, "x")},
			err:   "after the end of the transfer",
		},
		{
			name:  "message after the client's ERR",
			steps: []step{file(t, "A"), {fromSender: true, msg: packet(t, &types.Packet{Type: types.Packet_PACKET_ERR, Data: []byte("walk failed")}), senderErr: "walk failed"}, file(t, "B")},
			err:   "after the end of the transfer",
		},
		{
			name:  "listing larger than allowed",
			opts:  []Option{WithMaxListing(20)},
			steps: []step{file(t, "A"), statOf(t, "B", modeSymlink, strings.Repeat("x/", 10))},
			err:   "listing is larger than 20 bytes",
		},
		{name: "more entries than allowed", opts: []Option{WithMaxEntries(2)}, steps: []step{file(t, "A"), file(t, "B"), file(t, "C")}, err: "more than 2 entries"},

		// What the Reader follows.
		{
			name:   "hard link stated before its content passes",
			wanted: []string{"Dockerfile"},
			steps: []step{
				file(t, "A"), statOf(t, "Dockerfile", modeFile, "A"), listed(t), req(t, 0),
				data(t, 0, "FROM a"), data(t, 0, "", "Dockerfile"), receiverFIN(t), senderFIN(t),
			},
			files: map[string]want{"Dockerfile": {"A", "FROM a"}},
		},
		{
			name:   "link to a wanted file already whole completes it on its STAT",
			wanted: []string{"Dockerfile", "Dockerfile.dockerignore"},
			steps: []step{
				file(t, "Dockerfile"), req(t, 0), data(t, 0, "FROM a"), data(t, 0, "", "Dockerfile"),
				completing(statOf(t, "Dockerfile.dockerignore", modeSymlink, "Dockerfile"), "Dockerfile.dockerignore"),
				listed(t), receiverFIN(t), senderFIN(t),
			},
			files: map[string]want{"Dockerfile": {"Dockerfile", "FROM a"}, "Dockerfile.dockerignore": {"Dockerfile", "FROM a"}},
		},
		{
			name:   "symbolic link's .. stops at the dir's root",
			wanted: []string{"Dockerfile"},
			steps: []step{
				statOf(t, "Dockerfile", modeSymlink, "../../../etc/Dockerfile"), statOf(t, "etc", modeDir, ""), file(t, "etc/Dockerfile"),
				listed(t), req(t, 2), data(t, 2, "FROM a"), data(t, 2, "", "Dockerfile"), receiverFIN(t), senderFIN(t),
			},
			files: map[string]want{"Dockerfile": {"etc/Dockerfile", "FROM a"}},
		},
		{
			name:   "wanted name given as /Dockerfile",
			wanted: []string{"/Dockerfile"},
			steps:  []step{file(t, "Dockerfile"), listed(t), req(t, 0), data(t, 0, "", "Dockerfile"), receiverFIN(t), senderFIN(t)},
			files:  map[string]want{"Dockerfile": {"Dockerfile", ""}},
		},
		{
			name:    "wanted name is a directory: missing",
			wanted:  []string{"Dockerfile"},
			steps:   []step{statOf(t, "Dockerfile", modeDir, ""), file(t, "Dockerfile/x"), listed(t), receiverFIN(t), senderFIN(t)},
			files:   map[string]want{},
			missing: []string{"Dockerfile"},
		},
		{
			name:    "wanted name is a device: missing",
			wanted:  []string{"Dockerfile"},
			steps:   []step{statOf(t, "Dockerfile", modeDevice, ""), listed(t), receiverFIN(t), senderFIN(t)},
			files:   map[string]want{},
			missing: []string{"Dockerfile"},
		},
		{
			name:    "wanted name links to a device: missing",
			wanted:  []string{"Dockerfile"},
			steps:   []step{statOf(t, "Dockerfile", modeSymlink, "zero"), statOf(t, "zero", modeDevice, ""), listed(t), receiverFIN(t), senderFIN(t)},
			files:   map[string]want{},
			missing: []string{"Dockerfile"},
		},
		{
			name:    "wanted file requested but not whole at the end: missing",
			wanted:  []string{"Dockerfile"},
			steps:   []step{file(t, "Dockerfile"), listed(t), req(t, 0), data(t, 0, "FROM a"), receiverFIN(t), senderFIN(t)},
			files:   map[string]want{},
			missing: []string{"Dockerfile"},
		},
		{
			name:   "dangling symbolic link: nothing to judge, nothing missing",
			wanted: []string{"Dockerfile"},
			steps:  []step{statOf(t, "Dockerfile", modeSymlink, "nowhere"), listed(t), receiverFIN(t), senderFIN(t)},
			files:  map[string]want{},
		},
		{
			name:   "wanted path under a regular file cannot exist",
			wanted: []string{"a/Dockerfile"},
			steps:  []step{file(t, "a"), listed(t), receiverFIN(t), senderFIN(t)},
			files:  map[string]want{},
		},
		{
			name:   "dockerd gives up",
			wanted: []string{"Dockerfile"},
			steps:  []step{file(t, "Dockerfile"), receiverOf(t, &types.Packet{Type: types.Packet_PACKET_ERR, Data: []byte("disk full")})},
			files:  map[string]want{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.wanted, tc.opts...)
			files := make(map[string]want)
			var missing []string
			for i, s := range tc.steps {
				last := i == len(tc.steps)-1
				var ev Event
				var err error
				if s.fromSender {
					ev, err = r.FromSender(s.msg)
				} else {
					err = r.FromReceiver(s.msg)
				}
				if last && tc.err != "" {
					if err == nil || !strings.Contains(err.Error(), tc.err) {
						t.Fatalf("step %d: error %v, want one with %q", i, err, tc.err)
					}
					// An error stays: the next message gets it too.
					if _, again := r.FromSender(packet(t, &types.Packet{Type: types.Packet_PACKET_STAT})); again == nil || again.Error() != err.Error() {
						t.Fatalf("after the error, the next message got %v", again)
					}
					return
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				var names []string
				for _, f := range ev.Complete {
					names = append(names, f.Name)
					files[f.Name] = want{f.Path, string(f.Content)}
				}
				if !reflect.DeepEqual(names, s.complete) {
					t.Fatalf("step %d completes %q, want %q", i, names, s.complete)
				}
				if ev.SenderError != s.senderErr {
					t.Fatalf("step %d: sender error %q, want %q", i, ev.SenderError, s.senderErr)
				}
				if ev.Finished {
					missing = ev.Missing
				}
			}
			if tc.err != "" {
				return
			}
			if tc.files != nil && !reflect.DeepEqual(files, tc.files) {
				t.Errorf("files: got %v, want %v", files, tc.files)
			}
			if !reflect.DeepEqual(missing, tc.missing) {
				t.Errorf("missing: got %q, want %q", missing, tc.missing)
			}
		})
	}
}
