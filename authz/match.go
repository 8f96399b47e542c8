package authz

// ActionUnknown names requests that match no route; they are always refused.
const ActionUnknown = "unknown"

// Match is the route a request matched.
type Match struct {
	// Action is the route's action name (BRIEF §4), or ActionUnknown.
	Action string
	// APIVersion is the version from the /v<version> path prefix, "" when the
	// path has none.
	APIVersion string
	// Vars are the route's path variables ("name", "id", ...), percent-decoded.
	Vars map[string]string
	// Template is the route's path template without the version prefix
	// ("/containers/{name:.*}/json"), "" for ActionUnknown.
	Template string
	// Stream marks routes whose response may last as long as the client
	// wants (logs -f, events, stats, attach, exec start, wait, pull, push,
	// build, load): they get a start audit record.
	Stream bool
	// NeedsBody asks the proxy for the whole request body before deciding.
	NeedsBody bool
	// Spool asks the proxy for the whole request body in a temporary file
	// (Request.BodyFile) before deciding: tarballs too large for memory.
	Spool bool
}
