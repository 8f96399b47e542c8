package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
)

// maxVerifiedBody bounds an answer read whole to be checked (a container
// create's {"Id":…,"Warnings":[…]}). A larger one is never passed on
// unchecked: the client gets a 502.
const maxVerifiedBody = maxObjectBody

// copyVerifiedResponse sends dockerd's answer to a request whose decision
// judges it again at the act (head.verify, authz.Decision.Verify): the
// answer is read whole, checked, and only then sent, with its length. A
// check that fails (after undoing what dockerd did) answers its error
// instead, so the client never gets a success that was not checked; an
// answer that cannot be read whole is a 502.
func (cn *clientConn) copyVerifiedResponse(ctx context.Context, head *requestHead, m *authz.Match, resp *http.Response, bodyDone chan error, rec *audit.Record) (keep, upstreamOK bool) {
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxVerifiedBody+1))
	if err == nil && len(raw) > maxVerifiedBody {
		err = fmt.Errorf("dockerd's answer is over %s and cannot be checked", formatBytes(maxVerifiedBody))
	}
	if bodyDone != nil && err == nil && !awaitBody(bodyDone) {
		err = errors.New("dockerd answered before reading the request body")
	}
	if err != nil {
		rec.Decision, rec.Reason, rec.Status = audit.DecisionError, "reading dockerd's answer to check it: "+err.Error(), http.StatusBadGateway
		if bodyDone != nil {
			cn.up.nc.Close()
			<-bodyDone
		}
		writeError(cn.bw, head.Method, http.StatusBadGateway, rec.Reason, true)
		return false, false
	}
	if m.NewID == authz.NewIDInBody && resp.StatusCode < 300 {
		// Also when the check fails: the record names what dockerd
		// created, and was removed again.
		rec.ObjectID = objectID(raw)
	}
	if err := head.verify(ctx, resp.StatusCode, raw); err != nil {
		status, decision := hookFailure(err)
		rec.Decision, rec.Reason, rec.Status = decision, err.Error(), status
		if werr := writeError(cn.bw, head.Method, status, rec.Reason, head.Close); werr != nil {
			return false, !resp.Close
		}
		return !head.Close, !resp.Close
	}
	checked := *resp
	checked.ContentLength = int64(len(raw))
	framing := framingLength
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		// No body, and no Content-Length either (RFC 9110 §8.6): the
		// 204 of a checked rename or remove goes out as dockerd sent it.
		framing = framingNone
	}
	writeResponseHead(cn.bw, &checked, framing, false, head.Close)
	cn.bw.Write(raw)
	if err := cn.bw.Flush(); err != nil {
		rec.Reason, rec.Outcome = "client went away during the response", audit.OutcomeClientAborted
		return false, !resp.Close
	}
	rec.BytesOut = int64(len(raw))
	return !head.Close, !resp.Close
}

// hookFailure is the answer to a decision hook (Prepare, Verify) that
// failed: the status its *authz.RouteError carries (502 for any other
// error: dockerd could not be asked), and a deny for a 403.
func hookFailure(err error) (status int, decision string) {
	status = http.StatusBadGateway
	var re *authz.RouteError
	if errors.As(err, &re) {
		status = re.Status
	}
	decision = audit.DecisionError
	if status == http.StatusForbidden {
		decision = audit.DecisionDeny
	}
	return status, decision
}
