package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// VerifyOptions configure a Verifier.
type VerifyOptions struct {
	// HMACKey, when set, is the key the chain was written with: every
	// segment must then be HMAC-SHA-256. Without it, a segment that says it
	// is HMAC-chained is an error.
	HMACKey []byte
	// AnchorSeq and AnchorHash, when AnchorSeq > 0, name a record known to
	// be in the trail (noted from an earlier verify, or shipped elsewhere):
	// a chain that ends before it, or holds another hash at that seq, was
	// cut short or rewritten. This is what detects records removed from the
	// end of the last file, which no chain can show by itself.
	AnchorSeq  uint64
	AnchorHash string
}

// VerifyResult is what a verified trail holds.
type VerifyResult struct {
	Records uint64
	// PolicyRecords are the records among Records that are policy records.
	PolicyRecords uint64
	Segments      uint64
	FirstSeq      uint64 // the seq of the first record (0: none)
	StartSeq      uint64 // the seq the trail continues from (0: a new chain)
	StartHash     string // the hash the trail continues from (GenesisHash: a new chain)
	LastSeq       uint64
	LastHash      string
	Warnings      []string // torn lines acknowledged by a restart
	// Lost counts records that dockgate could not write (its audit sink
	// failed), as the segment headers written on recovery say.
	Lost uint64
}

// VerifyError is the first broken line of a trail.
type VerifyError struct {
	File   string
	Line   int
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Reason)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// Verifier checks a trail fed to it file by file, in order.
type Verifier struct {
	o        VerifyOptions
	h        hash.Hash
	have     bool // prev and seq are known
	prev     [hashLen]byte
	seq      uint64
	res      VerifyResult
	files    int
	lastFile string
	anchored bool
	sum      [sha256.Size]byte
	got      [hashLen]byte
}

// NewVerifier returns a Verifier.
func NewVerifier(o VerifyOptions) *Verifier {
	v := &Verifier{o: o}
	if len(o.HMACKey) > 0 {
		v.h = hmac.New(sha256.New, o.HMACKey)
	} else {
		v.h = sha256.New()
	}
	return v
}

// VerifyFiles verifies the files at paths, in order (gzip or not).
func VerifyFiles(paths []string, o VerifyOptions) (*VerifyResult, error) {
	v := NewVerifier(o)
	for _, p := range paths {
		f, err := OpenLog(p)
		if err != nil {
			return nil, &VerifyError{File: p, Reason: err.Error()}
		}
		err = v.Feed(p, f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return v.Finish()
}

// Feed verifies the next file of the trail.
func (v *Verifier) Feed(name string, r io.Reader) error {
	v.files++
	v.lastFile = name
	lr := newLineReader(r)
	fail := func(line int, format string, args ...any) error {
		return &VerifyError{File: name, Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	badLine, badWhy := 0, "" // an unparsable line, acceptable only as a torn line before a restart
	firstLine := true
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		n := lr.line
		atFileStart := firstLine
		firstLine = false
		if lr.unterminated {
			return fail(n, "torn last line: the file ends in the middle of a line (%d bytes without a newline)", len(line))
		}
		prefix, sum, sealed := splitSealed(line)
		typ := lineType(line)
		if !sealed || typ == "" {
			if badLine != 0 {
				return fail(badLine, "%s", badWhy)
			}
			badLine, badWhy = n, describeBad(line, sealed)
			continue
		}
		seq, ok := sealedSeq(prefix)
		if !ok {
			if badLine != 0 {
				return fail(badLine, "%s", badWhy)
			}
			badLine, badWhy = n, `unparsable line: no "seq" before the hash`
			continue
		}
		if typ == SegmentType {
			var hd segmentHeader
			if err := json.Unmarshal(line, &hd); err != nil {
				return fail(n, "unparsable segment header: %v", err)
			}
			if hd.Seq != seq {
				return fail(n, "segment header has two seqs")
			}
			if badLine != 0 && !hd.Torn {
				return fail(badLine, "%s", badWhy)
			}
			if hd.Torn && badLine == 0 {
				return fail(n, "segment header says the line before it was torn, but there is no such line")
			}
			switch {
			case hd.Alg == AlgHMACSHA256 && len(v.o.HMACKey) == 0:
				return fail(n, "the chain is HMAC-SHA-256: give --hmac-key")
			case hd.Alg == AlgSHA256 && len(v.o.HMACKey) > 0:
				return fail(n, "segment is plain SHA-256 but an HMAC key was given: anyone could have recomputed it")
			case hd.Alg != AlgSHA256 && hd.Alg != AlgHMACSHA256:
				return fail(n, "segment header names unknown algorithm %q", hd.Alg)
			}
			if len(hd.PrevHash) != hashLen {
				return fail(n, "segment header has a malformed prev_hash")
			}
			if v.have {
				where := "the line before it"
				if atFileStart {
					where = "the previous file"
				}
				if hd.PrevHash != string(v.prev[:]) {
					return fail(n, "broken link: segment header continues from hash %s but %s ends with hash %s", hd.PrevHash, where, v.prev[:])
				}
				if hd.Seq != v.seq {
					return fail(n, "broken link: segment header continues from seq %d but %s ends at seq %d", hd.Seq, where, v.seq)
				}
			} else {
				v.have, v.seq = true, hd.Seq
				copy(v.prev[:], hd.PrevHash)
				v.res.StartSeq, v.res.StartHash = hd.Seq, hd.PrevHash
			}
			if badLine != 0 {
				v.res.Warnings = append(v.res.Warnings, fmt.Sprintf("%s:%d: torn line (a write cut short) acknowledged by the restart at line %d", name, badLine, n))
				badLine = 0
			}
			if err := v.check(prefix, sum); err != nil {
				return fail(n, "hash mismatch: the segment header was changed")
			}
			v.res.Segments++
			v.res.Lost += hd.Lost
			continue
		}
		// A record.
		if badLine != 0 {
			return fail(badLine, "%s", badWhy)
		}
		if !v.have {
			if seq != 1 {
				return fail(n, "the trail starts with record seq %d without a segment header: records before it are missing", seq)
			}
			v.have = true
			copy(v.prev[:], GenesisHash)
			v.res.StartHash = GenesisHash
		}
		switch {
		case seq == v.seq+1:
		case seq <= v.seq:
			return fail(n, "seq repeat or out of order: seq %d after seq %d (a record inserted, copied or reordered)", seq, v.seq)
		default:
			return fail(n, "seq gap: seq %d after seq %d (%d records missing)", seq, v.seq, seq-v.seq-1)
		}
		if err := v.check(prefix, sum); err != nil {
			return fail(n, "hash mismatch: record seq %d was changed, or does not follow the line before it", seq)
		}
		if v.o.AnchorSeq == seq {
			if !strings.EqualFold(v.o.AnchorHash, string(sum)) {
				return fail(n, "anchor mismatch: record seq %d has hash %s, the anchor says %s", seq, sum, v.o.AnchorHash)
			}
			v.anchored = true
		}
		v.seq = seq
		v.res.Records++
		if typ == PolicyType {
			v.res.PolicyRecords++
		}
		if v.res.FirstSeq == 0 {
			v.res.FirstSeq = seq
		}
	}
	if err := lr.err(); err != nil {
		return &VerifyError{File: name, Reason: err.Error()}
	}
	if badLine != 0 {
		return fail(badLine, "%s", badWhy)
	}
	return nil
}

// check recomputes the hash of a line from the previous line's and makes
// it the previous one.
func (v *Verifier) check(prefix, sum []byte) error {
	chainHash(v.h, v.prev[:], prefix, &v.sum, &v.got)
	if !hmac.Equal(v.got[:], sum) {
		return errors.New("hash mismatch")
	}
	copy(v.prev[:], sum)
	return nil
}

// Finish ends the trail: it checks the anchor and returns what was verified.
func (v *Verifier) Finish() (*VerifyResult, error) {
	if v.o.AnchorSeq > 0 && !v.anchored {
		return nil, &VerifyError{File: v.lastFile, Reason: fmt.Sprintf("the trail ends at seq %d, before the anchor seq %d: records were removed from its end", v.seq, v.o.AnchorSeq)}
	}
	if v.have {
		v.res.LastSeq, v.res.LastHash = v.seq, string(v.prev[:])
	}
	res := v.res
	return &res, nil
}

func describeBad(line []byte, sealed bool) string {
	switch {
	case len(line) == 0:
		return "unparsable line: empty"
	case !json.Valid(line):
		return "unparsable line: not JSON"
	case !sealed:
		return "unparsable line: no seq and hash at its end (not written by dockgate's audit logger, or cut)"
	}
	return "unparsable line: not an audit record or segment header"
}

// ParseAnchor reads SEQ:HASH.
func ParseAnchor(s string) (uint64, string, error) {
	seqS, h, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseUint(seqS, 10, 64)
	if !ok || err != nil || seq == 0 || len(h) != hashLen || bytes.ContainsFunc([]byte(h), func(r rune) bool {
		return !strings.ContainsRune("0123456789abcdefABCDEF", r)
	}) {
		return 0, "", fmt.Errorf("anchor %q: want SEQ:HASH (a record's seq and its 64-digit hex hash)", s)
	}
	return seq, strings.ToLower(h), nil
}
