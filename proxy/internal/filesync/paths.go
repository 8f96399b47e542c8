package filesync

import (
	"fmt"
	"path"
	"strings"
)

// maxLinks is how many links the Reader follows on the way to one wanted
// name, as Linux follows at most 40 symbolic links in one lookup.
const maxLinks = 40

// alias is one wanted name on its way to the file that holds it.
type alias struct {
	name  string
	links int // links followed so far
}

// CleanPath cleans a wanted path as fsutil does before it compares it with
// the paths it lists (fsutil followlinks.go: filepath.Join(".", p)): no
// leading slash or "./", no "a/../", no trailing slash.
func CleanPath(p string) string {
	return path.Join(".", p)
}

// checkStatedPath refuses a listed path that fsutil's receiver refuses too
// (fsutil validator.go) or would count differently from us.
func checkStatedPath(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("the client stated an entry without a path (%q)", p)
	case p != path.Clean(p):
		return fmt.Errorf("the client stated an unclean path %q", p)
	case path.IsAbs(p):
		return fmt.Errorf("the client stated an absolute path %q", p)
	case p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("the client stated a path outside its dir %q", p)
	case p == metadataPath:
		return fmt.Errorf("the client stated %q, which dockerd may leave out of its file ids", p)
	}
	return nil
}

// isWithin tells whether p is dir or below it.
func isWithin(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// linkTarget is where a symbolic link at linkPath leads, as BuildKit
// resolves it when it reads a file of the synced dir: within the dir, an
// absolute target from the dir's root, ".." stopping at the root. "" is the
// root.
func linkTarget(linkPath, linkname string) string {
	var t string
	if path.IsAbs(linkname) {
		t = path.Join("/", linkname)
	} else {
		t = path.Join("/", path.Dir(linkPath), linkname)
	}
	return strings.TrimPrefix(t, "/")
}

// place puts wanted names that lead to target where they belong now: on a
// stated file, or waiting for the path to be stated. A symbolic link on
// the way (target itself or a directory above it) sends them on to where
// it leads; a hard link sends them to the file it links.
func (r *Reader) place(names []alias, target string) ([]File, error) {
	if target == "" {
		// The dir itself is no file; dockerd finds nothing to read there.
		return nil, nil
	}
	// Walk down to target; a symbolic link on the way sends the names on
	// with the rest of their path.
	e := r.root
	for rest := target; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		next, ok := e.children[name]
		if !ok {
			r.want[target] = append(r.want[target], names...)
			return nil, nil
		}
		e = next
		if rest == "" {
			break
		}
		switch e.kind {
		case directory:
		case symlink:
			next, err := follow(names, e.path)
			if err != nil {
				return nil, err
			}
			return r.place(next, path.Join(linkTarget(e.path, e.link), rest))
		default:
			// A file where a directory should be: the path cannot exist,
			// and the receiver refuses an entry stated below it.
			return nil, nil
		}
	}
	switch e.kind {
	case symlink:
		next, err := follow(names, target)
		if err != nil {
			return nil, err
		}
		return r.place(next, linkTarget(target, e.link))
	case hardlink:
		next, err := follow(names, target)
		if err != nil {
			return nil, err
		}
		return r.place(next, e.link)
	case regular:
		if len(e.names) == 0 && (e.passed > 0 || e.complete) {
			return nil, fmt.Errorf("content of %q passed before a link named it as %q", e.path, names[0].name)
		}
		e.names = append(e.names, names...)
		if e.complete {
			return e.files(names), nil
		}
		return nil, nil
	default:
		// A directory or special file: stated, with no content to judge;
		// the names are missing when the transfer ends.
		e.names = append(e.names, names...)
		return nil, nil
	}
}

// follow counts one more link for each name.
func follow(names []alias, at string) ([]alias, error) {
	next := make([]alias, len(names))
	for i, n := range names {
		if n.links >= maxLinks {
			return nil, fmt.Errorf("more than %d links on the way to %q (at %q)", maxLinks, n.name, at)
		}
		next[i] = alias{name: n.name, links: n.links + 1}
	}
	return next, nil
}
