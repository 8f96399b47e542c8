package proxy

import (
	"context"
	"net"
	"sync"
	"time"
)

// buildRefusal carries a refusal of a BuildKit /build's Dockerfile, decided
// on the build's session while dockerd streams the build's progress on
// another connection, into that progress stream. dockerd learns of the
// refusal as a failed file transfer and ends the build with an error of its
// own: usually one that quotes dockgate's message, but now and then
// BuildKit's "context canceled" instead. So once the Dockerfile is refused,
// the error that ends the stream is dockgate's, whatever dockerd says.
//
// The progress stream is JSON messages, one per line. A build's stream is
// passed on whole lines only (a line dockerd has not finished waits for its
// end), so that dockgate's message can follow any of them.
type buildRefusal struct {
	mu   sync.Mutex
	err  error
	done bool
	// up is dockerd's connection of the /build, whose read deadline ends
	// a stream dockerd does not end itself after the refusal.
	up net.Conn
	// grace is buildRefusalGrace, shorter in tests.
	grace time.Duration

	lines lineSplitter
}

// buildRefusalGrace is how long dockerd has to end a build whose
// Dockerfile dockgate refused before dockgate ends the stream itself:
// dockerd normally ends it within milliseconds.
const buildRefusalGrace = 5 * time.Second

// refuse records that the build's Dockerfile was refused (the first
// refusal is the one reported).
func (b *buildRefusal) refuse(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done || b.err != nil {
		return
	}
	b.err = err
	if b.up != nil {
		b.up.SetReadDeadline(time.Now().Add(b.graceOrDefault()))
	}
}

// attach gives the refusal dockerd's connection of the build, once the
// progress stream is being copied from it.
func (b *buildRefusal) attach(up net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.up = up
	if b.err != nil && !b.done {
		up.SetReadDeadline(time.Now().Add(b.graceOrDefault()))
	}
}

func (b *buildRefusal) graceOrDefault() time.Duration {
	if b.grace > 0 {
		return b.grace
	}
	return buildRefusalGrace
}

// refused is the refusal, nil while there is none.
func (b *buildRefusal) refused() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// pass takes bytes of the stream as dockerd sent them and returns the
// whole lines among them that go on to the client: all of them, or after
// a refusal all but dockerd's error messages.
func (b *buildRefusal) pass(p []byte) []byte {
	lines := b.lines.whole(p)
	if b.refused() == nil {
		return lines
	}
	return dropErrorMessages(lines)
}

// finish ends the stream once dockerd's copy ended (copyErr, nil when
// dockerd ended it): what is left of dockerd's last line, or after a
// refusal dockgate's error message instead, with dockerd's connection's
// deadline cleared. absorbed says the copy error was dockgate's cut of a
// refused build, which ends the stream well.
func (b *buildRefusal) finish(_ context.Context, copyErr error) (tail []byte, reason string, absorbed bool) {
	b.stop()
	err := b.refused()
	if err == nil {
		if copyErr != nil {
			return nil, "", false
		}
		return b.lines.rest(), "", false
	}
	// A line dockerd never ended is no whole message, and the client
	// could not read the error after it: it is dropped.
	return errorMessage(err.Error()), "the build's Dockerfile was refused on its session: " + err.Error(), copyErr != nil
}

// stop marks the stream ended: a refusal from now on changes nothing, and
// dockerd's connection has no deadline of the build's.
func (b *buildRefusal) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = true
	if b.up != nil {
		b.up.SetReadDeadline(time.Time{})
	}
}
