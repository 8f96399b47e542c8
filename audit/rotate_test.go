package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// trailFiles lists a rotated trail in order: the rotated files by name
// (their timestamps), then the current file.
func trailFiles(t *testing.T, path string) []string {
	t.Helper()
	rotated, err := filepath.Glob(path + ".*")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(rotated)
	return append(rotated, path)
}

// requestIDs reads every record's request_id from the files, in order.
func requestIDs(t *testing.T, files []string) []string {
	t.Helper()
	var ids []string
	for _, p := range files {
		f, err := OpenLog(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r struct {
				Type      string `json:"type"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if r.Type == "audit" {
				ids = append(ids, r.RequestID)
			}
		}
		f.Close()
	}
	return ids
}

func writeN(l *Logger, from, n int) {
	for i := from; i < from+n; i++ {
		r := fullRecord()
		r.RequestID = fmt.Sprintf("req-%04d", i)
		l.Write(r)
	}
}

func wantAllOnce(t *testing.T, ids []string, n int) {
	t.Helper()
	if len(ids) != n {
		t.Fatalf("%d records in the trail, want %d", len(ids), n)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("record %s written twice", id)
		}
		seen[id] = true
	}
}

func TestRotateBySize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	var rotated []string
	o := Options{Rotate: RotateOptions{MaxSize: 4096, OnRotate: func(name string, err error) {
		if err != nil {
			t.Errorf("rotation: %v", err)
		}
		rotated = append(rotated, name)
	}}}
	l, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	writeN(l, 0, 60)
	l.Close()
	// A restart continues the current file and rotates it on.
	l, err = Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	writeN(l, 60, 40)
	l.Close()

	files := trailFiles(t, path)
	if len(files) < 10 || len(rotated) != len(files)-1 {
		t.Fatalf("files %v, rotations reported %v", files, rotated)
	}
	for _, f := range files[:len(files)-1] {
		fi, _ := os.Stat(f)
		if fi.Size() > 4096+2048 {
			t.Errorf("%s is %d bytes: not rotated at 4096", f, fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", f, fi.Mode().Perm())
		}
	}
	// Each new file starts with a rotate header continuing the chain.
	first := readLines(t, files[1])[0]
	if !strings.Contains(first, `"reason":"rotate"`) {
		t.Fatalf("the second file starts with %s", first)
	}
	res := mustVerify(t, VerifyOptions{}, files...)
	if res.Records != 100 || res.LastSeq != 100 || res.StartHash != GenesisHash {
		t.Fatalf("%+v", res)
	}
	wantAllOnce(t, requestIDs(t, files), 100)
	// Out of order, or with a file missing, the trail does not verify.
	swapped := append([]string{files[1], files[0]}, files[2:]...)
	if _, err := VerifyFiles(swapped, VerifyOptions{}); err == nil {
		t.Fatal("files out of order verify")
	}
	missing := append([]string{files[0]}, files[2:]...)
	if _, err := VerifyFiles(missing, VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "broken link") {
		t.Fatalf("a missing file: %v", err)
	}
}

func TestRotateByAgeAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	o := Options{Rotate: RotateOptions{MaxAge: time.Hour}}
	l, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	l.cw.now = clock
	l.cw.rot.opened = now
	writeN(l, 0, 3)
	now = now.Add(59 * time.Minute)
	writeN(l, 3, 1)
	if files := trailFiles(t, path); len(files) != 1 {
		t.Fatalf("rotated before MaxAge: %v", files)
	}
	now = now.Add(time.Minute)
	writeN(l, 4, 1) // rotates first
	files := trailFiles(t, path)
	if len(files) != 2 || filepath.Base(files[0]) != "audit.log.20261126T130000.000000000Z" {
		t.Fatalf("files %v", files)
	}
	l.Close()
	// The age of a file is that of its first header: a restart does not
	// start it over.
	now = now.Add(30 * time.Minute)
	l, err = Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	if !l.cw.rot.opened.Equal(time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)) {
		t.Fatalf("restart: file opened at %v", l.cw.rot.opened)
	}
	l.cw.now = clock
	now = now.Add(31 * time.Minute)
	writeN(l, 5, 1)
	l.Close()
	files = trailFiles(t, path)
	if len(files) != 3 {
		t.Fatalf("files %v", files)
	}
	if res := mustVerify(t, VerifyOptions{}, files...); res.Records != 6 {
		t.Fatalf("%+v", res)
	}
}

func TestRotateCompressesAndStaysVerifiable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	key := []byte("0123456789abcdef0123456789abcdef")
	l, err := Open(path, Options{HMACKey: key, Rotate: RotateOptions{MaxSize: 3000, Compress: true}})
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent writers: a rotation happens between two records.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writeN(l, g*100, 50)
		}()
	}
	wg.Wait()
	l.Close() // waits for the compressions
	files := trailFiles(t, path)
	for _, f := range files[:len(files)-1] {
		if !strings.HasSuffix(f, ".gz") {
			t.Fatalf("rotated file %s is not compressed (%v)", f, files)
		}
	}
	if len(files) < 5 {
		t.Fatalf("files %v", files)
	}
	res := mustVerify(t, VerifyOptions{HMACKey: key}, files...)
	if res.Records != 200 || res.LastSeq != 200 {
		t.Fatalf("%+v", res)
	}
	wantAllOnce(t, requestIDs(t, files), 200)
}
