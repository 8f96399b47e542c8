package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
)

// MaxLineBytes bounds one line read back from an audit file.
const MaxLineBytes = 16 << 20

// OpenLog opens an audit file for reading, "-" being stdin; gzip-compressed
// files (rotated ones) are read transparently, known by their magic bytes.
func OpenLog(path string) (io.ReadCloser, error) {
	var f *os.File
	if path == "-" {
		f = os.Stdin
	} else {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, err
		}
	}
	br := bufio.NewReaderSize(f, 256<<10)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return &gzipFile{zr: zr, f: f}, nil
	}
	return &plainFile{r: br, f: f}, nil
}

type plainFile struct {
	r *bufio.Reader
	f *os.File
}

func (p *plainFile) Read(b []byte) (int, error) { return p.r.Read(b) }
func (p *plainFile) Close() error {
	if p.f == os.Stdin {
		return nil
	}
	return p.f.Close()
}

type gzipFile struct {
	zr *gzip.Reader
	f  *os.File
}

func (g *gzipFile) Read(b []byte) (int, error) { return g.zr.Read(b) }
func (g *gzipFile) Close() error {
	g.zr.Close()
	if g.f == os.Stdin {
		return nil
	}
	return g.f.Close()
}

// lineReader reads lines split on "\n" only (a "\r" is part of the line:
// verifying must see every byte), and says whether the last line lacked its
// newline.
type lineReader struct {
	sc           *bufio.Scanner
	line         int
	unterminated bool
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{sc: bufio.NewScanner(r)}
	lr.sc.Buffer(make([]byte, 0, 256<<10), MaxLineBytes)
	lr.sc.Split(lr.split)
	return lr
}

func (lr *lineReader) split(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		lr.unterminated = true
		return len(data), data, nil
	}
	return 0, nil, nil
}

// next returns the next line (valid until the next call), or false at the
// end or on an error, which err then reports.
func (lr *lineReader) next() ([]byte, bool) {
	if !lr.sc.Scan() {
		return nil, false
	}
	lr.line++
	return lr.sc.Bytes(), true
}

func (lr *lineReader) err() error {
	if err := lr.sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return fmt.Errorf("line %d: longer than %d bytes", lr.line+1, MaxLineBytes)
		}
		return err
	}
	return nil
}
