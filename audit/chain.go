package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The hash chain.
//
// Every line the Logger writes ends in ,"seq":N,"hash":"H"} where H is the
// hex SHA-256 (or HMAC-SHA-256 with Options.HMACKey) of
//
//	P + "\n" + the line's bytes up to, not including, ,"hash":"
//
// and P is the hash of the line before it in the chain. Records number the
// chain: seq is 1 for the first record and one more for each next record.
//
// Policy records ({"type":"policy",...}, policy.go) are records of the
// chain like request records: sealed, and numbered by seq.
//
// A segment header, {"type":"audit-segment",...}, starts every file the
// Logger opens and every restart of it: it carries "prev_hash" (the hash of
// the last line of the chain so far, GenesisHash for a new chain) and "seq"
// (the last record's seq, 0 for a new chain), and is itself hashed like a
// record, so the next record chains to the header. A header does not take a
// sequence number. A file whose last line was torn (a write cut short) is
// never changed: the header written on restart starts on a new line, says
// "torn":true, and chains to the last complete line before the torn one.
//
// A Logger on a stream (NewLogger, Open("-")) writes no header: its chain
// starts at GenesisHash with seq 1.

// GenesisHash is the previous hash of the first line of a new chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Algorithms a segment header can name.
const (
	AlgSHA256     = "sha256"
	AlgHMACSHA256 = "hmac-sha256"
)

// SegmentType is the "type" of a segment header line.
const SegmentType = "audit-segment"

// Options configure a Logger.
type Options struct {
	// HMACKey, when set, makes the chain HMAC-SHA-256 with this key instead
	// of SHA-256, so that it cannot be recomputed without the key.
	HMACKey []byte

	// FailOpen keeps Logger.Check answering nil while the sink fails: the
	// failure is reported (OnError) and requests go on unrecorded. Without
	// it (fail closed), Check returns the sink's error until a probe
	// write succeeds, and the proxy refuses new requests meanwhile.
	FailOpen bool
	// OnError is called when a write to the sink fails after it worked;
	// OnRecover when a write works again, with the number of records that
	// could not be written meanwhile. Both are called with the Logger's
	// lock held: they must not write records.
	OnError   func(err error)
	OnRecover func(lost uint64)

	// Rotation of a file sink (Open with a path): see rotate.go.
	Rotate RotateOptions

	// Syslog and Journald, when set, get a copy of every line written
	// (see SyslogSink, JournaldSink); the Logger closes them.
	Syslog   *SyslogSink
	Journald *JournaldSink
}

const (
	hashKey   = `,"hash":"`
	seqKey    = `,"seq":`
	hashLen   = 64
	sealedLen = len(hashKey) + hashLen + len(`"}`) // what follows the hashed prefix, before "\n"
)

// chainWriter seals each line zerolog hands it with its seq and hash and
// writes it with one Write: zerolog writes one event per Write call. It also
// keeps concurrent records from interleaving.
type chainWriter struct {
	mu   sync.Mutex
	w    io.Writer
	alg  string
	h    hash.Hash
	seq  uint64        // the last record's seq
	prev [hashLen]byte // the hex hash of the last line written
	torn bool          // the last write was cut short: the next line starts a segment
	// pending, when set, is the reason of a segment header that must be
	// written before the next record: a write failed, or a rotation could
	// not write the header of the new file.
	pending string
	lost    uint64 // records that could not be written since the last header
	// lostReported is what the last header written said was lost.
	lostReported uint64
	broken       atomic.Bool // the last write failed
	err          error       // why, while broken
	onErr        func(error)
	onOK         func(lost uint64)
	rot          *fileSink  // the file sink, when rotating
	tee          []lineSink // the shipping sinks
	buf          []byte     // the line being sealed, reused
	sum          [sha256.Size]byte
	now          func() time.Time
}

func newChainWriter(w io.Writer, o Options) *chainWriter {
	cw := &chainWriter{w: w, alg: AlgSHA256, now: time.Now, buf: make([]byte, 0, 2048), onErr: o.OnError, onOK: o.OnRecover}
	if o.Syslog != nil {
		cw.tee = append(cw.tee, o.Syslog)
	}
	if o.Journald != nil {
		cw.tee = append(cw.tee, o.Journald)
	}
	if len(o.HMACKey) > 0 {
		cw.alg, cw.h = AlgHMACSHA256, hmac.New(sha256.New, o.HMACKey)
	} else {
		cw.h = sha256.New()
	}
	copy(cw.prev[:], GenesisHash)
	return cw
}

// Write seals one zerolog event, {...}\n, and writes it. A write the sink
// refuses is not returned to zerolog (which would print it on stderr for
// every record) but kept as the writer's state: see Err and probe.
func (cw *chainWriter) Write(p []byte) (int, error) {
	body := bytes.TrimRight(p, "\n")
	if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		return 0, fmt.Errorf("audit: not a JSON object: %.40q", p)
	}
	body = body[:len(body)-1] // without the closing brace
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.rot != nil && cw.pending == "" && !cw.torn && cw.rot.due(cw.now()) {
		cw.rotateLocked()
	}
	if cw.torn || cw.pending != "" {
		if err := cw.writeHeaderLocked(cw.headerReason()); err != nil {
			cw.lost++
			cw.failLocked(err)
			return len(p), nil
		}
	}
	cw.buf = append(cw.buf[:0], body...)
	if len(body) > 1 {
		cw.buf = append(cw.buf, seqKey...)
	} else {
		cw.buf = append(cw.buf, seqKey[1:]...)
	}
	cw.buf = strconv.AppendUint(cw.buf, cw.seq+1, 10)
	if err := cw.sealAndWriteLocked(0); err != nil {
		cw.lost++
		if cw.pending == "" {
			cw.pending = "write-error"
		}
		cw.failLocked(err)
		return len(p), nil
	}
	cw.seq++
	cw.okLocked()
	return len(p), nil
}

func (cw *chainWriter) headerReason() string {
	if cw.pending != "" {
		return cw.pending
	}
	return "write-error"
}

// failLocked records a failed write; OnError hears of the first failure
// after writes worked.
func (cw *chainWriter) failLocked(err error) {
	cw.err = err
	if !cw.broken.Swap(true) && cw.onErr != nil {
		cw.onErr(err)
	}
}

// okLocked records a write that worked.
func (cw *chainWriter) okLocked() {
	if cw.broken.Swap(false) {
		cw.err = nil
		if cw.onOK != nil {
			cw.onOK(cw.lostReported)
		}
	}
}

// probe tries to write the segment header that a failure left pending, so
// that a sink that works again is known to before a request is served.
func (cw *chainWriter) probe() error {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if !cw.broken.Load() {
		return nil
	}
	if !cw.torn && cw.pending == "" {
		cw.pending = "write-error"
	}
	if err := cw.writeHeaderLocked(cw.headerReason()); err != nil {
		cw.failLocked(err)
		return err
	}
	cw.okLocked()
	return nil
}

// Err is the error of the last write when it failed, else nil.
func (cw *chainWriter) Err() error {
	if !cw.broken.Load() {
		return nil
	}
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return cw.err
}

// sealAndWriteLocked appends the hash of cw.buf[lead:] to cw.buf, writes all
// of cw.buf and, when all of it was written, makes it the last line of the
// chain. What precedes lead (a newline ending a torn line) is not hashed.
func (cw *chainWriter) sealAndWriteLocked(lead int) error {
	cw.h.Reset()
	cw.h.Write(cw.prev[:])
	cw.h.Write(newline)
	cw.h.Write(cw.buf[lead:])
	sum := cw.h.Sum(cw.sum[:0])
	cw.buf = append(cw.buf, hashKey...)
	start := len(cw.buf)
	cw.buf = hex.AppendEncode(cw.buf, sum)
	cw.buf = append(cw.buf, '"', '}', '\n')
	n, err := cw.w.Write(cw.buf)
	if err == nil && n != len(cw.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > lead {
			cw.torn = true
		}
		return err
	}
	cw.torn = false
	copy(cw.prev[:], cw.buf[start:start+hashLen])
	for _, t := range cw.tee {
		t.send(cw.buf[lead:])
	}
	return nil
}

// writeHeaderLocked writes a segment header chained to the last line. After
// a torn line, it first ends that line so that the header is a line of its
// own; the header then says "torn":true. After records that could not be
// written, it says how many ("lost"). Written, it clears what was pending.
func (cw *chainWriter) writeHeaderLocked(reason string) error {
	torn := cw.torn
	cw.buf = cw.buf[:0]
	lead := 0
	if torn {
		cw.buf, lead = append(cw.buf, '\n'), 1
	}
	cw.buf = append(cw.buf, `{"type":"`+SegmentType+`","time":"`...)
	cw.buf = cw.now().UTC().AppendFormat(cw.buf, time.RFC3339Nano)
	cw.buf = append(cw.buf, `","reason":`...)
	cw.buf = strconv.AppendQuote(cw.buf, reason)
	cw.buf = append(cw.buf, `,"alg":"`...)
	cw.buf = append(cw.buf, cw.alg...)
	cw.buf = append(cw.buf, `","prev_hash":"`...)
	cw.buf = append(cw.buf, cw.prev[:]...)
	cw.buf = append(cw.buf, '"')
	if torn {
		cw.buf = append(cw.buf, `,"torn":true`...)
	}
	if cw.lost > 0 {
		cw.buf = append(cw.buf, `,"lost":`...)
		cw.buf = strconv.AppendUint(cw.buf, cw.lost, 10)
	}
	cw.buf = append(cw.buf, seqKey...)
	cw.buf = strconv.AppendUint(cw.buf, cw.seq, 10)
	err := cw.sealAndWriteLocked(lead)
	if err != nil {
		if torn {
			cw.torn = true // still torn: the next write tries again
		}
		if cw.pending == "" {
			cw.pending = reason
		}
		return err
	}
	cw.lostReported, cw.lost, cw.pending = cw.lost, 0, ""
	return nil
}

// startSegment writes the header that opens a file or a restart, chained to
// what recoverTail found.
func (cw *chainWriter) startSegment(t chainTail) error {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	reason := "start"
	if t.found {
		reason = "restart"
		cw.seq = t.seq
		copy(cw.prev[:], t.hash)
	}
	cw.torn = t.torn
	return cw.writeHeaderLocked(reason)
}

// chainHash computes the hash of a line's hashed prefix: what the writer
// computes and the verifier recomputes.
func chainHash(h hash.Hash, prev, prefix []byte, sum *[sha256.Size]byte, out *[hashLen]byte) {
	h.Reset()
	h.Write(prev)
	h.Write(newline)
	h.Write(prefix)
	hex.Encode(out[:], h.Sum(sum[:0]))
}

// splitSealed splits a line (without its newline) into the hashed prefix
// and the hash, or says why it is not a sealed line.
func splitSealed(line []byte) (prefix, sum []byte, ok bool) {
	if len(line) < sealedLen+2 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return nil, nil, false
	}
	cut := len(line) - sealedLen
	if string(line[cut:cut+len(hashKey)]) != hashKey {
		return nil, nil, false
	}
	return line[:cut], line[cut+len(hashKey) : cut+len(hashKey)+hashLen], true
}

// sealedSeq reads the ,"seq":N that ends a hashed prefix.
func sealedSeq(prefix []byte) (uint64, bool) {
	i := bytes.LastIndex(prefix, []byte(`"seq":`))
	if i < 1 || (prefix[i-1] != ',' && prefix[i-1] != '{') {
		return 0, false
	}
	digits := prefix[i+len(`"seq":`):]
	if len(digits) == 0 || len(digits) > 20 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// segmentHeader is the decoded form of a segment header line.
type segmentHeader struct {
	Type     string `json:"type"`
	Time     string `json:"time"`
	Reason   string `json:"reason"`
	Alg      string `json:"alg"`
	PrevHash string `json:"prev_hash"`
	Torn     bool   `json:"torn"`
	Lost     uint64 `json:"lost"`
	Seq      uint64 `json:"seq"`
	Hash     string `json:"hash"`
}

// lineType reads the "type" a line starts with: the Logger writes it first.
func lineType(line []byte) string {
	switch {
	case bytes.HasPrefix(line, []byte(`{"type":"audit",`)):
		return "audit"
	case bytes.HasPrefix(line, []byte(`{"type":"`+SegmentType+`",`)):
		return SegmentType
	case bytes.HasPrefix(line, []byte(`{"type":"`+PolicyType+`",`)):
		return PolicyType
	}
	return ""
}

// chainTail is what a restart recovers from the end of an existing file.
type chainTail struct {
	found bool   // the last complete line is a sealed line of a chain
	seq   uint64 // its seq (a header's seq is the seq of the record before it)
	hash  string
	torn  bool // the file does not end with a newline
	empty bool
}

// maxTail bounds how far back a restart looks for the last complete line.
const maxTail = 16 << 20

// recoverTail reads the end of the file at path without changing it.
func recoverTail(path string) (chainTail, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return chainTail{empty: true}, nil
	}
	if err != nil {
		return chainTail{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return chainTail{}, err
	}
	size := fi.Size()
	if size == 0 {
		return chainTail{empty: true}, nil
	}
	var t chainTail
	for window := int64(64 << 10); ; window *= 4 {
		if window > size {
			window = size
		}
		buf := make([]byte, window)
		if _, err := f.ReadAt(buf, size-window); err != nil && err != io.EOF {
			return chainTail{}, err
		}
		t.torn = buf[len(buf)-1] != '\n'
		end := bytes.LastIndexByte(buf, '\n')
		if end < 0 {
			if window == size || window >= maxTail {
				return t, nil // no complete line
			}
			continue
		}
		start := bytes.LastIndexByte(buf[:end], '\n') + 1
		if start == 0 && window < size && window < maxTail {
			continue // the line may begin before the window
		}
		if start == 0 && window < size {
			return t, nil // a line too long to be ours
		}
		line := buf[start:end]
		prefix, sum, ok := splitSealed(line)
		if !ok {
			return t, nil
		}
		seq, ok := sealedSeq(prefix)
		if !ok {
			return t, nil
		}
		if lineType(line) == "" {
			return t, nil
		}
		t.found, t.seq, t.hash = true, seq, string(sum)
		return t, nil
	}
}

var newline = []byte{'\n'}

// ReadHMACKey reads an HMAC key file: its bytes, less one trailing newline.
// A key shorter than 16 bytes is refused: it could be guessed.
func ReadHMACKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hmac key: %w", err)
	}
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(b) < 16 {
		return nil, fmt.Errorf("hmac key %s: %d bytes, want at least 16", path, len(b))
	}
	return b, nil
}
