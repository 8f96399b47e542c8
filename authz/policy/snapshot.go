package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/dockgate/dockgate/internal/signature"
)

// File is one file of a policy as it was read: its name in the
// policy directory and the hex SHA-256 of its bytes.
type File struct {
	Name   string
	SHA256 string
}

// Snapshot is every file a policy directory's policy is made of,
// read whole into memory: what Load parses is exactly what was read, and
// ReadSnapshot only returns a snapshot whose files read the same
// twice in a row, so that a file being written, or a set of files being
// replaced one by one, is never taken for a policy.
type Snapshot struct {
	// Source is the directory read.
	Source string
	// Files are model.conf first when present, then the *.csv files in
	// lexical order, then the key files (keys/<name>.pub).
	Files []File
	data  [][]byte
}

// snapshotAttempts bounds how often ReadSnapshot starts again when
// the files change while it reads them; snapshotPause is the pause before
// the next attempt, grown each time, so that a writer can finish.
const (
	snapshotAttempts = 5
	snapshotPause    = 50 * time.Millisecond
)

// ReadSnapshot reads the policy directory dir: every file the
// policy is made of, then every file again. Only when both reads hold the
// same files with the same digests is the first one returned; otherwise
// it pauses and tries again, and after snapshotAttempts it gives up with
// an error rather than load what may be a half-written policy.
func ReadSnapshot(dir string) (*Snapshot, error) {
	if st, err := os.Stat(dir); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, Errors{{Path: dir, Msg: err.Error()}}
	} else if !st.IsDir() {
		return nil, Errors{{Path: dir, Msg: "not a directory"}}
	}
	return readStableSnapshot(os.DirFS(dir), dir, snapshotPause)
}

// readStableSnapshot is ReadSnapshot's loop over fsys.
func readStableSnapshot(fsys fs.FS, dir string, pause time.Duration) (*Snapshot, error) {
	for attempt := 1; ; attempt++ {
		first, err := readSnapshotFS(fsys, dir)
		if err != nil {
			return nil, err
		}
		again, err := readSnapshotFS(fsys, dir)
		if err != nil {
			return nil, err
		}
		if first.sameFiles(again) {
			return first, nil
		}
		if attempt == snapshotAttempts {
			return nil, Errors{{Path: dir, Msg: fmt.Sprintf("the policy files changed while they were read, "+
				"%d times in a row: not loaded (write each file elsewhere and rename it into place)", snapshotAttempts)}}
		}
		time.Sleep(time.Duration(attempt) * pause)
	}
}

// sameFiles says whether two snapshots hold the same files with the same
// digests.
func (s *Snapshot) sameFiles(o *Snapshot) bool {
	if len(s.Files) != len(o.Files) {
		return false
	}
	for i := range s.Files {
		if s.Files[i] != o.Files[i] {
			return false
		}
	}
	return true
}

// readSnapshotFS reads the policy files at the root of fsys once. Problems
// with files (unreadable, none at all) are Errors named after source.
func readSnapshotFS(fsys fs.FS, source string) (*Snapshot, error) {
	pathOf := func(name string) string {
		if name == "" {
			return source
		}
		return path.Join(source, name)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, Errors{{Path: source, Msg: err.Error()}}
	}
	var errs Errors
	var names []string
	hasModel := false
	for _, e := range entries {
		name := e.Name()
		if !isPolicyFileName(name) {
			continue
		}
		st, err := fs.Stat(fsys, name)
		if err != nil {
			errs = append(errs, &Error{Path: pathOf(name), Msg: err.Error()})
			continue
		}
		if !st.Mode().IsRegular() {
			continue
		}
		if name == modelFile {
			hasModel = true
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 && len(errs) == 0 {
		errs = append(errs, &Error{Path: source, Msg: "no *.csv policy files"})
	}
	if hasModel {
		names = append([]string{modelFile}, names...)
	}
	keyNames, keyErrs := readKeyNames(fsys, pathOf)
	names, errs = append(names, keyNames...), append(errs, keyErrs...)
	s := &Snapshot{Source: source}
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, &Error{Path: pathOf(name), Msg: err.Error()})
			continue
		}
		sum := sha256.Sum256(data)
		s.Files = append(s.Files, File{Name: name, SHA256: hex.EncodeToString(sum[:])})
		s.data = append(s.data, data)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// keysDir is the directory of a policy's public keys (docs/supply-chain.md):
// its files are part of the policy, named keys/<name>.pub in a snapshot.
const keysDir = "keys"

// readKeyNames lists the key files of the policy at the root of fsys, in
// lexical order; no keys directory is no keys.
func readKeyNames(fsys fs.FS, pathOf func(string) string) ([]string, Errors) {
	entries, err := fs.ReadDir(fsys, keysDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, Errors{{Path: pathOf(keysDir), Msg: err.Error()}}
	}
	var names []string
	var errs Errors
	for _, e := range entries {
		if !signature.IsKeyFile(e.Name()) {
			continue
		}
		name := path.Join(keysDir, e.Name())
		st, err := fs.Stat(fsys, name)
		if err != nil {
			errs = append(errs, &Error{Path: pathOf(name), Msg: err.Error()})
			continue
		}
		if st.Mode().IsRegular() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, errs
}

// isPolicyFileName says whether a directory entry is part of a policy:
// model.conf and *.csv, not hidden. Everything else in the directory
// (editor swap and backup files such as .ci.csv.swp, ci.csv~, #ci.csv#,
// sed's temporary files, notes) is neither read nor watched.
func isPolicyFileName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	return name == modelFile || strings.HasSuffix(name, ".csv")
}
