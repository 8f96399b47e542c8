package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
)

// fakePruner records what it was asked to remove and fails the first
// fails rounds.
type fakePruner struct {
	mu     sync.Mutex
	rounds [][]filters.Args
	fails  int
}

func (f *fakePruner) prune(_ context.Context, sets []filters.Args) (int, []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rounds = append(f.rounds, sets)
	if len(f.rounds) <= f.fails {
		return 0, []error{errors.New("network in use")}
	}
	return len(sets), nil
}

func (f *fakePruner) done() [][]filters.Args {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]filters.Args(nil), f.rounds...)
}

type run struct {
	addr string
	code chan int
	log  *strings.Builder
	mu   *sync.Mutex
}

func start(t *testing.T, ctx context.Context, cfg config, pr pruner) run {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var mu sync.Mutex
	r := run{addr: ln.Addr().String(), code: make(chan int, 1), log: &b, mu: &mu}
	logger := log.New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return b.Write(p)
	}), "", 0)
	go func() { r.code <- serve(ctx, ln, cfg, pr, logger) }()
	return r
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

func (r run) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case c := <-r.code:
		return c
	case <-time.After(within):
		t.Fatalf("the reaper did not exit within %v", within)
		return -1
	}
}

func (r run) logged() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// send sends lines on a new connection and reads an answer per line.
func send(t *testing.T, addr string, lines ...string) (net.Conn, []string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var answers []string
	for _, l := range lines {
		if _, err := io.WriteString(c, l+"\n"); err != nil {
			t.Fatal(err)
		}
		a, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, a)
	}
	return c, answers
}

var fast = config{connectTimeout: 5 * time.Second, reconnTimeout: 300 * time.Millisecond, removeRetries: 3, retryInterval: 10 * time.Millisecond}

// The line testcontainers-go v0.45 sends: its default labels, joined with
// &, not URL-encoded.
const tcLine = "label=org.testcontainers=true&label=org.testcontainers.lang=go&label=org.testcontainers.version=0.45.0&label=org.testcontainers.sessionId=abc&label=org.testcontainers.reap=true"

func TestRemovesAfterTheLastClientLeaves(t *testing.T) {
	pr := &fakePruner{fails: 1}
	r := start(t, context.Background(), fast, pr)
	c1, a1 := send(t, r.addr, tcLine, tcLine)
	// Printed before the first accept.
	if !strings.Contains(r.logged(), "Started") {
		t.Errorf("no Started line: %q", r.logged())
	}
	c2, a2 := send(t, r.addr, "label=other%3Dx", "a=%zz")
	if strings.Join(a1, "") != "ACK\nACK\n" || strings.Join(a2, "") != "ACK\nERR\n" {
		t.Errorf("answers %q %q", a1, a2)
	}
	c1.Close()
	// One client still connected: nothing happens.
	time.Sleep(2 * fast.reconnTimeout)
	if len(pr.done()) != 0 {
		t.Fatal("pruned while a client was connected")
	}
	closed := time.Now()
	c2.Close()
	if code := r.wait(t, 5*time.Second); code != 0 {
		t.Errorf("exit %d\n%s", code, r.logged())
	}
	if d := time.Since(closed); d < fast.reconnTimeout {
		t.Errorf("pruned %v after the last client left, before the reconnection timeout", d)
	}
	rounds := pr.done()
	if len(rounds) != 2 || len(rounds[1]) != 2 {
		t.Fatalf("rounds %v: want two (one failed) of two sets", rounds)
	}
	// The sets come sorted by their canonical line: "label=org…" first.
	got := rounds[1][0]
	for _, want := range []string{"org.testcontainers=true", "org.testcontainers.sessionId=abc", "org.testcontainers.reap=true"} {
		if !got.ExactMatch("label", want) {
			t.Errorf("the testcontainers set lacks label %s: %v", want, got)
		}
	}
	if !rounds[1][1].ExactMatch("label", "other=x") {
		t.Errorf("the URL-encoded set: %v", rounds[1][1])
	}
}

func TestAReconnectionCancelsTheRemoval(t *testing.T) {
	pr := &fakePruner{}
	r := start(t, context.Background(), fast, pr)
	c, _ := send(t, r.addr, tcLine)
	c.Close()
	time.Sleep(fast.reconnTimeout / 3)
	c, _ = send(t, r.addr)
	time.Sleep(2 * fast.reconnTimeout)
	if len(pr.done()) != 0 {
		t.Fatal("pruned although a client reconnected in time")
	}
	c.Close()
	if code := r.wait(t, 5*time.Second); code != 0 || len(pr.done()) != 1 {
		t.Errorf("exit %d after %d rounds", code, len(pr.done()))
	}
}

func TestNoClientExitsAfterTheConnectionTimeout(t *testing.T) {
	pr := &fakePruner{}
	cfg := fast
	cfg.connectTimeout = 200 * time.Millisecond
	r := start(t, context.Background(), cfg, pr)
	if code := r.wait(t, 5*time.Second); code != 0 || len(pr.done()) != 0 {
		t.Errorf("exit %d after %d rounds", code, len(pr.done()))
	}
}

func TestASignalRemovesAtOnceAndFailuresExitOne(t *testing.T) {
	pr := &fakePruner{fails: 100}
	ctx, cancel := context.WithCancel(context.Background())
	r := start(t, ctx, fast, pr)
	c, _ := send(t, r.addr, tcLine)
	defer c.Close()
	cancel()
	if code := r.wait(t, 5*time.Second); code != 1 || len(pr.done()) != fast.removeRetries {
		t.Errorf("exit %d after %d rounds: want 1 after %d", code, len(pr.done()), fast.removeRetries)
	}
}
