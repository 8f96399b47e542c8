package audit

import (
	"sync"
	"sync/atomic"
	"time"
)

// shipper is the queue behind the sinks that copy the chain elsewhere
// (SyslogSink, JournaldSink). The primary sink (the file) stays the
// authority: a line is queued only once it was written there, so a shipped
// copy verifies in the same way. Shipping never holds a request up: a full
// queue or a destination that cannot be reached drops lines, and the drops
// are reported (onErr, once until shipping works again) and counted
// (Dropped). A copy with gaps is still checked by the chain: a gap shows as
// a seq gap.
type shipper struct {
	q       chan []byte
	dropped atomic.Uint64
	onErr   func(error)
	done    chan struct{}
	mu      sync.Mutex // guards closed and sends against Close
	closed  bool
	failing bool
}

// shipQueue is how many lines may wait to be shipped.
const shipQueue = 4096

func newShipper(onErr func(error)) shipper {
	return shipper{q: make(chan []byte, shipQueue), onErr: onErr, done: make(chan struct{})}
}

// Dropped is how many lines were not shipped.
func (s *shipper) Dropped() uint64 { return s.dropped.Load() }

// send queues a copy of one sealed line (with its newline).
func (s *shipper) send(line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.dropped.Add(1)
		return
	}
	select {
	case s.q <- append([]byte(nil), line...):
	default:
		s.dropped.Add(1)
	}
}

// Close ships what is queued (giving up after a few seconds) and ends the
// shipping goroutine, which then runs its cleanup.
func (s *shipper) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.q)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
	return nil
}

// run ships each queued line with ship, which gets a second try (one
// reconnection) before the line is dropped; cleanup runs at the end.
func (s *shipper) run(ship func(line []byte) error, cleanup func()) {
	defer close(s.done)
	if cleanup != nil {
		defer cleanup()
	}
	for line := range s.q {
		if err := ship(line); err != nil {
			if err = ship(line); err != nil {
				s.dropped.Add(1)
				s.fail(err)
				continue
			}
		}
		s.failing = false
	}
}

func (s *shipper) fail(err error) {
	if !s.failing && s.onErr != nil {
		s.onErr(err)
	}
	s.failing = true
}

// lineSink is a shipping sink, as the chain writer sees it.
type lineSink interface {
	send(line []byte)
	Close() error
}
