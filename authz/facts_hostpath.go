package authz

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// maxSymlinks bounds symlink resolution, like the kernel's ELOOP limit.
const maxSymlinks = 40

// hostFS resolves host paths the way the kernel will when dockerd (running
// as root, on this host) mounts them. root is "/" in production; tests
// point it at a directory standing for the host's root. sockets says
// which host paths are Docker sockets (facts_socket.go).
type hostFS struct {
	root    string
	sockets DockerSockets
}

// resolve returns the host path p as dockerd will mount it (BRIEF §7 item
// 3): path.Clean'ed first, as dockerd cleans bind sources, then with every
// symlink of its longest existing prefix resolved, also a symlink whose
// target does not exist yet. The part that does not exist is kept as
// cleaned: dockerd creates it (as root) where the resolved prefix points.
// So /var/run/docker.sock and /run/docker.sock resolve alike when /var/run
// links to /run, and /srv/ci/../../etc is /etc.
func (h hostFS) resolve(p string) (string, error) {
	return h.walk(p, nil)
}

// walk is resolve, calling visit for every directory entry the kernel
// will look up on the way (dir is a resolved directory, name the entry
// looked up in it, whether it exists or not): the entries whose
// replacement would redirect the mount. An error from visit stops the
// walk.
func (h hostFS) walk(p string, visit func(dir, name string) error) (string, error) {
	p = path.Clean(p)
	if !path.IsAbs(p) {
		return "", badBody("host path %q is not absolute", p)
	}
	resolved := "/"
	rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		if visit != nil {
			if err := visit(resolved, c); err != nil {
				return "", err
			}
		}
		next := path.Join(resolved, c)
		fi, err := os.Lstat(h.onHost(next))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				// dockerd creates the rest as root, below a directory
				// whose entry c was just visited: nobody but root can
				// put anything in its place afterwards unless the
				// visit said so.
				return path.Join(append([]string{next}, rest...)...), nil
			}
			return "", badBody("cannot resolve host path %q: %v", p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		if links > maxSymlinks {
			return "", badBody("cannot resolve host path %q: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(h.onHost(next))
		if err != nil {
			return "", badBody("cannot resolve host path %q: %v", p, err)
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return resolved, nil
}

// onHost maps a host-absolute path into h.root.
func (h hostFS) onHost(p string) string {
	if h.root == "" || h.root == "/" {
		return p
	}
	return filepath.Join(h.root, filepath.FromSlash(p))
}
