package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
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
// its request), in the order of the trail and valid only during the
// call: its strings share the memory of a whole batch of lines, so clone
// what is kept after it (strings.Clone), or that memory is kept too.
// Policy records and segment headers are passed over. Unlike Query,
// which skips what it cannot read (verify reports it), every line that
// is not part of the trail goes to opt.Bad: a tool that judges a trail
// must not take a line it could not read for a request that never
// happened.
//
// Decoding is most of the cost of reading a trail, so lines are decoded
// in batches on every CPU while fn, called from the caller's goroutine,
// sees them one by one in order.
func ReadTrail(paths []string, opt TrailOptions, fn func(e *Entry) error) error {
	for _, p := range paths {
		r, err := OpenLog(p)
		if err != nil {
			return err
		}
		err = readTrail(p, r, &opt, fn)
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// trailBatch is a run of lines of one file, decoded by a worker.
type trailBatch struct {
	buf   []byte
	ends  []int // line i is buf[ends[i-1]:ends[i]]
	first int   // the line number of line 0
	// what each line is once decoded: an entry (its index in entries),
	// a line to pass over, or a bad line (why).
	kinds   []lineKind
	entries []Entry
	whys    []string
	done    chan struct{}
}

type lineKind uint8

const (
	lineSkip lineKind = iota
	lineEntry
	lineBad
)

const trailBatchLines = 512

func (b *trailBatch) decode(opt *TrailOptions) {
	defer close(b.done)
	b.kinds, b.entries = make([]lineKind, 0, len(b.ends)), make([]Entry, 0, len(b.ends))
	start := 0
	var e Entry
	for _, end := range b.ends {
		line := b.buf[start:end]
		start = end
		kind, why := classify(line, opt, &e)
		b.kinds = append(b.kinds, kind)
		switch kind {
		case lineEntry:
			b.entries = append(b.entries, e)
		case lineBad:
			b.whys = append(b.whys, why)
		}
	}
}

// classify reads one line of a trail into e.
func classify(line []byte, opt *TrailOptions, e *Entry) (lineKind, string) {
	switch lineType(line) {
	case "audit":
	case SegmentType, PolicyType:
		return lineSkip, ""
	default:
		if len(bytes.TrimSpace(line)) == 0 {
			return lineSkip, ""
		}
		return lineBad, ErrNotRecord.Error()
	}
	if err := decodeEntryShared(line, e); err != nil {
		return lineBad, "a record that does not decode: " + err.Error()
	}
	if e.Type != "audit" || e.Phase == PhaseStart {
		return lineSkip, ""
	}
	if (!opt.Since.IsZero() && e.Time.Before(opt.Since)) || (!opt.Until.IsZero() && !e.Time.Before(opt.Until)) {
		return lineSkip, ""
	}
	return lineEntry, ""
}

func readTrail(name string, r io.Reader, opt *TrailOptions, fn func(e *Entry) error) error {
	workers := max(1, runtime.GOMAXPROCS(0))
	work := make(chan *trailBatch, workers)
	order := make(chan *trailBatch, 2*workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				b.decode(opt)
			}
		}()
	}
	// The reader splits the file into batches, handing each to a worker
	// and, in order, to the consumer below.
	var readErr error
	go func() {
		defer close(order)
		defer close(work)
		lr := newLineReader(r)
		// Each batch gets a buffer of the size the last one needed, so
		// that lines are copied once, not again at every growth.
		newBatch := func(first, size int) *trailBatch {
			return &trailBatch{first: first, done: make(chan struct{}), buf: make([]byte, 0, size), ends: make([]int, 0, trailBatchLines)}
		}
		b := newBatch(1, 64<<10)
		send := func() bool {
			select {
			case order <- b:
			case <-stop:
				return false
			}
			work <- b
			return true
		}
		for {
			line, ok := lr.next()
			if !ok {
				break
			}
			select {
			case <-stop:
				// The consumer stopped: read no further than this
				// line, whatever is left of the input.
				return
			default:
			}
			b.buf = append(b.buf, line...)
			b.ends = append(b.ends, len(b.buf))
			if len(b.ends) == trailBatchLines {
				if !send() {
					return
				}
				b = newBatch(lr.line+1, len(b.buf)+len(b.buf)/8)
			}
		}
		if len(b.ends) > 0 && !send() {
			return
		}
		if err := lr.err(); err != nil {
			readErr = fmt.Errorf("%s: %w", name, err)
		}
	}()

	err := consumeTrail(name, order, opt, fn)
	if err != nil {
		close(stop)
		for b := range order {
			<-b.done // let the workers finish what they hold
		}
	}
	wg.Wait()
	if err == nil {
		err = readErr // written before order was closed
	}
	return err
}

// consumeTrail gives the batches' records to fn and their bad lines to
// opt.Bad, in the order of the file.
func consumeTrail(name string, order <-chan *trailBatch, opt *TrailOptions, fn func(e *Entry) error) error {
	for b := range order {
		<-b.done
		ei, wi := 0, 0
		for i, k := range b.kinds {
			switch k {
			case lineEntry:
				e := &b.entries[ei]
				ei++
				e.File, e.Line = name, b.first+i
				if err := fn(e); err != nil {
					return err
				}
			case lineBad:
				bad := BadLine{File: name, Line: b.first + i, Err: b.whys[wi]}
				wi++
				if opt.Bad == nil {
					return bad
				}
				if err := opt.Bad(bad); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
