package proxy

import (
	"io"
	"net/http"
	"os"
)

// DefaultMaxSpoolBytes bounds a body spooled to disk to be judged (an
// image load's tarball, a build context) when Limits.MaxSpoolBytes is 0:
// large enough for the images and contexts CI builds, small enough that
// one client cannot fill a disk unnoticed.
const DefaultMaxSpoolBytes = 8 << 30

// spoolBody reads a request body that must be judged whole but may not fit
// in memory (Match.Spool) into an unlinked temporary file in
// Limits.SpoolDir, up to Limits.MaxSpoolBytes (413 above). The file is
// unlinked as soon as it exists, so that nothing is left behind whatever
// happens to the process; closing it frees the space. Memory stays flat:
// the body is copied in small chunks.
func (cn *clientConn) spoolBody(head *requestHead) (*os.File, int64, error) {
	limit := cn.set.Limits.MaxSpoolBytes
	if limit <= 0 {
		limit = DefaultMaxSpoolBytes
	}
	tooLarge := &wireError{Status: http.StatusRequestEntityTooLarge, Msg: "request body larger than the spool limit of " + formatBytes(limit)}
	if head.ContentLength > limit {
		return nil, 0, tooLarge
	}
	f, err := os.CreateTemp(cn.set.Limits.SpoolDir, "dockgate-spool-*")
	if err != nil {
		return nil, 0, &wireError{Status: http.StatusInternalServerError, Msg: "cannot spool the request body: " + err.Error()}
	}
	os.Remove(f.Name())
	head.bodyRead = true
	n, err := io.Copy(onlyWriter{f}, io.LimitReader(cn.bodyReader(head), limit+1))
	switch {
	case err != nil:
		f.Close()
		if _, isWrite := err.(*os.PathError); isWrite {
			// The disk, not the client: the body was not all read, and
			// where the next request starts is unknown.
			head.Close = true
			return nil, n, &wireError{Status: http.StatusInternalServerError, Msg: "cannot spool the request body: " + err.Error()}
		}
		return nil, n, eofIsUnexpected(err)
	case n > limit:
		f.Close()
		return nil, n, tooLarge
	case !head.chunked() && n != head.ContentLength:
		f.Close()
		return nil, n, io.ErrUnexpectedEOF
	}
	return f, n, nil
}

// onlyWriter hides the file's ReadFrom, so that io.Copy uses its own
// small buffer whatever the reader.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }
