package authz

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dockgate/dockgate/authz/internal/dockermux"
)

// RouteError is a request dockgate refuses with a status of its own: a
// target it will not route (dockerd would redirect it, or it could be read
// two ways), a body it cannot judge, or a lookup dockerd answered.
type RouteError struct {
	// Status is the HTTP status of the refusal.
	Status  int
	Message string
	// Dockerd marks dockerd's own answer (its status and message, such as
	// 404 "No such container: x"), given to the client as dockerd gives
	// it, without dockgate's prefix: clients act on it as on dockerd's.
	Dockerd bool
}

func (e *RouteError) Error() string { return e.Message }

func badTarget(format string, args ...any) *RouteError {
	return &RouteError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// Router names requests with the route dockerd would dispatch them to
// (authz/internal/dockermux matches as dockerd's gorilla/mux does). It is
// safe for concurrent use.
type Router struct {
	mux    *dockermux.Mux
	routes []Route
	// bare are the matches of requests without a version prefix on each
	// row, for the rows without path variables; unknown that of requests
	// without a version prefix that match no row. Such a match is the same
	// for every request, so it is made once (/_ping, /containers/json).
	bare    []Match
	unknown Match
}

// NewRouter builds the router for the whole Engine API.
func NewRouter() *Router {
	r := &Router{routes: routeTable(), unknown: Match{Route: unknownRoute}}
	rows := make([]dockermux.Row, len(r.routes))
	r.bare = make([]Match, len(r.routes))
	for i, rt := range r.routes {
		rows[i] = dockermux.Row{Method: rt.Method, Path: rt.Path, Query: rt.Query}
		r.bare[i] = Match{Route: &r.routes[i]}
	}
	r.mux = dockermux.New(rows)
	return r
}

// Routes returns a copy of the route table in dockerd's registration order.
// The rows' fact readers and targets are shared with the router's.
func (r *Router) Routes() []Route {
	return append([]Route(nil), r.routes...)
}

// Route names the request. A request that dockerd would answer with 404
// (no route, or a known path with another method) gets ActionUnknown and
// no error. An error (*RouteError, 400) means the target must be refused:
// dockerd would redirect it, or it could be read two ways. The Match may
// be shared by every request on the same route: read it, never change it.
func (r *Router) Route(method string, u *url.URL) (*Match, error) {
	i, version, vars, err := r.mux.Match(method, u)
	if err != nil {
		var te *dockermux.TargetError
		if errors.As(err, &te) {
			return nil, badTarget("%s", te.Message)
		}
		return nil, err
	}
	switch {
	case i < 0 && version == "":
		return &r.unknown, nil
	case i < 0:
		return &Match{Route: unknownRoute, APIVersion: version}, nil
	case version == "" && vars == nil:
		return &r.bare[i], nil
	}
	return &Match{Route: &r.routes[i], APIVersion: version, Vars: vars}, nil
}
