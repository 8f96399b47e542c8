package authz

import "context"

// Container names a request forwarded through dockgate changes: a
// tenant's requests by name are resolved from a cache of what dockerd
// resolved each name to (internal/dockerd/name_cache.go), kept true by
// dockerd's events. A script's next request must not wait for the event
// of its own rename or remove (`docker rename foo bar && docker exec foo`,
// `docker rm -f foo && docker run --name foo ... && docker exec foo`), so
// a container create, rename or remove drops the names it touches once
// dockerd has answered, whatever it answered, and before the client has
// the answer: the proxy runs Verify there. Its answer is small (an ID and
// warnings, or none), so reading it whole to run the hook costs nothing.

// ContainerNames is the cache of container names that requests
// forwarded through dockgate change. *dockerd.Client implements it; an
// Inspector without it (explain, policy tests) caches no names.
type ContainerNames interface {
	// ForgetContainerNames drops the names refs may mean: container
	// names, full IDs or ID prefixes, as a request named them.
	ForgetContainerNames(refs ...string)
}

// namedContainers returns the container names and IDs a request on a
// route that changes names touches, as it names them.
type namedContainers func(x *extraction) []string

// createdName: the name a container create takes (the query's name, all
// its values: dockerd reads the first).
func createdName(x *extraction) []string {
	return x.req.URL.Query()["name"]
}

// renamedNames: the container renamed, as the path names it and as it
// was pinned, and the names the query gives it.
func renamedNames(x *extraction) []string {
	return append(removedName(x), createdName(x)...)
}

// removedName: the container removed, as the path names it and, for a
// tenant, as it was pinned to its full ID.
func removedName(x *extraction) []string {
	refs := []string{x.m.Vars["name"]}
	if id, ok := x.pinned["name"]; ok {
		refs = append(refs, id)
	}
	return refs
}

// forgetNamesWhenForwarded has the proxy drop the names the request
// touches once dockerd answered it, after any check Verify already makes
// (the image of a created container, which may remove it again).
func forgetNamesWhenForwarded(x *extraction) {
	if x.m.names == nil {
		return
	}
	names, ok := x.in.(ContainerNames)
	if !ok {
		return
	}
	refs := x.m.names(x)
	check := x.req.Verify
	x.req.Verify = func(ctx context.Context, status int, body []byte) error {
		defer names.ForgetContainerNames(refs...)
		if check == nil {
			return nil
		}
		return check(ctx, status, body)
	}
}
