package filesync

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"
	"google.golang.org/protobuf/proto"
)

// message is one Packet as it crossed the wire, in the direction it went.
type message struct {
	fromSender bool
	bytes      []byte
}

// wire connects fsutil's sender and receiver in memory and records every
// message in the order it was sent. A message is recorded before the other
// side can read it, so the record keeps cause before effect (a REQ before
// the DATA that answers it), as the proxy relaying both directions sees it.
type wire struct {
	mu  sync.Mutex
	log []message
	// relay, when set, sees each message as the proxy would, before the
	// other side can read it, and says what to forward instead.
	relay    func(m message) ([]byte, error)
	relayErr error
}

// pass records a message and returns what goes on to the other side.
func (w *wire) pass(fromSender bool, b []byte) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := message{fromSender: fromSender, bytes: b}
	w.log = append(w.log, m)
	if w.relay == nil || w.relayErr != nil {
		return b
	}
	out, err := w.relay(m)
	if err != nil {
		w.relayErr = err
		return b
	}
	return out
}

func (w *wire) messages() []message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]message(nil), w.log...)
}

// end is one side of the wire; it implements fsutil.Stream.
type end struct {
	ctx        context.Context
	w          *wire
	fromSender bool
	in         <-chan []byte
	out        chan<- []byte
}

func (e *end) Context() context.Context { return e.ctx }

func (e *end) SendMsg(m interface{}) error {
	p, ok := m.(*types.Packet)
	if !ok {
		return fmt.Errorf("send %T, not a packet", m)
	}
	b, err := proto.Marshal(p)
	if err != nil {
		return fmt.Errorf("marshal packet: %w", err)
	}
	b = e.w.pass(e.fromSender, b)
	select {
	case e.out <- b:
		return nil
	case <-e.ctx.Done():
		return e.ctx.Err()
	}
}

func (e *end) RecvMsg(m interface{}) error {
	p, ok := m.(*types.Packet)
	if !ok {
		return fmt.Errorf("receive into %T, not a packet", m)
	}
	select {
	case b, ok := <-e.in:
		if !ok {
			return io.EOF
		}
		return proto.Unmarshal(b, p)
	case <-e.ctx.Done():
		return e.ctx.Err()
	}
}

// syncOpt is how one transfer is made, as BuildKit's local source and the
// docker client's session make it.
type syncOpt struct {
	include []string // the sender's include patterns
	follow  []string // followpaths
	differ  fsutil.DiffType
	relay   func(m message) ([]byte, error)
}

// transfer runs fsutil.Send of src against fsutil.Receive into dest and
// returns every message both sent.
func transfer(t testing.TB, src, dest string, opt syncOpt) []message {
	t.Helper()
	// The timeout only detects a hang of the transfer itself.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	fs, err := fsutil.NewFS(src)
	if err != nil {
		t.Fatalf("source fs: %v", err)
	}
	fs, err = fsutil.NewFilterFS(fs, &fsutil.FilterOpt{IncludePatterns: opt.include, FollowPaths: opt.follow})
	if err != nil {
		t.Fatalf("filter fs: %v", err)
	}

	w := &wire{relay: opt.relay}
	toReceiver := make(chan []byte, 64)
	toSender := make(chan []byte, 64)
	sender := &end{ctx: ctx, w: w, fromSender: true, in: toSender, out: toReceiver}
	receiver := &end{ctx: ctx, w: w, in: toReceiver, out: toSender}

	sent := make(chan error, 1)
	go func() {
		err := fsutil.Send(ctx, sender, fs, nil)
		// The receiver reads until the sender's stream ends after FIN.
		close(toReceiver)
		sent <- err
	}()
	if err := fsutil.Receive(ctx, receiver, dest, fsutil.ReceiveOpt{Differ: opt.differ}); err != nil {
		t.Fatalf("receive: %v", err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
	if w.relayErr != nil {
		t.Fatalf("relay: %v", w.relayErr)
	}
	return w.messages()
}

// outcome is what a Reader made of a whole transfer.
type outcome struct {
	files    map[string]File
	finished bool
	missing  []string
}

// replay feeds a transfer to a Reader in the order it was sent, and checks
// that every wanted file is reported once, by the message that ends it.
func replay(t *testing.T, r *Reader, msgs []message) outcome {
	t.Helper()
	out := outcome{files: make(map[string]File)}
	for i, m := range msgs {
		if !m.fromSender {
			if err := r.FromReceiver(m.bytes); err != nil {
				t.Fatalf("message %d from dockerd: %v", i, err)
			}
			continue
		}
		ev, err := r.FromSender(m.bytes)
		if err != nil {
			t.Fatalf("message %d from the client: %v", i, err)
		}
		for _, f := range ev.Complete {
			if _, dup := out.files[f.Name]; dup {
				t.Fatalf("message %d completes %q a second time", i, f.Name)
			}
			out.files[f.Name] = f
		}
		if ev.Finished {
			out.finished = true
			out.missing = ev.Missing
		}
	}
	return out
}
