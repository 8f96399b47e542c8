package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Filter selects records for Query. Zero fields select everything.
type Filter struct {
	Since, Until time.Time // Since <= time < Until
	User         string    // caller.user
	UID          int64     // caller.uid; < 0: any
	Unit         string    // caller.unit
	Container    string    // caller.container (the container the caller runs in), a prefix of it, or its caller.container_name
	Action       string    // a glob: * any text, ? one character
	Decision     string    // allow, deny or error
	Image        string    // a glob over the values of image facts
	Object       string    // a created object's ID (or prefix), or an ID named in the path
	// Starts includes the "phase":"start" records of hijacked sessions and
	// streams; without it, only the record that ends each request is read.
	Starts bool
	// Policy selects the policy records (policy.go) instead of the request
	// records; of the other filters, only Since and Until apply to them.
	Policy bool
}

// AnyUID is Filter.UID when any uid is selected.
const AnyUID = -1

// Entry is one record as Query and Summarize read it back.
type Entry struct {
	Type string `json:"type"`
	Record
	Seq  uint64 `json:"seq"`
	File string `json:"-"`
	Line int    `json:"-"`
	// Policy is the record when Type is PolicyType; Record then holds only
	// its Time.
	Policy *PolicyRecord `json:"-"`
}

// Query streams the audit records of the files at paths, in order (gzip or
// not), and calls fn with each one f selects and the line it was read from
// (valid only during the call). Lines that are not audit records (segment
// headers, other logs) are skipped; an unreadable file is an error.
func Query(paths []string, f Filter, fn func(e *Entry, line []byte) error) error {
	return query(paths, newMatcher(f), fn)
}

func query(paths []string, m *matcher, fn func(e *Entry, line []byte) error) error {
	for _, p := range paths {
		r, err := OpenLog(p)
		if err != nil {
			return err
		}
		err = m.scan(p, r, fn)
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

type matcher struct {
	f     Filter
	needs [][]byte // byte strings a selected request record must contain
	// requests and policies say which kinds of record are selected.
	requests, policies bool
	e                  Entry
	syms               symbols
}

func newMatcher(f Filter) *matcher {
	m := &matcher{f: f, requests: !f.Policy, policies: f.Policy}
	need := func(key, v string) {
		if v != "" {
			q, _ := json.Marshal(v)
			m.needs = append(m.needs, append([]byte(`"`+key+`":`), q...))
		}
	}
	need("user", f.User)
	need("unit", f.Unit)
	need("decision", f.Decision)
	if f.UID >= 0 {
		m.needs = append(m.needs, []byte(`"uid":`+strconv.FormatInt(f.UID, 10)))
	}
	for _, v := range []string{f.Container, f.Object} {
		if v != "" {
			q, _ := json.Marshal(v)
			m.needs = append(m.needs, q[1:len(q)-1])
		}
	}
	if f.Image != "" {
		m.needs = append(m.needs, []byte(`image`)) // in every kind isImageFact accepts
	}
	return m
}

func (m *matcher) scan(name string, r io.Reader, fn func(e *Entry, line []byte) error) error {
	lr := newLineReader(r)
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		switch lineType(line) {
		case "audit":
			if !m.requests || !m.prefilter(line) {
				continue
			}
			if err := decodeEntrySyms(line, &m.e, &m.syms); err != nil {
				continue // a torn or foreign line: verify reports those
			}
			if !m.match(&m.e) {
				continue
			}
		case PolicyType:
			if !m.policies || decodePolicy(line, &m.e) != nil || !m.inTime(m.e.Time) {
				continue
			}
		default:
			continue
		}
		m.e.File, m.e.Line = name, lr.line
		if err := fn(&m.e, line); err != nil {
			return err
		}
	}
	if err := lr.err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// prefilter rejects, without decoding, lines that cannot match.
func (m *matcher) prefilter(line []byte) bool {
	for _, n := range m.needs {
		if !bytes.Contains(line, n) {
			return false
		}
	}
	// A start record (phase "start") is left to match: looking for it in
	// every line cost more than decoding the few there are.
	if !m.f.Since.IsZero() || !m.f.Until.IsZero() {
		const at = len(`{"type":"audit","time":"`)
		end := bytes.IndexByte(line[min(at, len(line)):], '"')
		if end < 0 {
			return false
		}
		t, err := time.Parse(time.RFC3339Nano, string(line[at:at+end]))
		if err != nil {
			return true // let the decoder decide
		}
		if (!m.f.Since.IsZero() && t.Before(m.f.Since)) || (!m.f.Until.IsZero() && !t.Before(m.f.Until)) {
			return false
		}
	}
	return true
}

func (m *matcher) match(e *Entry) bool {
	f := &m.f
	if e.Type != "audit" || (e.Phase == PhaseStart && !f.Starts) {
		return false
	}
	if !m.inTime(e.Time) {
		return false
	}
	c := e.Caller
	if c == nil {
		c = &Caller{UID: ^uint32(0)}
		if f.UID >= 0 || f.User != "" || f.Unit != "" || f.Container != "" {
			return false
		}
	}
	if (f.User != "" && c.User != f.User) || (f.UID >= 0 && int64(c.UID) != f.UID) || (f.Unit != "" && c.Unit != f.Unit) ||
		(f.Container != "" && !strings.HasPrefix(c.Container, f.Container) && c.ContainerName != f.Container) ||
		(f.Decision != "" && e.Decision != f.Decision) || (f.Action != "" && !Glob(f.Action, e.Action)) {
		return false
	}
	if f.Image != "" {
		found := false
		for _, fr := range e.Facts {
			if isImageFact(fr.Kind) && Glob(f.Image, fr.Value) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if f.Object != "" && !strings.HasPrefix(e.ObjectID, f.Object) && !pathNames(e.Path, f.Object) {
		return false
	}
	return true
}

// inTime says whether t is within Since and Until.
func (m *matcher) inTime(t time.Time) bool {
	return (m.f.Since.IsZero() || !t.Before(m.f.Since)) && (m.f.Until.IsZero() || t.Before(m.f.Until))
}

// pathNames says whether a request path names the object id (or a prefix
// of it) as one of its segments: /containers/ID/start, /exec/ID/json...
func pathNames(p, id string) bool {
	p, _, _ = strings.Cut(p, "?")
	for seg := range strings.SplitSeq(p, "/") {
		if len(seg) >= len(id) && strings.HasPrefix(seg, id) && (len(seg) == len(id) || len(id) >= 12) {
			return true
		}
	}
	return false
}

// Glob matches s against pattern, where * is any text (slashes and colons
// included, so that docker.io/* matches every image there) and ? is one
// character; everything else is literal.
func Glob(pattern, s string) bool {
	// Iterative matching with one backtrack point: linear in practice.
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && pattern[px] == '*':
			starP, starS = px, sx
			px++
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == s[sx]):
			px++
			sx++
		case starP >= 0:
			starS++
			px, sx = starP+1, starS
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// FormatHeader and FormatRow print Query's readable table.
func FormatHeader(w io.Writer) {
	fmt.Fprintf(w, "%-24s %-18s %-26s %-8s %-6s %s\n", "TIME", "CALLER", "ACTION", "DECISION", "STATUS", "REASON / DENIED FACT")
}

// FormatRow prints one record as a table row. It is what a query of a
// whole trail spends most of its time on after decoding, so it appends
// into a pooled buffer rather than go through fmt; the columns are those
// of FormatHeader (padded by runes, as fmt's %-Ns).
func FormatRow(w io.Writer, e *Entry) {
	if e.Policy != nil {
		formatPolicyRow(w, e.Policy)
		return
	}
	why := e.Reason
	for _, fr := range e.Facts {
		if fr.Decision == DecisionDeny {
			fact := fr.Kind + "=" + fr.Value
			if why == "" {
				why = fact
			} else if !strings.Contains(why, fr.Value) {
				why = fact + ": " + why
			}
			break
		}
	}
	if e.ObjectID != "" && why == "" {
		why = "created " + short(e.ObjectID)
	}
	if e.ExitCode != nil {
		exit := "exit " + strconv.Itoa(*e.ExitCode)
		if why == "" {
			why = exit
		} else {
			why = exit + "; " + why
		}
	}
	bp := rowBufs.Get().(*[]byte)
	b := (*bp)[:0]
	start := len(b)
	b = e.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = padCell(b, len(b)-start, 24)
	b = appendCell(b, CallerName(e.Caller), 18)
	b = appendCell(b, e.Action, 26)
	start = len(b)
	b = append(b, e.Decision...)
	if e.WouldDeny {
		b = append(b, '*')
	}
	b = padCell(b, utf8.RuneCount(b[start:]), 8)
	start = len(b)
	if e.Phase == PhaseStart {
		b = append(b, "start"...)
	} else {
		b = strconv.AppendInt(b, int64(e.Status), 10)
	}
	b = padCell(b, len(b)-start, 6)
	b = append(b, oneLine(why)...)
	b = append(b, '\n')
	w.Write(b)
	*bp = b
	rowBufs.Put(bp)
}

var rowBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// appendCell appends s and pads it to width runes, and the column gap.
func appendCell(b []byte, s string, width int) []byte {
	b = append(b, s...)
	return padCell(b, utf8.RuneCountInString(s), width)
}

func padCell(b []byte, n, width int) []byte {
	for ; n < width; n++ {
		b = append(b, ' ')
	}
	return append(b, ' ')
}

// CallerName is how a caller is named in tables and summaries: its user
// name, else uid:N, with the container it runs in when it does.
func CallerName(c *Caller) string {
	if c == nil {
		return "-"
	}
	if c.ContainerName != "" {
		// A container caller is judged as its container, not its uid.
		name := "container:" + c.ContainerName
		if c.ActsFor != "" {
			name += " for " + c.ActsFor
		}
		return name
	}
	name := c.User
	if name == "" {
		name = "uid:" + strconv.FormatUint(uint64(c.UID), 10)
	}
	if c.Container != "" {
		name += "@" + short(c.Container)
	}
	return name
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// oneLine keeps client-controlled text from breaking the table.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// isImageFact says whether a fact kind names an image: "image" (a
// reference), "local-image" (an image that exists only on this host, by
// name or ID), or "image-target" (a name a tag, commit, import, load or
// build gives an image).
func isImageFact(kind string) bool {
	return kind == "image" || kind == "local-image" || kind == "image-target"
}

// formatPolicyRow prints a policy record as a table row: who triggered it
// in the caller column, policy.load (startup) or policy.reload as the
// action, applied or failed, and the hash in force with the rows changed,
// or the error.
func formatPolicyRow(w io.Writer, r *PolicyRecord) {
	who := r.Trigger
	if r.Signal != "" {
		who += ":" + r.Signal
	}
	action := "policy.reload"
	if r.Trigger == "startup" {
		action = "policy.load"
	}
	why := fmt.Sprintf("%s +%d -%d rows", r.PolicyHash, len(r.RowsAdded), len(r.RowsRemoved))
	if r.Result == PolicyFailed {
		why = "in force: " + r.PolicyHash + "; " + r.Error
	}
	b := r.Time.UTC().AppendFormat(nil, "2006-01-02T15:04:05.000Z")
	b = padCell(b, len(b), 24)
	b = appendCell(b, who, 18)
	b = appendCell(b, action, 26)
	b = appendCell(b, r.Result, 8)
	b = appendCell(b, "-", 6)
	b = append(b, oneLine(why)...)
	w.Write(append(b, '\n'))
}
