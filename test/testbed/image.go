package testbed

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/docker/docker/api/types/image"
)

// File is one extra regular file of an imported image.
type File struct {
	Name string    // path inside the image, without the leading slash
	Mode int64     // 0o644 when zero
	Size int64     // bytes that Data yields
	Data io.Reader // exactly Size bytes
}

// ImportBusybox imports a busybox image as ref: /bin/busybox from the host's
// busybox-static, one symlink per applet, PATH=/bin and CMD ["sh"].
func (d *Dockerd) ImportBusybox(ctx context.Context, ref string) error {
	return d.ImportImage(ctx, ref)
}

// ImportImage imports the busybox root file system plus extra files as ref,
// streaming the layer: a 100 MiB file is never held in memory.
func (d *Dockerd) ImportImage(ctx context.Context, ref string, extra ...File) error {
	return d.ImportImageWith(ctx, ref, nil, extra...)
}

// ImportImageWith is ImportImage with more Dockerfile instructions for the
// image's config (`EXPOSE 8080/tcp`, `ENTRYPOINT ["/bin/reaper"]`), applied
// after its own `ENV PATH=/bin` and `CMD ["sh"]`, so that a later CMD wins.
func (d *Dockerd) ImportImageWith(ctx context.Context, ref string, changes []string, extra ...File) error {
	bb := busyboxPath()
	if bb == "" {
		return errors.New("testbed: no busybox on this machine (apt-get install busybox-static)")
	}
	out, err := exec.CommandContext(ctx, bb, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") { // a symlink "busybox" would point at itself
			applets = append(applets, a)
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootfs(pw, bb, applets, extra)) }()
	defer pr.Close()

	c, err := d.Client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rc, err := c.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, ref, image.ImportOptions{
		Changes: append([]string{"ENV PATH=/bin", `CMD ["sh"]`}, changes...),
	})
	if err != nil {
		return fmt.Errorf("import %s: %w", ref, err)
	}
	defer rc.Close()
	// The answer is a JSON message stream; an error arrives inside it.
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			ErrorDetail *struct{ Message string } `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("import %s: %w", ref, err)
		}
		if msg.ErrorDetail != nil {
			return fmt.Errorf("import %s: %s", ref, msg.ErrorDetail.Message)
		}
	}
}

func writeRootfs(w io.Writer, busybox string, applets []string, extra []File) error {
	tw := tar.NewWriter(w)
	mtime := time.Unix(1700000000, 0)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: mtime})
	}
	for _, d := range []string{"bin", "etc", "root", "proc", "sys", "dev", "var"} {
		if err := dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := dir("tmp", 0o1777); err != nil {
		return err
	}
	for name, body := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, body); err != nil {
			return err
		}
	}
	f, err := os.Open(busybox)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: fi.Size(), ModTime: mtime}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return err
	}
	for _, a := range applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: mtime}); err != nil {
			return err
		}
	}
	for _, x := range extra {
		mode := x.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(x.Name, "/"), Mode: mode, Size: x.Size, ModTime: mtime}); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, x.Data, x.Size); err != nil {
			return fmt.Errorf("%s: %w", x.Name, err)
		}
	}
	return tw.Close()
}
