package filesync

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/tonistiigi/fsutil/types"
	"google.golang.org/protobuf/proto"
)

// DefaultLimit is how many bytes of wanted files' content a Reader keeps
// unless told otherwise: a Dockerfile and its .dockerignore, with room to
// spare; BuildKit's own limit on a Dockerfile is lower.
const DefaultLimit = 16 << 20

// DefaultMaxEntries and DefaultMaxListing are how many entries a listing
// may state, and how many bytes their paths and link targets may take,
// unless told otherwise. The Reader remembers every stated entry, because a
// symbolic or hard link stated later may name any of them; the dir BuildKit
// syncs for a Dockerfile holds the handful of files its followpaths name.
const (
	DefaultMaxEntries = 10000
	DefaultMaxListing = 4 << 20
)

// metadataPath is the one path fsutil's receiver leaves out of its ID count
// when it receives metadata only (fsutil receive.go): a sender that states
// it would shift every later ID by one for such a receiver and not for us.
const metadataPath = ".fsutil-metadata"

// Reader follows one DiffCopy stream, fed every message of both directions
// in the order the proxy relays them, and tells which messages complete the
// wanted files. It is not safe for concurrent use: the proxy calls it from
// the one place that sees both directions in order. After it returned an
// error, it returns that error for every message.
type Reader struct {
	limit      int64
	maxEntries int
	maxListing int64
	fresh      int64 // with WithFreshStats, what the modification times are XORed with

	// want holds the wanted names whose path is not stated yet, by the path
	// they wait for (a link stated on their way changes the path).
	want map[string][]alias
	// root is the synced dir; the entries stated hang below it, so that
	// finding a path costs its length, whatever a link made it.
	root   *entry
	byID   []*entry // the ID of an entry is its index in the listing
	kept   int64    // bytes of wanted files' content kept
	listed int64    // bytes of the paths and link targets stated

	ended       bool // the empty STAT that ends the listing was seen
	receiverFIN bool
	done        bool // the sender's FIN or ERR was seen
	err         error
}

// Option changes a Reader's limits or has it offer fresh stats.
type Option func(*Reader)

// WithLimit sets how many bytes of wanted files' content the Reader keeps
// before it fails.
func WithLimit(bytes int64) Option { return func(r *Reader) { r.limit = bytes } }

// WithMaxEntries sets how many entries the listing may state before the
// Reader fails.
func WithMaxEntries(n int) Option { return func(r *Reader) { r.maxEntries = n } }

// WithMaxListing sets how many bytes the stated paths and link targets may
// take before the Reader fails.
func WithMaxListing(bytes int64) Option { return func(r *Reader) { r.maxListing = bytes } }

// Event is what one message of the sender means to the proxy.
type Event struct {
	// Complete lists the wanted files whose content this message completes
	// (or, for a STAT of a link, names a wanted file whose content is
	// already whole): the proxy judges them before it forwards the message.
	Complete []File
	// Finished is set for the sender's FIN, the end of the transfer.
	Finished bool
	// Missing, with Finished, lists the wanted names that were stated but
	// whose content the Reader did not see whole: dockerd did not ask for
	// it (it had the file already) or it is not a regular file. Wanted
	// names never stated are not listed: dockerd has no such file either.
	Missing []string
	// Replace, with WithFreshStats, is the STAT of a wanted file with a new
	// modification time, as many bytes long as the message: forwarded
	// instead of it, it makes dockerd ask for the file's content even where
	// it has a file of the same size and time. Nil when there is none.
	Replace []byte
	// SenderError is set when the sender gave up with an ERR packet. dockerd
	// fails the transfer on it (some older fsutil receivers ignore
	// it), and the Reader accepts nothing after it, so the message may be
	// forwarded: nothing unjudged follows it.
	SenderError string
}

// File is the content of one wanted file.
type File struct {
	// Name is the wanted name, cleaned as CleanPath does.
	Name string
	// Path is where the content was stated: Name, or the file a link on
	// the way to Name leads to.
	Path string
	// Content is shared by all names of one file; do not modify it.
	Content []byte
}

type kind int

const (
	regular kind = iota
	hardlink
	symlink
	directory
	other // devices and pipes: dockerd makes them, but asks no content
)

func (k kind) String() string {
	return [...]string{"regular file", "hard link", "symbolic link", "directory", "special file"}[k]
}

type entry struct {
	id        uint32
	path      string
	kind      kind
	link      string  // the Linkname of a symbolic or hard link
	names     []alias // the wanted names this entry's content is for
	requested bool
	complete  bool
	passed    int64 // content bytes that passed, kept or not
	content   []byte
	children  map[string]*entry // of a directory, by name
}

// NewReader returns a Reader for the wanted paths, as the receiver named
// them in the followpaths metadata.
func NewReader(want []string, opts ...Option) *Reader {
	r := &Reader{
		limit:      DefaultLimit,
		maxEntries: DefaultMaxEntries,
		maxListing: DefaultMaxListing,
		want:       make(map[string][]alias),
		root:       &entry{kind: directory, children: make(map[string]*entry)},
	}
	for _, o := range opts {
		o(r)
	}
	seen := make(map[string]bool)
	for _, w := range want {
		name := CleanPath(w)
		if seen[name] {
			continue
		}
		seen[name] = true
		r.want[name] = append(r.want[name], alias{name: name})
	}
	return r
}

// FromSender consumes one message the sender (the docker client) sent: the
// protobuf bytes of one fsutil Packet, without the gRPC length prefix.
func (r *Reader) FromSender(msg []byte) (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	ev, err := r.fromSender(msg)
	if err != nil {
		r.err = fmt.Errorf("filesync: %w", err)
		return Event{}, r.err
	}
	return ev, nil
}

// FromReceiver consumes one message the receiver (dockerd) sent. The proxy
// must call it before it forwards the message, so that the Reader knows
// of a request before the sender can answer it.
func (r *Reader) FromReceiver(msg []byte) error {
	if r.err != nil {
		return r.err
	}
	if err := r.fromReceiver(msg); err != nil {
		r.err = fmt.Errorf("filesync: %w", err)
		return r.err
	}
	return nil
}

func decode(msg []byte) (*types.Packet, error) {
	var p types.Packet
	if err := proto.Unmarshal(msg, &p); err != nil {
		return nil, fmt.Errorf("undecodable packet: %w", err)
	}
	return &p, nil
}

func (r *Reader) fromReceiver(msg []byte) error {
	p, err := decode(msg)
	if err != nil {
		return fmt.Errorf("from dockerd: %w", err)
	}
	switch p.Type {
	case types.Packet_PACKET_REQ:
		e, err := r.entry(p.ID)
		if err != nil {
			return fmt.Errorf("dockerd asked for a file: %w", err)
		}
		if e.kind != regular {
			return fmt.Errorf("dockerd asked for the content of %q (id %d), a %s", e.path, e.id, e.kind)
		}
		if e.requested {
			return fmt.Errorf("dockerd asked twice for %q (id %d)", e.path, e.id)
		}
		e.requested = true
		return nil
	case types.Packet_PACKET_FIN:
		if r.receiverFIN {
			return errors.New("dockerd sent FIN twice")
		}
		r.receiverFIN = true
		return nil
	case types.Packet_PACKET_ERR:
		// dockerd gave up; the sender ends when it reads this, and what it
		// sends meanwhile is judged as before.
		return nil
	case types.Packet_PACKET_STAT, types.Packet_PACKET_DATA:
		return fmt.Errorf("dockerd sent a %s packet, which only the sender sends", p.Type)
	default:
		return fmt.Errorf("dockerd sent a packet of unknown type %d", int32(p.Type))
	}
}

func (r *Reader) fromSender(msg []byte) (Event, error) {
	p, err := decode(msg)
	if err != nil {
		return Event{}, fmt.Errorf("from the client: %w", err)
	}
	if r.done {
		return Event{}, fmt.Errorf("the client sent a %s packet after the end of the transfer", p.Type)
	}
	switch p.Type {
	case types.Packet_PACKET_STAT:
		if r.ended {
			return Event{}, errors.New("the client stated a file after the end of its listing")
		}
		if p.Stat == nil {
			r.ended = true
			return Event{}, nil
		}
		files, err := r.stat(p.Stat)
		if err != nil {
			return Event{}, err
		}
		return Event{Complete: files, Replace: r.freshStat(p, len(msg))}, nil
	case types.Packet_PACKET_DATA:
		files, err := r.data(p.ID, p.Data)
		return Event{Complete: files}, err
	case types.Packet_PACKET_FIN:
		if !r.ended {
			return Event{}, errors.New("the client ended the transfer before its listing")
		}
		if !r.receiverFIN {
			return Event{}, errors.New("the client ended the transfer before dockerd did")
		}
		r.done = true
		return Event{Finished: true, Missing: r.missing()}, nil
	case types.Packet_PACKET_ERR:
		r.done = true
		msg := string(p.Data)
		if msg == "" {
			msg = "(no message)"
		}
		return Event{SenderError: msg}, nil
	case types.Packet_PACKET_REQ:
		return Event{}, errors.New("the client sent a REQ packet, which only dockerd sends")
	default:
		return Event{}, fmt.Errorf("the client sent a packet of unknown type %d", int32(p.Type))
	}
}

func (r *Reader) entry(id uint32) (*entry, error) {
	if uint64(id) >= uint64(len(r.byID)) {
		return nil, fmt.Errorf("file id %d was never stated (%d entries so far)", id, len(r.byID))
	}
	return r.byID[id], nil
}

func (r *Reader) stat(st *types.Stat) ([]File, error) {
	p := st.Path
	if err := checkStatedPath(p); err != nil {
		return nil, err
	}
	// fsutil lists a directory before what it holds, and its receiver
	// refuses an entry whose directory it has not seen (validator.go).
	parent := r.root
	if dir := path.Dir(p); dir != "." {
		parent = r.lookup(dir)
		if parent == nil || parent.kind != directory {
			return nil, fmt.Errorf("the client stated %q before its directory", p)
		}
	}
	base := path.Base(p)
	if _, dup := parent.children[base]; dup {
		return nil, fmt.Errorf("the client stated %q twice", p)
	}
	if len(r.byID) >= r.maxEntries {
		return nil, fmt.Errorf("the client stated more than %d entries", r.maxEntries)
	}
	r.listed += int64(len(p) + len(st.Linkname))
	if r.listed > r.maxListing {
		return nil, fmt.Errorf("the client's listing is larger than %d bytes (at %q)", r.maxListing, p)
	}
	e := &entry{id: uint32(len(r.byID)), path: p, link: st.Linkname}
	switch mode := os.FileMode(st.Mode); {
	case mode.IsDir():
		e.kind = directory
		e.children = make(map[string]*entry)
	case mode&os.ModeSymlink != 0:
		e.kind = symlink
	case mode&os.ModeType != 0:
		e.kind = other
	case st.Linkname != "":
		e.kind = hardlink
		// fsutil's receiver links to a file stated before, by its exact path
		// (fsutil hardlinks.go); anything else it refuses, and so do we.
		t := r.lookup(st.Linkname)
		if t == nil || t.kind != regular {
			return nil, fmt.Errorf("the client stated %q as a hard link to %q, which is not a regular file stated before", p, st.Linkname)
		}
	default:
		e.kind = regular
	}
	r.byID = append(r.byID, e)
	parent.children[base] = e

	// The names waiting for this path, or for a path below it: the entry
	// may be their file, or a link or non-directory on their way.
	var waiting []string
	for t := range r.want {
		if isWithin(t, p) {
			waiting = append(waiting, t)
		}
	}
	sort.Strings(waiting)
	var files []File
	for _, t := range waiting {
		names := r.want[t]
		delete(r.want, t)
		f, err := r.place(names, t)
		if err != nil {
			return nil, err
		}
		files = append(files, f...)
	}
	return files, nil
}

// lookup finds the entry stated at p, through directories only.
func (r *Reader) lookup(p string) *entry {
	e := r.root
	for rest := p; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		if e.kind != directory {
			return nil
		}
		if e = e.children[name]; e == nil {
			return nil
		}
	}
	return e
}

func (r *Reader) data(id uint32, chunk []byte) ([]File, error) {
	e, err := r.entry(id)
	if err != nil {
		return nil, fmt.Errorf("the client sent content: %w", err)
	}
	if !e.requested {
		return nil, fmt.Errorf("the client sent content of %q (id %d), which dockerd did not ask for", e.path, e.id)
	}
	if e.complete {
		return nil, fmt.Errorf("the client sent content of %q (id %d) after its end", e.path, e.id)
	}
	if len(chunk) == 0 {
		e.complete = true
		return e.files(e.names), nil
	}
	e.passed += int64(len(chunk))
	if len(e.names) > 0 {
		r.kept += int64(len(chunk))
		if r.kept > r.limit {
			return nil, fmt.Errorf("the wanted files are larger than %d bytes (at %q)", r.limit, e.path)
		}
		e.content = append(e.content, chunk...)
	}
	return nil, nil
}

func (e *entry) files(names []alias) []File {
	var files []File
	for _, n := range names {
		content := e.content
		if content == nil {
			content = []byte{}
		}
		files = append(files, File{Name: n.name, Path: e.path, Content: content})
	}
	return files
}

// missing lists the wanted names stated whose content did not pass whole.
func (r *Reader) missing() []string {
	var names []string
	for _, e := range r.byID {
		if e.complete {
			continue
		}
		for _, n := range e.names {
			names = append(names, n.name)
		}
	}
	sort.Strings(names)
	return names
}
