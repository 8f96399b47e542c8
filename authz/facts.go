package authz

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/docker/docker/api/types/versions"

	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
)

// Facts: what a request would do, read from its path, query and body with
// dockerd's own semantics (BRIEF §3). Each endpoint that can reach the host
// has one fact reader, named for it and given to its row of the route table
// (routes.go); endpoints without one carry only their endpoint fact (added
// by the decider).

// endpointFacts reads the facts of one endpoint into x.
type endpointFacts func(x *extraction) error

// DefaultExtractor reads the facts of every route with a fact reader with
// dockerd's semantics, resolving host paths on this host. On every route it
// first refuses form-encoded bodies (checkFormBody). Its errors are
// *RouteError: 400 for a request that cannot be judged, 413 for an
// oversized JSON body, 502 when dockerd cannot be asked about a volume,
// container or service the facts depend on. It takes dockgate's own
// socket to be serve's default, /run/dockgate/docker.sock, and dockerd's
// the default upstream, /var/run/docker.sock: a bind of a Docker socket is
// delegated to that (NewExtractor says otherwise).
func DefaultExtractor() Extractor {
	return NewExtractor(DockerSockets{Listen: []string{"/run/dockgate/docker.sock"}, Upstream: "/var/run/docker.sock"})
}

// NewExtractor is DefaultExtractor with the Docker sockets of this
// dockgate: which host paths are Docker sockets, and where a bind of one
// is delegated.
func NewExtractor(sockets DockerSockets) Extractor {
	return newExtractor(hostFS{root: "/", sockets: sockets})
}

func newExtractor(host hostFS) Extractor {
	return func(ctx context.Context, m *Match, req *Request, in Inspector) ([]policy.Fact, error) {
		if m == nil || req == nil {
			return nil, nil
		}
		if err := checkFormBody(req); err != nil {
			return nil, err
		}
		if m.facts == nil && m.names == nil && (req.Owner == "" || m.target == nil && m.scope == nil) {
			// Nothing to read: no fact reader, no owner or scope facts
			// (ownerFacts, scopeFacts), as for most requests of a caller
			// who is no tenant (/_ping, an inspect by root), and no
			// container names changed (names.go).
			return nil, nil
		}
		x := &extraction{ctx: ctx, m: m, req: req, in: in, host: host}
		if m.facts != nil {
			if err := m.facts(x); err != nil {
				return nil, err
			}
		}
		// The owner fact comes last, so that a refusal names what the
		// request would do before whose container it would do it to.
		if err := ownerFacts(x); err != nil {
			return nil, err
		}
		if err := scopeFacts(x); err != nil {
			return nil, err
		}
		// Last, so that it runs after the checks the readers gave Verify.
		forgetNamesWhenForwarded(x)
		return x.facts, nil
	}
}

// extraction is the state of reading one request's facts.
type extraction struct {
	ctx   context.Context
	m     *Match
	req   *Request
	in    Inspector
	host  hostFS
	facts []policy.Fact
	seen  map[policy.Fact]bool
	// missingVolumes are the named volumes a tenant's create binds that do
	// not exist yet (createMissingVolumes).
	missingVolumes []string
	query          url.Values
	// pinned are the path variables pinned to full IDs so far.
	pinned map[string]string
	// images are the image references resolved while judging, each to
	// the image ID dockerd gave for it ("" for none): what is pinned.
	images map[string]string
	// basePins are the FROM lines of a classic build whose base is
	// forwarded as the image ID judged (pinBuildBases).
	basePins []basePin
	// delegating says the body is forwarded re-encoded (a container
	// create), so that a bind of a Docker daemon's socket can be given
	// dockgate's instead (facts_socket.go).
	delegating bool
	// socketBound says a bind of the request names a Docker socket.
	socketBound bool
	// namedContexts are the names a BuildKit solve's named contexts
	// replace while its Dockerfile is judged (BuildKitSolve.NamedContexts):
	// bases judged with the solve.
	namedContexts []string
	// volumesFrom are the full IDs of the containers VolumesFrom names,
	// by the name it gives, as their binds were judged: a tenant's
	// reference is owned and pinned as that same container.
	volumesFrom map[string]string
}

// add records a fact once, in the order first seen.
func (x *extraction) add(kind, value string) {
	f := policy.Fact{Kind: kind, Value: value}
	if x.seen == nil {
		x.seen = make(map[policy.Fact]bool)
	}
	if x.seen[f] {
		return
	}
	x.seen[f] = true
	x.facts = append(x.facts, f)
}

// apiBefore reports whether the request's API version is below v. A path
// without a version prefix means dockerd's own (newest) version.
func (x *extraction) apiBefore(v string) bool {
	return x.m.APIVersion != "" && versions.LessThan(x.m.APIVersion, v)
}

// form returns the request's parameters as dockerd's r.Form holds them
// after r.ParseForm: the values of an application/x-www-form-urlencoded
// body of a POST, PUT or PATCH first, then the query's (BRIEF §7 item 2).
// The proxy reads such bodies whole (proxy.isFormBody), so Request.Body
// holds it. A query or body Go's ParseForm rejects is refused here too, as
// dockerd answers it with 400.
func (x *extraction) form() (url.Values, error) {
	if x.query != nil {
		return x.query, nil
	}
	raw := ""
	if x.req.URL != nil {
		raw = x.req.URL.RawQuery
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badBody("malformed query: %v", err)
	}
	if isFormBody(x.req) {
		body, err := url.ParseQuery(string(x.req.Body))
		if err != nil {
			return nil, badBody("malformed form body: %v", err)
		}
		for k, vs := range q {
			body[k] = append(body[k], vs...)
		}
		q = body
	}
	x.query = q
	return q, nil
}

// isFormBody says whether net/http's ParseForm would read the body of req
// as a form: a POST, PUT or PATCH whose one Content-Type is
// application/x-www-form-urlencoded (any case, any parameters).
func isFormBody(req *Request) bool {
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return false
	}
	cts := contentTypes(req.Header)
	return len(cts) == 1 && mediaType(cts[0]) == "application/x-www-form-urlencoded"
}

// formValue is dockerd's r.Form.Get: the first value.
func (x *extraction) formValue(name string) (string, error) {
	q, err := x.form()
	if err != nil {
		return "", err
	}
	return q.Get(name), nil
}

// inspector returns the Inspector or an error saying that the facts need
// dockerd's state and nobody can ask for it.
func (x *extraction) inspector() (Inspector, error) {
	if x.in == nil {
		return nil, &RouteError{Status: http.StatusInternalServerError, Message: "no inspector: cannot read dockerd's state to judge " + x.m.Action}
	}
	return x.in, nil
}

// upstreamError wraps an Inspector failure: dockerd could not be asked, so
// the request cannot be judged (BRIEF §5: 502). When dockerd did answer the
// lookup with a client error (dockerd.Answer), that answer is the request's.
func upstreamError(what string, err error) error {
	var re *RouteError
	if errors.As(err, &re) {
		return re
	}
	var bad *dockerd.InvalidName
	if errors.As(err, &bad) {
		return badBody("%s", bad.Message)
	}
	var da *dockerd.Answer
	if errors.As(err, &da) {
		return &RouteError{Status: da.Status, Message: da.Message, Dockerd: true}
	}
	return &RouteError{Status: http.StatusBadGateway, Message: "cannot inspect " + what + " on dockerd: " + err.Error()}
}

// contentTypes returns every Content-Type value, whatever the spelling of
// the header name.
func contentTypes(h http.Header) []string {
	var out []string
	for k, vs := range h {
		if strings.EqualFold(k, "Content-Type") {
			out = append(out, vs...)
		}
	}
	return out
}

// mediaType is the media type as Go's mime.ParseMediaType (and so
// net/http's ParseForm) reads it, also when the parameters are malformed:
// dockerd's ParseForm ignores "mime:" errors and still merges the form.
func mediaType(ct string) string {
	base, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(strings.ToLower(base))
}

// checkFormBody refuses what dockgate cannot read the way dockerd would:
// several Content-Type headers (ambiguous), a multipart/form-data body
// (dockerd's r.FormValue would parse it; no Docker client sends one), and a
// form body that the proxy did not hand over whole (fail closed). A
// urlencoded form body is read by form(), body values first.
func checkFormBody(req *Request) error {
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return nil
	}
	cts := contentTypes(req.Header)
	if len(cts) > 1 {
		return badBody("several Content-Type headers")
	}
	for _, ct := range cts {
		if mt := mediaType(ct); strings.HasPrefix(mt, "multipart/") {
			return badBody("multipart body (%s): dockerd would read parameters from it; send them in the query", mt)
		}
	}
	if isFormBody(req) && req.Body == nil && bodyAnnounced(req.Header) {
		return badBody("form-encoded body that was not read; it cannot be judged")
	}
	return nil
}

// bodyAnnounced says whether the request's headers announce a body.
func bodyAnnounced(h http.Header) bool {
	cl := h.Get("Content-Length")
	return (cl != "" && cl != "0") || h.Get("Transfer-Encoding") != ""
}

// jsonBody returns the body of a JSON endpoint. A body with a Content-Type
// other than application/json (any case, any parameters) is refused, as
// dockerd's CheckForJSON refuses it; a body without a Content-Type is read
// as JSON all the same (dockerd 20.10's update, exec and network handlers
// decode it whatever the header says). The body is never skipped.
func (x *extraction) jsonBody() ([]byte, error) {
	body, err := x.body()
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, nil
	}
	for _, ct := range contentTypes(x.req.Header) {
		if ct == "" {
			continue
		}
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, badBody("malformed Content-Type %q: %v", ct, err)
		}
		if mt != "application/json" {
			return nil, badBody("Content-Type %q: this endpoint takes application/json", ct)
		}
	}
	return body, nil
}

// body is the request body the proxy read whole. A fact reader that asks
// for it on a route that does not read it (Route.NeedsBody) would judge an
// empty body while dockerd gets the real one: that is refused, never
// guessed (TestFactReadersReadWhatTheirRouteReads).
func (x *extraction) body() ([]byte, error) {
	if !x.m.NeedsBody {
		return nil, unreadBody(x.m.Action, "body")
	}
	return x.req.Body, nil
}

// spooledBody is the spooled request body (Route.Spool) and its size;
// nil when the request has none.
func (x *extraction) spooledBody() (*os.File, int64, error) {
	if !x.m.Spool {
		return nil, 0, unreadBody(x.m.Action, "spooled body")
	}
	return x.req.BodyFile, x.req.BodySize, nil
}

func unreadBody(action, what string) error {
	return &RouteError{Status: http.StatusInternalServerError, Message: "internal error: the fact reader of " + action + " reads a " + what + " its route does not read"}
}

// requireJSONBody is jsonBody for endpoints whose body dockerd requires.
func (x *extraction) requireJSONBody() ([]byte, error) {
	body, err := x.jsonBody()
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, badBody("%s needs a JSON body", x.m.Action)
	}
	return body, nil
}
