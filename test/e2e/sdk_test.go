package e2e

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// sdk is a Go SDK client for this side, negotiating the API version as
// most Go programs that talk to Docker do.
func (s *session) sdk() (*client.Client, context.Context) {
	s.t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost(s.side.host), client.WithAPIVersionNegotiation())
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	s.defer_(cancel)
	s.defer_(func() { c.Close() })
	return c, ctx
}

// self stands for this test process as the caller of SDK requests.
func self() result { return result{pid: os.Getpid()} }

func TestSDKPingNegotiatesTheAPIVersion(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		c, ctx := s.sdk()
		p, err := c.Ping(ctx)
		if err != nil {
			s.t.Fatalf("%s: ping: %v", s.side.name, err)
		}
		s.note("ping", p.APIVersion+" "+p.OSType+" "+strconv.FormatBool(p.Experimental))
		c.NegotiateAPIVersion(ctx)
		s.note("negotiated", c.ClientVersion())
		v, err := c.ServerVersion(ctx)
		if err != nil {
			s.t.Fatalf("%s: version: %v", s.side.name, err)
		}
		s.note("server", v.Version+" "+v.APIVersion)
		s.expect(self(), "HEAD /_ping 200", "GET /version 200")
	})
}

func TestSDKContainerLifecycle(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		c, ctx := s.sdk()
		name := s.name("c")
		s.rmContainer(name)
		created, err := c.ContainerCreate(ctx, &container.Config{
			Image: image,
			Cmd:   []string{"sh", "-c", "echo out; echo err >&2; exit 2"},
		}, nil, nil, nil, name)
		if err != nil {
			s.t.Fatalf("%s: create: %v", s.side.name, err)
		}
		if err := c.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
			s.t.Fatalf("%s: start: %v", s.side.name, err)
		}
		waitC, errC := c.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
		select {
		case w := <-waitC:
			s.note("wait", strconv.FormatInt(w.StatusCode, 10))
			if w.StatusCode != 2 {
				s.t.Errorf("%s: wait says %d, want 2", s.side.name, w.StatusCode)
			}
		case err := <-errC:
			s.t.Fatalf("%s: wait: %v", s.side.name, err)
		}
		rc, err := c.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			s.t.Fatalf("%s: logs: %v", s.side.name, err)
		}
		var stdout, stderr bytes.Buffer
		_, err = stdcopy.StdCopy(&stdout, &stderr, rc)
		rc.Close()
		if err != nil || stdout.String() != "out\n" || stderr.String() != "err\n" {
			s.t.Errorf("%s: logs: %q %q %v", s.side.name, stdout.String(), stderr.String(), err)
		}
		s.note("logs", stdout.String()+"|"+stderr.String())
		if err := c.ContainerRemove(ctx, created.ID, container.RemoveOptions{}); err != nil {
			s.t.Errorf("%s: remove: %v", s.side.name, err)
		}
		s.expect(self(), "POST /containers/create 201", "POST /containers/"+created.ID+"/start 204",
			"POST /containers/"+created.ID+"/wait 200", "GET /containers/"+created.ID+"/logs 200", "DELETE /containers/"+created.ID+" 204")
	})
}

func TestSDKExecHalfCloseDeliversStdinEOF(t *testing.T) {
	data := make([]byte, 1<<20)
	_, _ = io.ReadFull(rand.NewChaCha8([32]byte{4}), data)
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		c, ctx := s.sdk()
		ex, err := c.ContainerExecCreate(ctx, name, container.ExecOptions{
			AttachStdin: true, AttachStdout: true, AttachStderr: true,
			Cmd: []string{"sh", "-c", "cat; echo stdin-closed >&2"},
		})
		if err != nil {
			s.t.Fatalf("%s: exec create: %v", s.side.name, err)
		}
		hr, err := c.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
		if err != nil {
			s.t.Fatalf("%s: exec attach: %v", s.side.name, err)
		}
		defer hr.Close()
		wrote := make(chan error, 1)
		go func() {
			_, err := hr.Conn.Write(data)
			if err == nil {
				err = hr.CloseWrite() // EOF for cat; the output must keep flowing
			}
			wrote <- err
		}()
		var stdout, stderr bytes.Buffer
		_ = hr.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = stdcopy.StdCopy(&stdout, &stderr, hr.Reader)
		if werr := <-wrote; werr != nil {
			s.t.Errorf("%s: writing stdin: %v", s.side.name, werr)
		}
		if err != nil || !bytes.Equal(stdout.Bytes(), data) || stderr.String() != "stdin-closed\n" {
			s.t.Errorf("%s: exec echoed %d of %d bytes, stderr %q, err %v", s.side.name, stdout.Len(), len(data), stderr.String(), err)
		}
		s.note("exec output", strconv.Itoa(stdout.Len())+" "+stderr.String())
		inspect, err := c.ContainerExecInspect(ctx, ex.ID)
		if err != nil || inspect.ExitCode != 0 || inspect.Running {
			s.t.Errorf("%s: exec inspect: %+v %v", s.side.name, inspect, err)
		}
		s.expect(self(), "POST /containers/"+name+"/exec 201", "POST /exec/"+ex.ID+"/start 101 hijacked in>=1048576 out>=1048576", "GET /exec/"+ex.ID+"/json 200")
	})
}

func TestSDKImageListShowsTheImage(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		c, ctx := s.sdk()
		images, err := c.ImageList(ctx, dockerimage.ListOptions{})
		if err != nil {
			s.t.Fatalf("%s: %v", s.side.name, err)
		}
		found := false
		for _, im := range images {
			if slices.Contains(im.RepoTags, image) {
				found = true
				s.note("image", im.ID+" "+strconv.FormatInt(im.Size, 10))
			}
		}
		if !found {
			s.t.Errorf("%s: %s is not in the image list", s.side.name, image)
		}
		s.expect(self(), "GET /images/json 200")
	})
}
