package h2relay

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// testWatcher refuses calls to refuseMethod when they start, and Check
// requests for a service named "refuse…" when their message is read.
type testWatcher struct {
	refuseMethod string
	mu           sync.Mutex
	started      []string
	services     []string
	ended        int
}

func (w *testWatcher) Start(c *Call) (Watch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started = append(w.started, c.Method)
	if c.Method == w.refuseMethod {
		return Watch{}, errors.New("dockgate: " + c.Method + " is refused")
	}
	return Watch{Requests: true}, nil
}

func (w *testWatcher) Message(c *Call, response bool, msg []byte) (bool, []byte, error) {
	var req healthpb.HealthCheckRequest
	if err := proto.Unmarshal(msg, &req); err != nil {
		return false, nil, err
	}
	w.mu.Lock()
	w.services = append(w.services, req.Service[:min(len(req.Service), 16)])
	w.mu.Unlock()
	if strings.HasPrefix(req.Service, "refuse") {
		return false, nil, errors.New("dockgate: service refused: 100% sure")
	}
	if strings.HasPrefix(req.Service, "grow") {
		out, _ := proto.Marshal(&healthpb.HealthCheckRequest{Service: "grown" + strings.Repeat("-", len(req.Service)*3)})
		return false, out, nil
	}
	if strings.HasPrefix(req.Service, "rename") {
		// Same length: the server sees "xxname-…".
		out, _ := proto.Marshal(&healthpb.HealthCheckRequest{Service: "xx" + req.Service[2:]})
		return false, out, nil
	}
	return false, nil, nil
}

func (w *testWatcher) End(*Call) {
	w.mu.Lock()
	w.ended++
	w.mu.Unlock()
}

// bed is a gRPC health server behind the relay, and a client of it.
type bed struct {
	client  healthpb.HealthClient
	conn    *grpc.ClientConn
	results chan Result
	relays  sync.WaitGroup
}

func newBed(t *testing.T, w Watcher) *bed {
	t.Helper()
	dir := t.TempDir()
	srvPath, relayPath := filepath.Join(dir, "server.sock"), filepath.Join(dir, "relay.sock")
	sl, err := net.Listen("unix", srvPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("ok", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("xxname-1", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("grown"+strings.Repeat("-", 3*44), healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(sl)
	t.Cleanup(srv.Stop)

	rl, err := net.Listen("unix", relayPath)
	if err != nil {
		t.Fatal(err)
	}
	b := &bed{results: make(chan Result, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			c, err := rl.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("unix", srvPath)
			if err != nil {
				c.Close()
				continue
			}
			b.relays.Add(1)
			go func() {
				defer b.relays.Done()
				b.results <- Relay(ctx, c, bufio.NewReader(c), s, bufio.NewReader(s), w, Options{})
			}()
		}
	}()
	conn, err := grpc.NewClient("unix://"+relayPath, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	b.conn, b.client = conn, healthpb.NewHealthClient(conn)
	t.Cleanup(func() {
		conn.Close()
		rl.Close()
		done := make(chan struct{})
		go func() { b.relays.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("a relay did not end after its client closed")
		}
		cancel()
	})
	return b
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func (b *bed) check(t *testing.T, service string, opts ...grpc.CallOption) error {
	t.Helper()
	_, err := b.client.Check(ctx(t), &healthpb.HealthCheckRequest{Service: service}, opts...)
	return err
}

func wantRefused(t *testing.T, err error, msg string) {
	t.Helper()
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), msg) {
		t.Fatalf("want PermissionDenied with %q, got %v", msg, err)
	}
}

func TestAllowedCallIsRelayedAndRead(t *testing.T) {
	w := &testWatcher{}
	b := newBed(t, w)
	if err := b.check(t, "ok"); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.started) != 1 || w.started[0] != "/grpc.health.v1.Health/Check" || len(w.services) != 1 || w.services[0] != "ok" {
		t.Errorf("watcher saw starts %v, messages %v", w.started, w.services)
	}
}

func TestRefusedMessageGetsPermissionDeniedAndTheConnectionGoesOn(t *testing.T) {
	w := &testWatcher{}
	b := newBed(t, w)
	for i := 0; i < 3; i++ {
		wantRefused(t, b.check(t, "refuse-me"), "dockgate: service refused: 100% sure")
		if err := b.check(t, "ok"); err != nil {
			t.Fatalf("an allowed call after a refused one: %v", err)
		}
	}
}

func TestRefusedAtStartBeforeAnyMessage(t *testing.T) {
	w := &testWatcher{refuseMethod: "/grpc.health.v1.Health/Watch"}
	b := newBed(t, w)
	stream, err := b.client.Watch(ctx(t), &healthpb.HealthCheckRequest{Service: "ok"})
	if err == nil {
		_, err = stream.Recv()
	}
	wantRefused(t, err, "Health/Watch is refused")
	if err := b.check(t, "ok"); err != nil {
		t.Fatalf("an allowed call after a refused one: %v", err)
	}
}

// The refused messages together are larger than any flow-control window
// gRPC grows to: unless the relay gives the client back the window of
// every frame it drops, the connection stalls and the last call hangs.
func TestDroppedFramesGiveTheirWindowBack(t *testing.T) {
	w := &testWatcher{}
	b := newBed(t, w)
	big := "refuse" + strings.Repeat("x", 1<<20)
	for i := 0; i < 24; i++ {
		wantRefused(t, b.check(t, big), "service refused")
	}
	if err := b.check(t, "ok"); err != nil {
		t.Fatalf("an allowed call after 24 MiB of refused ones: %v", err)
	}
}

func TestCompressedMessageIsRefused(t *testing.T) {
	b := newBed(t, &testWatcher{})
	wantRefused(t, b.check(t, "ok", grpc.UseCompressor(gzip.Name)), "compressed gRPC message")
}

func TestEveryStartedCallEnds(t *testing.T) {
	w := &testWatcher{refuseMethod: "/grpc.health.v1.Health/Watch"}
	b := newBed(t, w)
	_ = b.check(t, "ok")
	_ = b.check(t, "refuse")
	if s, err := b.client.Watch(ctx(t), &healthpb.HealthCheckRequest{Service: "ok"}); err == nil {
		_, _ = s.Recv()
	}
	b.conn.Close()
	select {
	case <-b.results:
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not end after its client closed")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended != len(w.started) {
		t.Errorf("%d calls started, %d ended", len(w.started), w.ended)
	}
}

// A peer that sends what is not HTTP/2 gets GOAWAY saying why, and the
// relay ends with the error.
func TestUnreadableFramesEndTheConnection(t *testing.T) {
	for name, input := range map[string]string{
		"not the preface":     "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"settings of 5 bytes": Preface + "\x00\x00\x05\x04\x00\x00\x00\x00\x00" + "\x00\x00\x00\x00\x00",
		"push promise":        Preface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00" + "\x00\x00\x04\x05\x04\x00\x00\x00\x01\x00\x00\x00\x02",
		"headers on stream 2": Preface + "\x00\x00\x01\x01\x05\x00\x00\x00\x02\x82",
	} {
		t.Run(name, func(t *testing.T) {
			c1, c2 := socketPair(t)
			s1, s2 := socketPair(t)
			done := make(chan Result, 1)
			go func() {
				done <- Relay(t.Context(), c2, bufio.NewReader(c2), s2, bufio.NewReader(s2), &testWatcher{}, Options{})
			}()
			go func() { // the server side just reads
				buf := make([]byte, 4096)
				for {
					if _, err := s1.Read(buf); err != nil {
						return
					}
				}
			}()
			if _, err := c1.Write([]byte(input)); err != nil {
				t.Fatal(err)
			}
			var res Result
			select {
			case res = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the relay did not end")
			}
			if res.Err == nil {
				t.Fatalf("relay ended without an error")
			}
			t.Log(res.Err)
		})
	}
}

func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// A replacement goes out in place of the message: the server answers for
// the service the watcher wrote, which alone it knows. A message that
// started in an earlier frame cannot be rewritten, and its call is refused.
func TestReplacedMessageIsWhatTheServerGets(t *testing.T) {
	b := newBed(t, &testWatcher{})
	if err := b.check(t, "rename-1"); err != nil {
		t.Fatalf("the rewritten call: %v", err)
	}
	wantRefused(t, b.check(t, "rename-"+strings.Repeat("y", 40<<10)), "cannot rewrite a message that began in an earlier frame")
	if err := b.check(t, "ok"); err != nil {
		t.Fatalf("an allowed call after a refused one: %v", err)
	}
}

// Calls the client cancels while the server answers: the server's headers
// and data for a stream already reset are still on their way, and pass.
func TestFramesOfACancelledCallStillPass(t *testing.T) {
	b := newBed(t, &testWatcher{})
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithCancel(t.Context())
		s, err := b.client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "ok"})
		if err == nil {
			go func() { _, _ = s.Recv() }()
		}
		cancel()
	}
	if err := b.check(t, "ok"); err != nil {
		t.Fatalf("a call after 50 cancelled ones: %v", err)
	}
}

// A longer replacement: the server gets it whole (in as many frames as it
// takes), and the bytes it adds are paid back out of the window updates
// the server sends, so that the client never gets them as credit: many
// grown calls, then messages that fill any window, still pass.
func TestGrownMessageIsWhatTheServerGets(t *testing.T) {
	w := &testWatcher{}
	b := newBed(t, w)
	for i := 0; i < 300; i++ {
		// Only the grown name is a service the server knows.
		if err := b.check(t, "grow"+strings.Repeat("+", 40)); err != nil {
			t.Fatalf("grown call %d: %v", i, err)
		}
	}
	big := strings.Repeat("x", 1<<20)
	for i := 0; i < 24; i++ {
		if _, err := b.client.Check(ctx(t), &healthpb.HealthCheckRequest{Service: big}); status.Code(err) != codes.NotFound {
			t.Fatalf("a 1 MiB call after the grown ones: %v", err)
		}
	}
	if err := b.check(t, "ok"); err != nil {
		t.Fatal(err)
	}
}

// handleWatcher refuses nothing itself; its owner refuses a running
// server-streaming call through the relay's Handle.
type handleWatcher struct {
	testWatcher
	started chan uint32
}

func (w *handleWatcher) Start(c *Call) (Watch, error) {
	if c.Method == "/grpc.health.v1.Health/Watch" {
		w.started <- c.Stream
	}
	return Watch{}, nil
}

// A call refused from outside the Watcher (a Dockerfile refused on
// another connection ends the Solve that asked for it) ends with
// PERMISSION_DENIED, and the connection goes on.
func TestHandleRefusesARunningCall(t *testing.T) {
	dir := t.TempDir()
	srvPath := filepath.Join(dir, "server.sock")
	sl, err := net.Listen("unix", srvPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("ok", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(sl)
	defer srv.Stop()
	c1, c2 := socketPair(t)
	s, err := net.Dial("unix", srvPath)
	if err != nil {
		t.Fatal(err)
	}
	w := &handleWatcher{started: make(chan uint32, 1)}
	h := new(Handle)
	done := make(chan Result, 1)
	go func() {
		done <- Relay(t.Context(), c2, bufio.NewReader(c2), s, bufio.NewReader(s), w, Options{Handle: h})
	}()
	conn, err := grpc.NewClient("passthrough:///x", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return c1, nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	stream, err := client.Watch(ctx(t), &healthpb.HealthCheckRequest{Service: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	id := <-w.started
	if !h.Refuse(id, errors.New("dockgate: its Dockerfile was refused")) {
		t.Fatal("the call was not running")
	}
	_, err = stream.Recv()
	wantRefused(t, err, "its Dockerfile was refused")
	if _, err := client.Check(ctx(t), &healthpb.HealthCheckRequest{Service: "ok"}); err != nil {
		t.Fatalf("a call after the refused one: %v", err)
	}
	if h.Refuse(id, errors.New("again")) {
		t.Error("a call already refused was refused again")
	}
}
