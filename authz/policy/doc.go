// Package policy is a dockgate policy: its rows, roles, patterns and index,
// loaded from a directory as one snapshot, and the decision of one fact for
// a caller's subjects.
//
// It knows nothing of HTTP, routes or dockerd. A fact ("bind /srv/cache")
// is the whole of what it is asked about, so that what a policy allows can
// be read, tested and explained (dockgate check, dockgate explain) without
// a request, and a change to how requests are read cannot change what a
// row means. The caller's subjects are resolved once per request
// (Policy.RulesFor) and every fact of it is decided against the same
// snapshot; a reload builds a new Policy and never changes one in use.
package policy
