package audit

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// TrailOptions say which request records ReadTrail gives and what it does
// with lines that are not records.
type TrailOptions struct {
	// Since and Until select records by time: Since <= time < Until; zero
	// is no bound.
	Since, Until time.Time
	// Bad is called with each line that is neither a record, a policy
	// record nor a segment header (a torn line, another program's output,
	// a record that does not decode), with its file and line number. Its
	// error stops the read; nil Bad stops it at the first such line.
	Bad func(BadLine) error
}

// BadLine is a line of a trail that could not be read as a record.
type BadLine struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Err  string `json:"error"`
}

func (b BadLine) Error() string { return fmt.Sprintf("%s:%d: %s", b.File, b.Line, b.Err) }

// ErrNotRecord is why a line that is no line of a trail is bad.
var ErrNotRecord = errors.New("not an audit record")

// ReadTrail streams the request records of the audit files at paths in
// the order given ("-" is stdin; gzip-compressed rotated files are read
// transparently), for the tools that reread a whole trail to judge it
// again or to learn from it (policy replay, suggest). It gives fn the
// record that ends each request (a "phase":"start" record only repeats
// its request), valid only during the call; policy records and segment
// headers are passed over. Unlike Query, which skips what it cannot read
// (verify reports it), every line that is not part of the trail goes to
// opt.Bad: a tool that judges a trail must not take a line it could not
// read for a request that never happened.
func ReadTrail(paths []string, opt TrailOptions, fn func(e *Entry) error) error {
	var e Entry
	for _, p := range paths {
		r, err := OpenLog(p)
		if err != nil {
			return err
		}
		err = readTrail(p, r, &opt, &e, fn)
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func readTrail(name string, r interface{ Read([]byte) (int, error) }, opt *TrailOptions, e *Entry, fn func(e *Entry) error) error {
	lr := newLineReader(r)
	bad := func(why string) error {
		b := BadLine{File: name, Line: lr.line, Err: why}
		if opt.Bad == nil {
			return b
		}
		return opt.Bad(b)
	}
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		switch lineType(line) {
		case "audit":
		case SegmentType, PolicyType:
			continue
		default:
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if err := bad(ErrNotRecord.Error()); err != nil {
				return err
			}
			continue
		}
		if err := decodeEntry(line, e); err != nil {
			if err := bad("a record that does not decode: " + err.Error()); err != nil {
				return err
			}
			continue
		}
		if e.Type != "audit" || e.Phase == PhaseStart {
			continue
		}
		if (!opt.Since.IsZero() && e.Time.Before(opt.Since)) || (!opt.Until.IsZero() && !e.Time.Before(opt.Until)) {
			continue
		}
		e.File, e.Line = name, lr.line
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := lr.err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
