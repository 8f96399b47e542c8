package main

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// streamRelayRatio is issue 19's target for every stream, both ways:
// dockgate moves at least this share of what the bare relay in copy mode
// (relay.go) moves in the same run.
const streamRelayRatio = 0.95

// streams moves cfg.streamSize bytes four ways — a tar uploaded into a
// container and downloaded again, a finished container's logs followed
// (`docker logs -f`), a container's stdout attached (hijacked) — straight
// at dockerd, through dockgate and through the bare relay, watching
// dockgate's memory while it streams.
func (b *bench) streams(ctx context.Context) ([]row, error) {
	mib := b.cfg.streamSize >> 20
	logf("generating %d MiB of stream data", mib)
	tarPath := filepath.Join(b.dir, "blob.tar")
	if err := writeTar(tarPath, b.cfg.streamSize); err != nil {
		return nil, err
	}
	defer os.Remove(tarPath)
	box, remove, err := b.box(ctx)
	if err != nil {
		return nil, err
	}
	defer remove()
	logf("a container writing %d MiB of logs", mib)
	logged, removeLogged, err := b.loggedContainer(ctx, b.cfg.streamSize)
	if err != nil {
		return nil, err
	}
	defer removeLogged()

	relay, relayPid, stopRelay, err := startRelay(ctx, b.dir, b.directSocket, "copy")
	if err != nil {
		return nil, err
	}
	defer stopRelay()
	relayed, err := newSDK(ctx, "unix://"+relay)
	if err != nil {
		return nil, err
	}
	defer relayed.Close()

	// Each side transfers rounds times, in turn, and its median counts: a
	// single transfer per side measured mostly what else the machine did
	// meanwhile.
	var peak rssPeak
	clients := []*client.Client{b.direct, b.proxied, relayed}
	measure := func(name string, op func(c *client.Client) (int64, time.Duration, error)) []row {
		logf("%s", name)
		rates := make([][]float64, len(clients))
		// CPU per MiB of dockgate and of the relay: on a loaded machine
		// the rates move with what else runs, what each spends on a MiB
		// much less.
		var gateCPU, relayCPU []float64
		var errs []error
		// dockgate's share of the relay's rate is taken round by round,
		// from the two transfers next to each other in time, and the
		// median of those counts: on this kind of machine the rate of
		// every side drifts by tens of percent over a minute (attach's
		// with the size of the pieces dockerd happens to write), and a
		// ratio of two medians taken minutes apart measured the drift.
		// Which of the two goes first alternates.
		var shares []float64
		for round := range b.cfg.rounds {
			order := []int{0, 1, 2}
			if round%2 == 1 {
				order = []int{0, 2, 1}
			}
			for _, side := range order {
				c := clients[side]
				stop := func() {}
				if side == 1 {
					stop = peak.watch(b.pid)
				}
				before := b.cpuSample(relayPid)
				r, err := transfer(func() (int64, time.Duration, error) { return op(c) })
				after := b.cpuSample(relayPid)
				stop()
				rates[side], errs = append(rates[side], r), append(errs, err, before.err, after.err)
				mib := float64(b.cfg.streamSize) / (1 << 20)
				switch side {
				case 1:
					gateCPU = append(gateCPU, float64((after.dockgate-before.dockgate).Microseconds())/mib)
				case 2:
					relayCPU = append(relayCPU, float64((after.relay-before.relay).Microseconds())/mib)
				}
			}
			if g, r := rates[1][round], rates[2][round]; r > 0 {
				shares = append(shares, g/r)
			}
		}
		err := errors.Join(errs...)
		d, g, r := median(rates[0]), median(rates[1]), median(rates[2])
		rc, gc := median(relayCPU), median(gateCPU)
		cpu := versus(row{Name: name + " CPU per MiB, dockgate and the relay", Unit: "µs", Direct: ptr(round(rc)), Dockgate: round(gc), Added: ptr(round(gc - rc))}, baseRelay)
		if err != nil {
			cpu.Error = err.Error()
		}
		return []row{
			rate(name, "MiB/s", d, g, err),
			rate(name+" bare relay (floor)", "MiB/s", d, r, err),
			atLeast(pairedShare(versus(rate(name+" dockgate vs bare relay", "MiB/s", r, g, err), baseRelay), shares), streamRelayRatio),
			cpu,
		}
	}
	rows := measure(fmt.Sprintf("upload %d MiB (archive put)", mib), func(c *client.Client) (int64, time.Duration, error) {
		return timed(func() (int64, error) { return upload(ctx, c, box, tarPath) })
	})
	rows = append(rows, measure(fmt.Sprintf("download %d MiB (archive get)", mib), func(c *client.Client) (int64, time.Duration, error) {
		return timed(func() (int64, error) { return download(ctx, c, box) })
	})...)
	rows = append(rows, measure(fmt.Sprintf("logs -f %d MiB", mib), func(c *client.Client) (int64, time.Duration, error) {
		return timed(func() (int64, error) { return followLogs(ctx, c, logged) })
	})...)
	rows = append(rows, measure(fmt.Sprintf("attach %d MiB of stdout (hijacked)", mib), func(c *client.Client) (int64, time.Duration, error) {
		return b.attachStream(ctx, c, b.cfg.streamSize)
	})...)

	rss := row{Name: fmt.Sprintf("peak RSS streaming %d MiB", mib), Unit: "MiB", Dockgate: round(float64(peak.max()) / 1024)}
	if peak.err != nil {
		rss.Error = peak.err.Error()
	}
	return append(rows, atMost(rss, 40)), nil
}

// logLine is what the logged container writes, over and over: text, not
// zeros, which json-file would store as six bytes each ("\u0000"), and long
// lines, so that dockerd decodes few log entries per MiB.
var logLine = strings.Repeat("dockgate ", 111)

// loggedContainer runs a container that writes size bytes to stdout and
// exits, so that every side follows the same finished log.
func (b *bench) loggedContainer(ctx context.Context, size int64) (id string, remove func(), err error) {
	resp, err := b.direct.ContainerCreate(ctx, &container.Config{Image: image,
		Cmd: []string{"sh", "-c", "yes " + logLine + " | head -c " + strconv.FormatInt(size, 10)}},
		&container.HostConfig{NetworkMode: "none", LogConfig: container.LogConfig{Type: "json-file"}}, nil, nil, "")
	if err != nil {
		return "", nil, fmt.Errorf("create the logged container: %w", err)
	}
	remove = func() {
		_ = b.direct.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	}
	if err := b.direct.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		remove()
		return "", nil, fmt.Errorf("start the logged container: %w", err)
	}
	waitC, errC := b.direct.ContainerWait(ctx, resp.ID, container.WaitConditionNotRunning)
	select {
	case w := <-waitC:
		if w.StatusCode != 0 {
			err = fmt.Errorf("the logged container exited %d", w.StatusCode)
		}
	case werr := <-errC:
		err = fmt.Errorf("wait for the logged container: %w", werr)
	}
	if err != nil {
		remove()
		return "", nil, err
	}
	return resp.ID, remove, nil
}

// followLogs is `docker logs -f` of a finished container: dockerd sends
// the whole log and ends the stream.
func followLogs(ctx context.Context, c *client.Client, id string) (int64, error) {
	rc, err := c.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		return 0, fmt.Errorf("logs: %w", err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		return n, fmt.Errorf("logs: %w", err)
	}
	return n, nil
}

// attachStream creates a container that writes size zero bytes to stdout,
// attaches to it through c (a hijacked connection), starts it straight at
// dockerd and reads to EOF. The clock starts at the first byte, so that
// the container's start-up, the same on every side, is not timed.
func (b *bench) attachStream(ctx context.Context, c *client.Client, size int64) (int64, time.Duration, error) {
	resp, err := b.direct.ContainerCreate(ctx, &container.Config{Image: image, AttachStdout: true,
		Cmd: []string{"head", "-c", strconv.FormatInt(size, 10), "/dev/zero"}},
		// No log: the stream is what is measured, not dockerd's disk.
		&container.HostConfig{NetworkMode: "none", LogConfig: container.LogConfig{Type: "none"}}, nil, nil, "")
	if err != nil {
		return 0, 0, fmt.Errorf("create the attached container: %w", err)
	}
	defer b.direct.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	hr, err := c.ContainerAttach(ctx, resp.ID, container.AttachOptions{Stream: true, Stdout: true})
	if err != nil {
		return 0, 0, fmt.Errorf("attach: %w", err)
	}
	defer hr.Close()
	if err := b.direct.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return 0, 0, fmt.Errorf("start the attached container: %w", err)
	}
	first := make([]byte, 32<<10)
	m, err := io.ReadAtLeast(hr.Reader, first, 1)
	if err != nil {
		return 0, 0, fmt.Errorf("attach: no first byte: %w", err)
	}
	start := time.Now()
	n, err := io.Copy(io.Discard, hr.Reader)
	took := time.Since(start)
	if err != nil {
		return n, took, fmt.Errorf("attach: %w", err)
	}
	// Stdout arrives in frames of its 8-byte header and the bytes; fewer
	// than size means the stream was cut short.
	if total := n + int64(m); total < size {
		return n, took, fmt.Errorf("attach: %d bytes, want at least %d", total, size)
	}
	return n, took, nil
}

// writeTar writes a tar holding one file "blob" of size random bytes.
// Random, so that nothing on the way can compress it; from a fast PRNG,
// because crypto/rand would make generating it the slowest part of the run.
func writeTar(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	if err := tw.WriteHeader(&tar.Header{Name: "blob", Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{'d', 'o', 'c', 'k', 'g', 'a', 't', 'e'})
	if _, err := io.CopyN(tw, rng, size); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// transfer runs one stream, which times itself, and returns MiB/s. Dirty
// pages of the previous transfer are written back first, so that one run
// does not pay for another.
func transfer(op func() (int64, time.Duration, error)) (float64, error) {
	syscall.Sync()
	n, took, err := op()
	if err != nil {
		return 0, err
	}
	if took <= 0 {
		return 0, errors.New("a stream that took no time")
	}
	return float64(n) / (1 << 20) / took.Seconds(), nil
}

// timed times op from its call to its return.
func timed(op func() (int64, error)) (int64, time.Duration, error) {
	start := time.Now()
	n, err := op()
	return n, time.Since(start), err
}

func upload(ctx context.Context, c *client.Client, box, tarPath string) (int64, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := c.CopyToContainer(ctx, box, "/tmp", f, container.CopyToContainerOptions{}); err != nil {
		return 0, fmt.Errorf("archive put: %w", err)
	}
	return fi.Size(), nil
}

func download(ctx context.Context, c *client.Client, box string) (int64, error) {
	rc, _, err := c.CopyFromContainer(ctx, box, "/tmp/blob")
	if err != nil {
		return 0, fmt.Errorf("archive get: %w", err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		return n, fmt.Errorf("archive get: %w", err)
	}
	return n, nil
}

// pairedShare gives r the median of the round-by-round shares as its
// ratio, in place of the ratio of the two medians.
func pairedShare(r row, shares []float64) row {
	if r.Error == "" && len(shares) > 0 {
		r.Ratio = ptr(round(median(shares)))
	}
	return r
}
