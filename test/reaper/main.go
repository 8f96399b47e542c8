// Command reaper is the end-to-end tests' stand-in for testcontainers'
// Ryuk: a container that, once its clients are gone, removes what they
// asked it to. It speaks the protocol testcontainers-go v0.45 speaks to
// Ryuk (reaper.go there), so that the testcontainers flow can run with the
// reaper on without the testcontainers/ryuk image, which the test machines
// cannot pull, and without Ryuk's Go module, which the module proxy here
// does not serve. It is written from the protocol, not from Ryuk's source.
//
// The protocol: a client connects over TCP (RYUK_PORT, default 8080) and
// sends lines, each a set of Docker filters in URL query form
// ("label=org.testcontainers=true&label=org.testcontainers.sessionId=abc",
// every key and value ANDed); each line is answered "ACK\n" ("ERR\n" when
// it does not parse). The client keeps the connection open for as long as
// its tests run.
//
// The lifetime: it prints a line containing "Started" once it listens
// (testcontainers-go waits for that line and for the mapped port). If no
// client connects within RYUK_CONNECTION_TIMEOUT (default 1m) it exits.
// Once some client has connected and every connection is closed, it waits
// RYUK_RECONNECTION_TIMEOUT (default 10s); if nobody connects in that time
// it removes, for every filter set it was sent, the matching containers
// (forced, with their anonymous volumes), then networks, volumes and
// images (dangling=false, forced), retrying what failed (a network still
// in use by a container being removed) for up to RYUK_REMOVE_RETRIES
// (default 10) rounds a second apart, and exits: 0 when everything
// matched is gone, 1 otherwise. SIGTERM or SIGINT make it remove at once,
// so that a test need not wait out the reconnection timeout. It reaches
// dockerd as the Docker SDK's FromEnv does: DOCKER_HOST, else
// /var/run/docker.sock, where testcontainers-go bind-mounts the socket.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/filters"
)

// config is what the environment sets.
type config struct {
	port           string
	connectTimeout time.Duration
	reconnTimeout  time.Duration
	removeRetries  int
	retryInterval  time.Duration
}

func configFromEnv() (config, error) {
	c := config{port: "8080", connectTimeout: time.Minute, reconnTimeout: 10 * time.Second, removeRetries: 10, retryInterval: time.Second}
	if p := os.Getenv("RYUK_PORT"); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return c, fmt.Errorf("RYUK_PORT %q: not a port", p)
		}
		c.port = p
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{"RYUK_CONNECTION_TIMEOUT", &c.connectTimeout}, {"RYUK_RECONNECTION_TIMEOUT", &c.reconnTimeout}} {
		if v := os.Getenv(d.env); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				return c, fmt.Errorf("%s %q: not a positive duration", d.env, v)
			}
			*d.to = t
		}
	}
	if v := os.Getenv("RYUK_REMOVE_RETRIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("RYUK_REMOVE_RETRIES %q: not a positive number", v)
		}
		c.removeRetries = n
	}
	return c, nil
}

func main() {
	logger := log.New(os.Stdout, "reaper: ", log.LstdFlags|log.Lmicroseconds)
	cfg, err := configFromEnv()
	if err != nil {
		logger.Print(err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := net.Listen("tcp", ":"+cfg.port)
	if err != nil {
		logger.Print(err)
		os.Exit(2)
	}
	pr, err := newDockerPruner(logger)
	if err != nil {
		logger.Print(err)
		os.Exit(2)
	}
	defer pr.close()
	os.Exit(serve(ctx, ln, cfg, pr, logger))
}

// pruner removes what matches a filter set: dockerPruner, or a fake in the
// tests of the protocol.
type pruner interface {
	// prune removes what matches every set once and returns how many
	// objects it removed and what it failed to remove.
	prune(ctx context.Context, sets []filters.Args) (removed int, errs []error)
}

// server is the state of the protocol: the filter sets sent so far and
// the open connections.
type server struct {
	log     *log.Logger
	mu      sync.Mutex
	sets    map[string]filters.Args // by their canonical line
	conns   map[net.Conn]struct{}
	ever    bool          // a client has connected
	changed chan struct{} // a connection came or went (coalesced)
}

// serve runs the protocol on ln until it is time to prune, prunes and
// returns the exit status.
func serve(ctx context.Context, ln net.Listener, cfg config, pr pruner, logger *log.Logger) int {
	s := &server{log: logger, sets: map[string]filters.Args{}, conns: map[net.Conn]struct{}{}, changed: make(chan struct{}, 1)}
	// testcontainers-go waits for this word in the log.
	logger.Printf("Started: listening on %s", ln.Addr())

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.accept(ln, &wg)
	}()
	defer func() {
		ln.Close()
		s.closeAll()
		wg.Wait()
	}()

	timer := time.NewTimer(cfg.connectTimeout)
	defer timer.Stop()
	reconnecting := false // the timer runs for the reconnection timeout
	for {
		select {
		case <-ctx.Done():
			logger.Printf("signalled: removing now")
			return s.shutdown(ln, cfg, pr)
		case <-s.changed:
			n, ever := s.state()
			switch {
			case n > 0:
				timer.Stop()
				reconnecting = false
			case ever && !reconnecting:
				logger.Printf("no client connected: removing in %v unless one connects", cfg.reconnTimeout)
				timer.Reset(cfg.reconnTimeout)
				reconnecting = true
			}
		case <-timer.C:
			n, ever := s.state()
			switch {
			case n > 0: // one connected as the timer fired
			case !ever:
				logger.Printf("no client connected within %v: exiting", cfg.connectTimeout)
				return 0
			default:
				logger.Printf("no client reconnected within %v: removing", cfg.reconnTimeout)
				return s.shutdown(ln, cfg, pr)
			}
		}
	}
}

func (s *server) state() (conns int, ever bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns), s.ever
}

func (s *server) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *server) accept(ln net.Listener, wg *sync.WaitGroup) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Printf("accept: %v", err)
			}
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.ever = true
		s.mu.Unlock()
		s.log.Printf("client %s connected", c.RemoteAddr())
		s.notify()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
			s.log.Printf("client %s disconnected", c.RemoteAddr())
			s.notify()
		}()
	}
}

// handle reads filter lines until the client closes the connection.
func (s *server) handle(c net.Conn) {
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		args, key, err := parseFilters(line)
		answer := "ACK\n"
		if err != nil {
			s.log.Printf("client %s: bad filter line %q: %v", c.RemoteAddr(), line, err)
			answer = "ERR\n"
		} else {
			s.mu.Lock()
			_, seen := s.sets[key]
			s.sets[key] = args
			s.mu.Unlock()
			if !seen {
				s.log.Printf("client %s: will remove what matches %s", c.RemoteAddr(), key)
			}
		}
		if _, err := c.Write([]byte(answer)); err != nil {
			return
		}
	}
}

// parseFilters reads one line of the protocol into Docker filters, and
// returns a canonical form of it (sorted) so that the same set sent by
// many clients is removed once.
func parseFilters(line string) (filters.Args, string, error) {
	q, err := url.ParseQuery(line)
	if err != nil {
		return filters.Args{}, "", err
	}
	args := filters.NewArgs()
	var parts []string
	for k, vs := range q {
		if k == "" {
			return filters.Args{}, "", errors.New("a filter without a name")
		}
		for _, v := range vs {
			args.Add(k, v)
			parts = append(parts, k+"="+v)
		}
	}
	if len(parts) == 0 {
		return filters.Args{}, "", errors.New("no filters")
	}
	sort.Strings(parts)
	return args, strings.Join(parts, "&"), nil
}

// closeAll closes the clients' connections, so that their handlers end.
func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// shutdown stops taking clients and removes what every filter set matches,
// retrying what failed.
func (s *server) shutdown(ln net.Listener, cfg config, pr pruner) int {
	ln.Close()
	s.mu.Lock()
	keys := make([]string, 0, len(s.sets))
	for k := range s.sets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sets := make([]filters.Args, 0, len(keys))
	for _, k := range keys {
		sets = append(sets, s.sets[k])
	}
	s.mu.Unlock()
	if len(sets) == 0 {
		s.log.Printf("nothing to remove: exiting")
		return 0
	}
	// Not the signal's context: a signal is what asked for the removal.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	total := 0
	for round := 1; ; round++ {
		n, errs := pr.prune(ctx, sets)
		total += n
		if len(errs) == 0 {
			s.log.Printf("removed %d objects: exiting", total)
			return 0
		}
		if round >= cfg.removeRetries || ctx.Err() != nil {
			s.log.Printf("removed %d objects; after %d rounds these remain: %v", total, round, errors.Join(errs...))
			return 1
		}
		s.log.Printf("round %d: %d failed, retrying in %v: %v", round, len(errs), cfg.retryInterval, errors.Join(errs...))
		select {
		case <-time.After(cfg.retryInterval):
		case <-ctx.Done():
		}
	}
}
