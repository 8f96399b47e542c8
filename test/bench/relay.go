package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// The bare relay: the least any proxy in its own process can cost on this
// machine. It copies each /_ping request to dockerd and the answer back,
// one read and one write each way, with no parsing, decision or audit. The
// ping rows measure it beside dockerd and dockgate, so that a target is
// judged against what a separate process can reach here at all: on two
// cores shared by client, proxy and dockerd, the extra process costs
// context switches that no proxy code removes.
//
// It is this bench binary run with -relay-listen. In "ping" mode it
// assumes each read holds a whole message, which holds for /_ping and for
// nothing larger; in "copy" mode it copies each direction as it comes
// (io.Copy, two goroutines per connection), the floor for the streams.

// runRelay serves listen until the process is killed.
func runRelay(listen, upstream, mode string) error {
	os.Remove(listen)
	l, err := net.Listen("unix", listen)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		if mode == "copy" {
			go relayCopy(c, upstream)
		} else {
			go relayConn(c, upstream)
		}
	}
}

func relayConn(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("unix", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := u.Write(buf[:n]); err != nil {
			return
		}
		if n, err = u.Read(buf); err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func relayCopy(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("unix", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	go func() {
		io.Copy(u, c)
		u.(*net.UnixConn).CloseWrite()
	}()
	io.Copy(c, u)
}

// startRelay runs the bare relay in front of upstream in a process of its
// own and returns its socket, its pid and how to stop it.
func startRelay(ctx context.Context, dir, upstream, mode string) (socket string, pid int, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	socket = filepath.Join(dir, "relay-"+mode+".sock")
	cmd := exec.CommandContext(ctx, self, "-relay-listen", socket, "-relay-upstream", upstream, "-relay-mode", mode)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("starting the bare relay: %w", err)
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	if err := pollPing(ctx, socket, 10*time.Second); err != nil {
		stop()
		return "", 0, nil, errors.Join(errors.New("the bare relay does not answer"), err)
	}
	return socket, cmd.Process.Pid, stop, nil
}
