package authz

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// Offline is what JudgeOffline found of one request.
type Offline struct {
	// Match is the route the request matched; nil when its target does
	// not route, and Decision is then the refusal the proxy answers it
	// with before any policy is consulted.
	Match    *Match
	Decision Decision
	// BodyIgnored says a body was given that the route does not read: it
	// would be forwarded unjudged.
	BodyIgnored bool
}

// JudgeOffline judges one request away from the proxy exactly as the
// proxy judges it (proxy/conn.go): routed by the same router, its body
// placed where its route's plan puts it (read whole, or spooled to a
// temporary file as serve spools tarballs), and decided by d through
// Judge. req holds the method, URL and caller (Caller, Subjects, Cred,
// ContainerID); JudgeOffline sets its header and body. It is the one
// core of `dockgate explain` and `dockgate policy test`. An error is a
// failure to spool the body, not a refusal.
func JudgeOffline(ctx context.Context, d Decider, req *Request, body []byte) (*Offline, error) {
	m, err := NewRouter().Route(req.Method, req.URL)
	if err != nil {
		status, msg := http.StatusBadRequest, err.Error()
		var re *RouteError
		if errors.As(err, &re) {
			status, msg = re.Status, re.Message
		}
		return &Offline{Decision: Decision{Status: status, Reason: msg}}, nil
	}
	out := &Offline{Match: m}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if m.NeedsBody && len(body) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch plan := m.BodyPlan(req.Method, req.Header); {
	case plan == BodyInMemory:
		req.Body = body
	case plan == BodySpooled && len(body) > 0:
		f, err := os.CreateTemp("", "dockgate-offline-*")
		if err != nil {
			return nil, err
		}
		defer f.Close()
		os.Remove(f.Name())
		if _, err := f.Write(body); err != nil {
			return nil, err
		}
		req.BodyFile, req.BodySize = f, int64(len(body))
	case plan == BodyForwarded && len(body) > 0:
		out.BodyIgnored = true
	}
	out.Decision = Judge(ctx, d, m, req)
	return out, nil
}

// CredOf is the host identity the uid: and gid: subjects of a caller
// described by its subjects (explain's --as, a policy test's as:) stand
// for, for judging which host paths it could change; nil (no account on
// this host) without a uid: subject.
func CredOf(subjects []string) *Cred {
	var c *Cred
	var gids []uint32
	for _, s := range subjects {
		kind, v, _ := strings.Cut(s, ":")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			continue
		}
		switch kind {
		case "uid":
			if c == nil {
				c = &Cred{UID: uint32(n)}
			}
		case "gid":
			gids = append(gids, uint32(n))
		}
	}
	if c != nil {
		c.GIDs = gids
	}
	return c
}
