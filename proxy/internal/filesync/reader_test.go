package filesync

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"
	"google.golang.org/protobuf/proto"
)

// node is one entry of a test's source dir: a file with content, or a
// symbolic link, or an empty directory.
type node struct {
	content string
	link    string
	dir     bool
}

func makeTree(t testing.TB, tree map[string]node) string {
	t.Helper()
	root := t.TempDir()
	paths := make([]string, 0, len(tree))
	for p := range tree {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		n := tree[p]
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case n.dir:
			err = os.MkdirAll(full, 0o755)
		case n.link != "":
			err = os.Symlink(n.link, full)
		default:
			err = os.WriteFile(full, []byte(n.content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// want is what a test expects of one wanted name: the path its content
// was stated at and the content.
type want struct {
	path    string
	content string
}

var (
	dockerfile     = "FROM alpine:3.20\nRUN true\n"
	dockerignore   = "*.log\n"
	bigDockerfile  = "FROM alpine:3.20\n" + strings.Repeat("RUN echo a long line to make the file longer than one chunk\n", 4000)
	bigContextFile = strings.Repeat("x", 3<<20)
	dockerfileDir  = []string{"Dockerfile", "Dockerfile.dockerignore"}
)

func TestReaderFollowsRealTransfers(t *testing.T) {
	tests := []struct {
		name string
		tree map[string]node
		// wanted is followpaths; include is the sender's include
		// patterns (nil: the whole dir, as for a build context).
		wanted  []string
		include []string
		// again: a second transfer into the same dest, with this differ,
		// is the one judged.
		again   bool
		differ  fsutil.DiffType
		files   map[string]want
		missing []string
		// sendAll: the sender sends the whole dir, not only followpaths.
		sendAll bool
		// chunks: the transfer must carry at least this many DATA
		// packets with content, or the case tests less than it says.
		chunks int
	}{
		{
			name:    "Dockerfile and its .dockerignore",
			tree:    map[string]node{"Dockerfile": {content: dockerfile}, "Dockerfile.dockerignore": {content: dockerignore}},
			wanted:  dockerfileDir,
			include: dockerfileDir,
			files: map[string]want{
				"Dockerfile":              {"Dockerfile", dockerfile},
				"Dockerfile.dockerignore": {"Dockerfile.dockerignore", dockerignore},
			},
		},
		{
			name:    "Dockerfile larger than one DATA chunk",
			tree:    map[string]node{"Dockerfile": {content: bigDockerfile}},
			wanted:  dockerfileDir,
			include: dockerfileDir,
			files:   map[string]want{"Dockerfile": {"Dockerfile", bigDockerfile}},
			chunks:  2,
		},
		{
			name: "Dockerfile in a context with other files",
			tree: map[string]node{
				"Dockerfile":      {content: dockerfile},
				"big.bin":         {content: bigContextFile},
				"src/main.go":     {content: "package main\n"},
				"src/Dockerfile":  {content: "FROM evil\n"},
				"empty":           {dir: true},
				"zz/Dockerfile.x": {content: "FROM other\n"},
			},
			wanted:  []string{"Dockerfile"},
			sendAll: true,
			files:   map[string]want{"Dockerfile": {"Dockerfile", dockerfile}},
			chunks:  10,
		},
		{
			name: "custom Dockerfile name in a subdir, named with ./",
			tree: map[string]node{
				"ci/build.Dockerfile": {content: dockerfile},
				"ci/other":            {content: "nope"},
			},
			wanted:  []string{"./ci/build.Dockerfile", "./ci/build.Dockerfile.dockerignore"},
			include: []string{"ci/build.Dockerfile", "ci/build.Dockerfile.dockerignore"},
			files:   map[string]want{"ci/build.Dockerfile": {"ci/build.Dockerfile", dockerfile}},
		},
		{
			name: "Dockerfile is a symlink into a subdir",
			tree: map[string]node{
				"Dockerfile":             {link: "docker/real.Dockerfile"},
				"docker/real.Dockerfile": {content: dockerfile},
			},
			wanted:  dockerfileDir,
			include: dockerfileDir,
			files:   map[string]want{"Dockerfile": {"docker/real.Dockerfile", dockerfile}},
		},
		{
			name: "Dockerfile is an absolute symlink, read within the dir",
			tree: map[string]node{
				"Dockerfile":             {link: "/docker/real.Dockerfile"},
				"docker/real.Dockerfile": {content: dockerfile},
			},
			wanted: []string{"Dockerfile"},
			files:  map[string]want{"Dockerfile": {"docker/real.Dockerfile", dockerfile}},
		},
		{
			name: "Dockerfile under a symlinked directory",
			tree: map[string]node{
				"build":             {link: "docker"},
				"docker/Dockerfile": {content: dockerfile},
			},
			wanted:  []string{"build/Dockerfile"},
			include: []string{"build/Dockerfile"},
			files:   map[string]want{"build/Dockerfile": {"docker/Dockerfile", dockerfile}},
		},
		{
			name:    "no .dockerignore: the name never stated is not missing",
			tree:    map[string]node{"Dockerfile": {content: dockerfile}},
			wanted:  dockerfileDir,
			include: dockerfileDir,
			files:   map[string]want{"Dockerfile": {"Dockerfile", dockerfile}},
		},
		{
			name:    "dockerd already has the files (metadata differ): missing",
			tree:    map[string]node{"Dockerfile": {content: dockerfile}, "Dockerfile.dockerignore": {content: dockerignore}},
			wanted:  dockerfileDir,
			include: dockerfileDir,
			again:   true,
			differ:  fsutil.DiffMetadata,
			files:   map[string]want{},
			missing: dockerfileDir,
		},
		{
			name:    "dockerd asks again without a differ",
			tree:    map[string]node{"Dockerfile": {content: dockerfile}},
			wanted:  dockerfileDir,
			include: dockerfileDir,
			again:   true,
			differ:  fsutil.DiffNone,
			files:   map[string]want{"Dockerfile": {"Dockerfile", dockerfile}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := makeTree(t, tc.tree)
			dest := t.TempDir()
			opt := syncOpt{include: tc.include, follow: tc.wanted, differ: tc.differ}
			if tc.sendAll {
				opt.follow = nil
			}
			msgs := transfer(t, src, dest, opt)
			if tc.again {
				msgs = transfer(t, src, dest, opt)
			}
			if got := dataChunks(t, msgs); got < tc.chunks {
				t.Fatalf("the transfer has %d DATA packets with content, want at least %d", got, tc.chunks)
			}

			r := NewReader(tc.wanted)
			out := replay(t, r, msgs)
			if !out.finished {
				t.Fatal("the transfer never finished")
			}
			got := make(map[string]want)
			for name, f := range out.files {
				got[name] = want{f.Path, string(f.Content)}
			}
			if !reflect.DeepEqual(got, tc.files) {
				t.Errorf("files:\n got %v\nwant %v", abbreviate(got), abbreviate(tc.files))
			}
			if !reflect.DeepEqual(out.missing, tc.missing) {
				t.Errorf("missing: got %q, want %q", out.missing, tc.missing)
			}
			// What dockerd got is what the Reader saw.
			for name, f := range out.files {
				onDisk, err := os.ReadFile(filepath.Join(dest, f.Path))
				if err != nil {
					t.Fatalf("%s as dockerd has it: %v", name, err)
				}
				if string(onDisk) != string(f.Content) {
					t.Errorf("%s: dockerd has %d bytes, the Reader saw %d", name, len(onDisk), len(f.Content))
				}
			}
			// Bounded memory: only the wanted files' content is kept.
			var wantKept int64
			seen := make(map[string]bool)
			for _, f := range out.files {
				if !seen[f.Path] {
					seen[f.Path] = true
					wantKept += int64(len(f.Content))
				}
			}
			if r.kept != wantKept {
				t.Errorf("kept %d bytes, want %d (the wanted files only)", r.kept, wantKept)
			}
		})
	}
}

func dataChunks(t *testing.T, msgs []message) int {
	t.Helper()
	n := 0
	for _, m := range msgs {
		var p types.Packet
		if err := proto.Unmarshal(m.bytes, &p); err != nil {
			t.Fatal(err)
		}
		if p.Type == types.Packet_PACKET_DATA && len(p.Data) > 0 {
			n++
		}
	}
	return n
}

func abbreviate(m map[string]want) map[string]want {
	out := make(map[string]want, len(m))
	for k, v := range m {
		if len(v.content) > 40 {
			v.content = v.content[:40] + "…"
		}
		out[k] = v
	}
	return out
}
