package proxy

import (
	"errors"
	"io"
	"net/http"
	"os"

	"github.com/dockgate/dockgate/authz"
)

// errRewriteTooLarge stops a rewritten body at the spool limit.
var errRewriteTooLarge = errors.New("over the spool limit")

// limitedWriter fails a write past n bytes.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, errRewriteTooLarge
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

// rewriteSpool writes the body the decision forwards instead of the
// spooled one (authz.Decision.RewriteSpool: a build context with its FROM
// lines pinned) into an unlinked temporary file of its own, bounded like a
// spooled body, and returns it ready to forward. An error is a refusal
// (*wireError); the file is then closed already.
func (cn *clientConn) rewriteSpool(rewrite func(io.Writer) error) (*os.File, int64, error) {
	limit := cn.set.Limits.MaxSpoolBytes
	if limit <= 0 {
		limit = DefaultMaxSpoolBytes
	}
	f, err := os.CreateTemp(cn.set.Limits.SpoolDir, "dockgate-spool-*")
	if err != nil {
		return nil, 0, &wireError{Status: http.StatusInternalServerError, Msg: "cannot spool the pinned request body: " + err.Error()}
	}
	os.Remove(f.Name())
	lw := &limitedWriter{w: onlyWriter{f}, n: limit}
	if err := rewrite(lw); err != nil {
		f.Close()
		var re *authz.RouteError
		switch {
		case errors.Is(err, errRewriteTooLarge):
			return nil, 0, &wireError{Status: http.StatusRequestEntityTooLarge, Msg: "the pinned request body is larger than the spool limit of " + formatBytes(limit)}
		case errors.As(err, &re):
			return nil, 0, &wireError{Status: re.Status, Msg: re.Message}
		}
		return nil, 0, &wireError{Status: http.StatusBadRequest, Msg: "cannot pin the request body: " + err.Error()}
	}
	return f, limit - lw.n, nil
}
