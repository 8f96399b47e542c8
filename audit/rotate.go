package audit

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// RotateOptions configure the built-in rotation of a file sink.
//
// When the file has reached MaxSize bytes, or its first segment header is
// MaxAge old, the next record first rotates it: the file is renamed to
// NAME.<UTC timestamp> (NAME.20261126T203621.123456789Z, names that sort in
// the order they were written), a new NAME is created, and its first line
// is a segment header with "reason":"rotate" that continues the chain from
// the last line of the renamed file. A record is never split between files,
// written twice or lost by a rotation: it happens under the Logger's lock,
// between two records. With Compress, the renamed file is then gzipped in
// the background to NAME.<timestamp>.gz and removed.
//
// Age is checked when a record is written: an idle log is rotated by the
// first record after MaxAge, not at MaxAge.
type RotateOptions struct {
	MaxSize  int64         // bytes; 0: no size limit
	MaxAge   time.Duration // 0: no age limit
	Compress bool
	// OnRotate is told of each rotation (the renamed file) and of each
	// compression that failed (err). Called with the Logger's lock held
	// for a rotation, from the compressing goroutine for an error.
	OnRotate func(rotated string, err error)
}

// fileSink is the audit file: it counts what is written to it and can be
// closed and reopened under the same name by a rotation.
type fileSink struct {
	path   string
	f      *os.File
	size   int64
	opened time.Time // when the current file was started
	o      RotateOptions
	closed bool
	wg     sync.WaitGroup // compressions in flight
}

func openFileSink(path string, o RotateOptions, now time.Time) (*fileSink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &fileSink{path: path, f: f, size: fi.Size(), opened: now, o: o}
	if s.size > 0 {
		if t, ok := firstHeaderTime(path); ok {
			s.opened = t
		}
	}
	return s, nil
}

// firstHeaderTime is the time of the segment header that starts the file
// at path: when the Logger started it.
func firstHeaderTime(path string) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(io.LimitReader(f, 64<<10), 64<<10).ReadSlice('\n')
	if err != nil || lineType(line) != SegmentType {
		return time.Time{}, false
	}
	var h segmentHeader
	if json.Unmarshal(line, &h) != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, h.Time)
	return t, err == nil
}

// Write writes to the current file, reopening it first when a rotation
// could not.
func (s *fileSink) Write(p []byte) (int, error) {
	if s.closed {
		return 0, os.ErrClosed
	}
	if s.f == nil {
		if err := s.create(); err != nil {
			return 0, err
		}
	}
	n, err := s.f.Write(p)
	if err != nil && n > 0 {
		// A full disk took the start of the line: take it back, so that
		// each failed write does not leave a torn line behind.
		if s.f.Truncate(s.size) == nil {
			n = 0
		}
	}
	s.size += int64(n)
	return n, err
}

func (s *fileSink) create() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.size = f, fi.Size()
	return nil
}

// due says whether the file is to be rotated before the next record.
func (s *fileSink) due(now time.Time) bool {
	if s.f == nil || s.size == 0 {
		return false
	}
	return (s.o.MaxSize > 0 && s.size >= s.o.MaxSize) || (s.o.MaxAge > 0 && now.Sub(s.opened) >= s.o.MaxAge)
}

// Close waits for compressions and closes the file.
func (s *fileSink) Close() error {
	s.wg.Wait()
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// rotateLocked renames the current file and starts the next one with a
// header chained to the last line written. A rename that fails leaves the
// file in place (rotation is tried again at the next record); a new file
// that cannot be created or whose header cannot be written makes the sink
// fail like any write, and the header stays pending.
func (cw *chainWriter) rotateLocked() {
	s := cw.rot
	now := cw.now()
	if err := s.f.Sync(); err != nil {
		cw.failLocked(err)
		return
	}
	name := s.path + "." + now.UTC().Format("20060102T150405.000000000Z")
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			break
		}
		name = s.path + "." + now.UTC().Format("20060102T150405.000000000Z") + "-" + strconv.Itoa(i)
	}
	if err := os.Rename(s.path, name); err != nil {
		s.opened = now // try again after another MaxAge, or at the next record for size
		if s.o.OnRotate != nil {
			s.o.OnRotate("", fmt.Errorf("rotating %s: %w", s.path, err))
		}
		return
	}
	s.f.Close()
	s.f, s.size, s.opened = nil, 0, now
	if s.o.OnRotate != nil {
		s.o.OnRotate(name, nil)
	}
	if s.o.Compress {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := compressFile(name); err != nil && s.o.OnRotate != nil {
				s.o.OnRotate(name, fmt.Errorf("compressing %s: %w", name, err))
			}
		}()
	}
	if err := cw.writeHeaderLocked("rotate"); err != nil {
		cw.failLocked(err)
		return
	}
	cw.okLocked()
}

// compressFile gzips name to name.gz and removes name. The .gz appears
// under its name only once it is whole (written to name.gz.tmp, synced,
// renamed).
func compressFile(name string) (err error) {
	in, err := os.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := name + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	zw := gzip.NewWriter(out)
	if _, err = io.Copy(zw, in); err != nil {
		return err
	}
	if err = zw.Close(); err != nil {
		return err
	}
	if err = out.Sync(); err != nil {
		return err
	}
	if err = out.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, name+".gz"); err != nil {
		return err
	}
	return os.Remove(name)
}
