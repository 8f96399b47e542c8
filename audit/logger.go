package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Logger writes audit records as JSON lines, one per record, each marked
// "type":"audit" so that they stand apart from dockgate's own log lines.
type Logger struct {
	zl       zerolog.Logger
	cw       *chainWriter
	closer   io.Closer
	failOpen atomic.Bool
}

// NewLogger writes records to w, hash-chained (see chain.go) from
// GenesisHash with seq 1.
func NewLogger(w io.Writer, opts ...Options) *Logger {
	o := firstOptions(opts)
	cw := newChainWriter(w, o)
	l := &Logger{zl: zerolog.New(cw), cw: cw}
	l.failOpen.Store(o.FailOpen)
	return l
}

func firstOptions(opts []Options) Options {
	if len(opts) > 0 {
		return opts[0]
	}
	return Options{}
}

// Open opens the audit sink named on the command line: "-" is stdout, else a
// file opened for appending (created 0600: records name users and commands).
// A file starts with a segment header chained to its last complete line,
// so the chain goes on across restarts.
func Open(path string, opts ...Options) (*Logger, error) {
	if path == "" || path == "-" {
		return NewLogger(os.Stdout, opts...), nil
	}
	o := firstOptions(opts)
	f, err := openFileSink(path, o.Rotate, time.Now())
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	tail, err := recoverTail(path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit log: reading its chain: %w", err)
	}
	cw := newChainWriter(f, o)
	if o.Rotate.MaxSize > 0 || o.Rotate.MaxAge > 0 {
		cw.rot = f
	}
	if err := cw.startSegment(tail); err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	l := &Logger{zl: zerolog.New(cw), cw: cw, closer: f}
	l.failOpen.Store(o.FailOpen)
	return l, nil
}

// FailOpen says whether requests go on while the sink fails (Options.FailOpen).
func (l *Logger) FailOpen() bool { return l.failOpen.Load() }

// SetFailOpen changes Options.FailOpen while the logger is in use (a config
// reload); Check answers by it from now on.
func (l *Logger) SetFailOpen(open bool) { l.failOpen.Store(open) }

// Close closes the sink when it is a file (after the compression of
// rotated files in flight), and the shipping sinks.
func (l *Logger) Close() error {
	l.cw.mu.Lock()
	defer l.cw.mu.Unlock()
	var err error
	if l.closer != nil {
		err = l.closer.Close()
	}
	for _, t := range l.cw.tee {
		t.Close()
	}
	return err
}

// Err is why the last write to the sink failed, or nil when it worked.
// It costs one atomic load while the sink works.
func (l *Logger) Err() error { return l.cw.Err() }

// Healthy says whether the last write to the sink worked.
func (l *Logger) Healthy() bool { return !l.cw.broken.Load() }

// Check is asked before a request is served: nil means go on. While the
// sink works it costs one atomic load. After a failure, it probes the sink
// by writing the segment header the failure left pending (which says how
// many records were lost): if that works the sink has recovered and Check
// answers nil; if not, it answers the error (fail closed) or nil (with
// Options.FailOpen, the failure having been reported through OnError).
func (l *Logger) Check() error {
	if !l.cw.broken.Load() || l.failOpen.Load() {
		return nil
	}
	return l.cw.probe()
}

// Write writes one record. Fields are written one by one rather than through
// encoding/json so that the hot path of every request does not reflect.
func (l *Logger) Write(r *Record) {
	// The time is formatted on the stack: Bytes writes it as Str would.
	var tb [40]byte
	e := l.zl.Log().Str("type", "audit").
		Bytes("time", r.Time.UTC().AppendFormat(tb[:0], time.RFC3339Nano)).
		Str("request_id", r.RequestID)
	if r.Phase != "" {
		e = e.Str("phase", r.Phase)
	}
	if r.Caller != nil {
		e = e.Object("caller", r.Caller)
	}
	e = e.Str("method", r.Method).Str("path", r.Path)
	if r.APIVersion != "" {
		e = e.Str("api_version", r.APIVersion)
	}
	e = e.Str("action", r.Action)
	if len(r.Facts) > 0 {
		// A pointer into the record: a slice converted to the
		// interface would be an allocation of its own.
		e = e.Array("facts", (*factList)(&r.Facts))
	}
	e = e.Str("decision", r.Decision)
	if r.WouldDeny {
		e = e.Bool("would_deny", true)
	}
	if r.Reason != "" {
		e = e.Str("reason", r.Reason)
	}
	if r.Outcome != "" {
		e = e.Str("outcome", r.Outcome)
	}
	e = e.Int("status", r.Status).
		Int64("bytes_in", r.BytesIn).
		Int64("bytes_out", r.BytesOut).
		Float64("duration_ms", r.DurationMS).
		Bool("hijacked", r.Hijacked)
	if r.ObjectID != "" {
		e = e.Str("object_id", r.ObjectID)
	}
	if r.Forwarded != "" {
		e = e.Str("forwarded", r.Forwarded)
	}
	if len(r.Rewrites) > 0 {
		e = e.Strs("rewrites", r.Rewrites)
	}
	if r.ExitCode != nil {
		e = e.Int("exit_code", *r.ExitCode)
	}
	e.Send()
}

// MarshalZerologObject writes the caller without reflection.
func (c *Caller) MarshalZerologObject(e *zerolog.Event) {
	e.Uint32("uid", c.UID).Uint32("gid", c.GID).Int32("pid", c.PID)
	if c.User != "" {
		e.Str("user", c.User)
	}
	if len(c.Groups) > 0 {
		e.Strs("groups", c.Groups)
	}
	if len(c.GIDs) > 0 {
		e.Uints32("gids", c.GIDs)
	}
	for _, kv := range [...][2]string{{"exe", c.Exe}, {"unit", c.Unit}, {"container", c.Container}, {"container_name", c.ContainerName}} {
		if kv[1] != "" {
			e.Str(kv[0], kv[1])
		}
	}
	if len(c.Subjects) > 0 {
		e.Strs("subjects", c.Subjects)
	}
	if c.ActsFor != "" {
		e.Str("acts_for", c.ActsFor)
	}
	if c.Creators != nil {
		// Rare (callers in containers) and nested: encoding/json is
		// simplest here.
		if b, err := json.Marshal(c.Creators); err == nil {
			e.RawJSON("creators", b)
		}
	}
	if c.Cert != "" {
		e.Str("cert", c.Cert)
	}
	if len(c.CertSANs) > 0 {
		e.Strs("cert_sans", c.CertSANs)
	}
}

type factList []FactResult

func (fl *factList) MarshalZerologArray(a *zerolog.Array) {
	f := *fl
	for i := range f {
		fr := &f[i]
		d := zerolog.Dict().Str("kind", fr.Kind).Str("value", fr.Value).Str("decision", fr.Decision)
		if fr.Rule != "" {
			d = d.Str("rule", fr.Rule)
		}
		a.Dict(d)
	}
}
