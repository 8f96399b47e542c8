package authz

// ActionUnknown names requests that match no route; they are always refused.
const ActionUnknown = "unknown"

// unknownRoute is the row of requests that match no route: it names them
// ActionUnknown and gives them nothing else.
var unknownRoute = &Route{Action: ActionUnknown}

// Match is the route a request matched. Its Route is a row of the router's
// table, shared by every request on it, and the Match itself may be shared
// too (Router.Route): read it, never change it.
type Match struct {
	// Route is the row the request matched (Action, Stream, NeedsBody,
	// Spool, Hijack, ...), or one with Action ActionUnknown. Its Path is
	// the template the request matched ("/containers/{name:.*}/json").
	*Route
	// APIVersion is the version from the /v<version> path prefix, "" when the
	// path has none.
	APIVersion string
	// Vars are the route's path variables ("name", "id", ...), percent-decoded.
	Vars map[string]string
}
