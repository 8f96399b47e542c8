package proxy

import (
	"context"
	"errors"
	"net/http"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
)

// forward sends an allowed request to dockerd and its answer back. body is
// the request body when it was read whole to be judged; else the body is
// streamed from the client as it arrives. It writes the audit record and
// reports whether the connection may carry another request.
func (cn *clientConn) forward(ctx context.Context, head *requestHead, m *authz.Match, body []byte, rec *audit.Record) bool {
	start := rec.Time

	// Copied before roundTrip: the goroutine that streams the request body
	// writes rec.BytesIn, so a copy taken later would race with it. Only
	// a stream's start is written, and only a stream pays for the copy.
	var startRec *audit.Record
	if m.Stream {
		startRec = new(audit.Record)
		*startRec = *rec
	}
	up, resp, bodyDone, err := cn.roundTrip(ctx, head, body, rec)
	if err != nil {
		var we *wireError
		if errors.As(err, &we) {
			cn.dropUpstream()
			return cn.refuse(head, rec, audit.DecisionError, we.Status, we.Msg)
		}
		if isClientAbort(err) {
			// The client left in the middle of the body it was sending
			// to dockerd: nobody is left to answer.
			rec.Status = 0
			cn.recordForwardAbort(rec, "of the request body; dockerd's request was cut off")
			cn.finish(rec, start)
			cn.dropUpstream()
			return false
		}
		rec.Decision = audit.DecisionError
		rec.Reason = err.Error()
		rec.Status = http.StatusBadGateway
		cn.finish(rec, start)
		cn.dropUpstream()
		if bodyDone != nil || (head.hasBody() && body == nil && head.spool == nil) {
			// The request body was not (all) read: where the next request
			// starts is unknown, so the connection ends here, after the
			// client had the chance to read why.
			if writeError(cn.bw, head.Method, http.StatusBadGateway, err.Error(), true) == nil {
				cn.linger(head)
			}
			return false
		}
		writeError(cn.bw, head.Method, http.StatusBadGateway, err.Error(), head.Close)
		return !head.Close
	}
	rec.Status = resp.StatusCode
	// Shutdown ends a response copy or a hijacked session that waits on a
	// quiet dockerd by closing up (cutUpstream, upstreamcut.go).

	hijack := (resp.StatusCode == http.StatusSwitchingProtocols && head.Upgrade) ||
		(isRawStream(resp) && m.Hijack)
	if hijack && head.verify != nil {
		// A session cannot be checked before the client has it.
		rec.Decision, rec.Reason, rec.Status = audit.DecisionError, "dockerd's answer must be checked before the client gets it, and it switched to a raw stream", http.StatusBadGateway
		cn.finish(rec, start)
		writeError(cn.bw, head.Method, http.StatusBadGateway, rec.Reason, true)
		return false
	}
	if hijack {
		if bodyDone != nil {
			if err := <-bodyDone; err != nil {
				if isClientAbort(err) {
					rec.Status = 0
					cn.recordForwardAbort(rec, "of the request body, before the session started")
				} else {
					rec.Decision, rec.Reason = audit.DecisionError, "request body: "+err.Error()
				}
				cn.finish(rec, start)
				return false
			}
		}
		if isBuildKitChannel(m, resp) {
			return cn.relayH2(ctx, head, m, resp, up, rec)
		}
		return cn.hijack(ctx, head, m, resp, up, rec)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		rec.Decision, rec.Reason, rec.Status = audit.DecisionError, "dockerd switched protocols without being asked", http.StatusBadGateway
		cn.finish(rec, start)
		writeError(cn.bw, head.Method, http.StatusBadGateway, rec.Reason, true)
		return false
	}

	if m.Stream && resp.StatusCode < 300 {
		startRec.Phase, startRec.Status = audit.PhaseStart, resp.StatusCode
		cn.s.cfg.Audit.Write(startRec)
	}
	var keep, bodyOK bool
	if head.verify != nil && head.Method != http.MethodHead {
		keep, bodyOK = cn.copyVerifiedResponse(ctx, head, m, resp, bodyDone, rec)
	} else {
		keep, bodyOK = cn.copyResponse(ctx, head, m, resp, bodyDone, rec)
	}
	if !bodyOK || resp.Close {
		cn.dropUpstream()
	}
	cn.finish(rec, start)
	return keep
}
