package proxy

import (
	"errors"
	"io"
	"net/http"

	"github.com/dockgate/dockgate/audit"
)

// maxFilteredBody bounds a response read whole to be filtered (a tenant's
// image list or disk usage). A daemon with more than this in one list is
// answered 502 rather than sent unfiltered.
const maxFilteredBody = 64 << 20

// errFilteredTooLarge is the refusal of a response over maxFilteredBody.
var errFilteredTooLarge = errors.New("dockerd's response is too large to filter for this caller")

// copyFilteredResponse sends a 200 response whose body the decision
// rewrites (head.filter): read whole, filtered, sent with its new length.
// A body that cannot be read or filtered is never sent as it was: the
// client gets a 502 and the connection to dockerd is dropped.
func (cn *clientConn) copyFilteredResponse(head *requestHead, resp *http.Response, bodyDone chan error, rec *audit.Record) (keep, upstreamOK bool) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxFilteredBody+1))
	if err == nil && len(raw) > maxFilteredBody {
		err = errFilteredTooLarge
	}
	if bodyDone != nil && err == nil && !awaitBody(bodyDone) {
		err = errors.New("dockerd answered before reading the request body")
	}
	var out []byte
	if err == nil {
		out, err = head.filter(raw)
	}
	if err != nil {
		rec.Decision, rec.Reason, rec.Status = audit.DecisionError, "filtering dockerd's response: "+err.Error(), http.StatusBadGateway
		if bodyDone != nil {
			cn.up.nc.Close()
			<-bodyDone
		}
		writeError(cn.bw, head.Method, http.StatusBadGateway, rec.Reason, true)
		return false, false
	}
	filtered := *resp
	filtered.ContentLength = int64(len(out))
	writeResponseHead(cn.bw, &filtered, framingLength, false, head.Close)
	cn.bw.Write(out)
	if err := cn.bw.Flush(); err != nil {
		rec.Reason, rec.Outcome = "client went away during the response", audit.OutcomeClientAborted
		return false, true
	}
	rec.BytesOut = int64(len(out))
	return !head.Close, !resp.Close
}
