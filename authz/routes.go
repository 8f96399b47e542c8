package authz

// Route is one Docker Engine API route as dockerd registers it, named with
// the action the policy sees.
type Route struct {
	// Method is the HTTP method, exactly as gorilla/mux compares it.
	Method string
	// Path is the gorilla/mux template without the /v<version> prefix; both
	// the prefixed and the bare form are routed, as in dockerd.
	Path string
	// Action is the name policies use (BRIEF §4).
	Action string
	// Query, when set, makes the row apply only when that query parameter is
	// non-empty (its first value, as dockerd's r.Form.Get reads it). Rows
	// sharing Method and Path are one dockerd route whose meaning depends on
	// the query; they are tried in table order and the last one has no Query.
	Query string
	// Stream marks responses that last as long as the client wants.
	Stream bool
	// NeedsBody marks requests whose body must be read before deciding.
	NeedsBody bool
	// Spool marks requests whose body (a tarball) is spooled to a temporary
	// file to be judged, then forwarded from it (Request.BodyFile).
	Spool bool
}

// routeFlag keeps each table line short: the flags read as words.
type routeFlag int

const (
	routeStreams routeFlag = iota
	routeNeedsBody
	routeSpools
)

func newRoute(method, path, action string, flags []routeFlag) Route {
	r := Route{Method: method, Path: path, Action: action}
	for _, f := range flags {
		switch f {
		case routeStreams:
			r.Stream = true
		case routeNeedsBody:
			r.NeedsBody = true
		case routeSpools:
			r.Spool = true
		}
	}
	return r
}

func headRoute(path, action string, flags ...routeFlag) Route {
	return newRoute("HEAD", path, action, flags)
}

func getRoute(path, action string, flags ...routeFlag) Route {
	return newRoute("GET", path, action, flags)
}

func postRoute(path, action string, flags ...routeFlag) Route {
	return newRoute("POST", path, action, flags)
}

func putRoute(path, action string, flags ...routeFlag) Route {
	return newRoute("PUT", path, action, flags)
}

func deleteRoute(path, action string, flags ...routeFlag) Route {
	return newRoute("DELETE", path, action, flags)
}

func optionsRoute(path, action string, flags ...routeFlag) Route {
	return newRoute("OPTIONS", path, action, flags)
}

// ifQuery narrows a row to requests that set the query parameter name.
func (r Route) ifQuery(name string) Route {
	r.Query = name
	return r
}

// routeTable is the whole Engine API, API 1.24 to the newest, in dockerd's
// registration order: gorilla/mux dispatches to the first route that matches
// method and path, so the order is part of the meaning. The groups follow
// moby's buildRouters (cmd/dockerd/daemon.go): checkpoint before container
// ("or the DELETE gets masked"), then image, system, volume, build, session,
// swarm, plugin, distribution, network, debug, grpc. Within a group the lines
// follow moby's api/server/router/<resource>/<resource>.go.
func routeTable() []Route {
	var t []Route
	t = append(t, checkpointRoutes()...)
	t = append(t, containerRoutes()...)
	t = append(t, imageRoutes()...)
	t = append(t, systemRoutes()...)
	t = append(t, volumeRoutes()...)
	t = append(t, buildRoutes()...)
	t = append(t, sessionRoutes()...)
	t = append(t, swarmRoutes()...)
	t = append(t, pluginRoutes()...)
	t = append(t, distributionRoutes()...)
	t = append(t, networkRoutes()...)
	t = append(t, debugRoutes()...)
	t = append(t, grpcRoutes()...)
	return t
}

// checkpointRoutes are experimental in dockerd but always registered (they
// answer "experimental feature disabled" when off). Registered first so that
// DELETE /containers/a/checkpoints/b is not container.delete of "a/checkpoints/b".
func checkpointRoutes() []Route {
	return []Route{
		getRoute("/containers/{name:.*}/checkpoints", "container.checkpoint.list"),
		postRoute("/containers/{name:.*}/checkpoints", "container.checkpoint.create", routeNeedsBody),
		deleteRoute("/containers/{name}/checkpoints/{checkpoint}", "container.checkpoint.delete"),
	}
}

func containerRoutes() []Route {
	return []Route{
		// HEAD
		headRoute("/containers/{name:.*}/archive", "container.archive.head"),
		// GET: /containers/json precedes /containers/{name:.*}/json, so a
		// container cannot be inspected under the name "json" by this path.
		getRoute("/containers/json", "container.list"),
		getRoute("/containers/{name:.*}/export", "container.export"),
		getRoute("/containers/{name:.*}/changes", "container.changes"),
		getRoute("/containers/{name:.*}/json", "container.inspect"),
		getRoute("/containers/{name:.*}/top", "container.top"),
		getRoute("/containers/{name:.*}/logs", "container.logs", routeStreams),
		getRoute("/containers/{name:.*}/stats", "container.stats", routeStreams),
		getRoute("/containers/{name:.*}/attach/ws", "container.attach.ws", routeStreams),
		getRoute("/exec/{id:.*}/json", "exec.inspect"),
		getRoute("/containers/{name:.*}/archive", "container.archive.get"),
		// POST
		postRoute("/containers/create", "container.create", routeNeedsBody),
		postRoute("/containers/{name:.*}/kill", "container.kill"),
		postRoute("/containers/{name:.*}/pause", "container.pause"),
		postRoute("/containers/{name:.*}/unpause", "container.unpause"),
		postRoute("/containers/{name:.*}/restart", "container.restart"),
		// API < 1.24 daemons take a HostConfig here; the body is read so
		// that it is judged like a create.
		postRoute("/containers/{name:.*}/start", "container.start", routeNeedsBody),
		postRoute("/containers/{name:.*}/stop", "container.stop"),
		postRoute("/containers/{name:.*}/wait", "container.wait", routeStreams),
		postRoute("/containers/{name:.*}/resize", "container.resize"),
		postRoute("/containers/{name:.*}/attach", "container.attach", routeStreams),
		// Removed after dockerd 20.10, where it still serves /v1.23 and
		// older: it reads a file out of a container like archive.get.
		postRoute("/containers/{name:.*}/copy", "container.archive.copy", routeNeedsBody),
		postRoute("/containers/{name:.*}/exec", "container.exec", routeNeedsBody),
		postRoute("/exec/{name:.*}/start", "exec.start", routeStreams),
		postRoute("/exec/{name:.*}/resize", "exec.resize"),
		postRoute("/containers/{name:.*}/rename", "container.rename"),
		postRoute("/containers/{name:.*}/update", "container.update", routeNeedsBody),
		postRoute("/containers/prune", "container.prune"),
		postRoute("/commit", "image.commit", routeNeedsBody),
		// PUT
		putRoute("/containers/{name:.*}/archive", "container.archive.put"),
		// DELETE
		deleteRoute("/containers/{name:.*}", "container.delete"),
	}
}

func imageRoutes() []Route {
	return []Route{
		// GET
		getRoute("/images/json", "image.list"),
		getRoute("/images/search", "image.search"),
		getRoute("/images/get", "image.save"),
		getRoute("/images/{name:.*}/get", "image.save"),
		getRoute("/images/{name:.*}/history", "image.history"),
		getRoute("/images/{name:.*}/json", "image.inspect"),
		// POST
		postRoute("/images/load", "image.load", routeStreams, routeSpools),
		// One dockerd handler: it pulls when fromImage is set, else imports
		// from fromSrc (a URL, or the body when "-"). The body is a tarball,
		// so it is not read here. dockerd's r.Form also takes a
		// form-encoded body (ahead of the query): such a body on this route
		// must be refused or read by the caller, or it can turn an import
		// into a pull.
		postRoute("/images/create", "image.pull", routeStreams).ifQuery("fromImage"),
		postRoute("/images/create", "image.import", routeStreams),
		postRoute("/images/{name:.*}/push", "image.push", routeStreams),
		postRoute("/images/{name:.*}/tag", "image.tag"),
		postRoute("/images/prune", "image.prune"),
		// DELETE
		deleteRoute("/images/{name:.*}", "image.delete"),
	}
}

func systemRoutes() []Route {
	return []Route{
		// dockerd answers CORS preflight for any path.
		optionsRoute("/{anyroute:.*}", "system.options"),
		getRoute("/_ping", "system.ping"),
		headRoute("/_ping", "system.ping"),
		getRoute("/events", "system.events", routeStreams),
		getRoute("/info", "system.info"),
		getRoute("/version", "system.version"),
		getRoute("/system/df", "system.df"),
		postRoute("/auth", "system.auth"),
	}
}

func volumeRoutes() []Route {
	return []Route{
		// GET
		getRoute("/volumes", "volume.list"),
		getRoute("/volumes/{name:.*}", "volume.inspect"),
		// POST
		postRoute("/volumes/create", "volume.create", routeNeedsBody),
		postRoute("/volumes/prune", "volume.prune"),
		// PUT: cluster volumes (API 1.42+), a swarm spec like service update.
		putRoute("/volumes/{name:.*}", "volume.update", routeNeedsBody),
		// DELETE
		deleteRoute("/volumes/{name:.*}", "volume.delete"),
	}
}

// buildRoutes: the build body is the context tarball; what a build may do
// is read from its query, so it is not NeedsBody.
func buildRoutes() []Route {
	return []Route{
		postRoute("/build", "build.run", routeStreams, routeSpools),
		postRoute("/build/prune", "build.prune"),
		postRoute("/build/cancel", "build.cancel"),
	}
}

// sessionRoutes: BuildKit's session is a hijacked HTTP/2 connection that
// stays open for the whole build.
func sessionRoutes() []Route {
	return []Route{
		postRoute("/session", "session.start", routeStreams),
	}
}

func swarmRoutes() []Route {
	return []Route{
		postRoute("/swarm/init", "swarm.init", routeNeedsBody),
		postRoute("/swarm/join", "swarm.join", routeNeedsBody),
		postRoute("/swarm/leave", "swarm.leave"),
		getRoute("/swarm", "swarm.inspect"),
		getRoute("/swarm/unlockkey", "swarm.unlockkey"),
		postRoute("/swarm/update", "swarm.update", routeNeedsBody),
		postRoute("/swarm/unlock", "swarm.unlock"),

		getRoute("/services", "service.list"),
		getRoute("/services/{id}", "service.inspect"),
		postRoute("/services/create", "service.create", routeNeedsBody),
		postRoute("/services/{id}/update", "service.update", routeNeedsBody),
		deleteRoute("/services/{id}", "service.delete"),
		getRoute("/services/{id}/logs", "service.logs", routeStreams),

		getRoute("/nodes", "node.list"),
		getRoute("/nodes/{id}", "node.inspect"),
		deleteRoute("/nodes/{id}", "node.delete"),
		postRoute("/nodes/{id}/update", "node.update", routeNeedsBody),

		getRoute("/tasks", "task.list"),
		getRoute("/tasks/{id}", "task.inspect"),
		getRoute("/tasks/{id}/logs", "task.logs", routeStreams),

		getRoute("/secrets", "secret.list"),
		postRoute("/secrets/create", "secret.create", routeNeedsBody),
		deleteRoute("/secrets/{id}", "secret.delete"),
		getRoute("/secrets/{id}", "secret.inspect"),
		postRoute("/secrets/{id}/update", "secret.update", routeNeedsBody),

		getRoute("/configs", "config.list"),
		postRoute("/configs/create", "config.create", routeNeedsBody),
		deleteRoute("/configs/{id}", "config.delete"),
		getRoute("/configs/{id}", "config.inspect"),
		postRoute("/configs/{id}/update", "config.update", routeNeedsBody),
	}
}

// pluginRoutes: a plugin runs with the privileges it asks for, so pull,
// upgrade, set and create are read in full.
func pluginRoutes() []Route {
	return []Route{
		getRoute("/plugins", "plugin.list"),
		getRoute("/plugins/{name:.*}/json", "plugin.inspect"),
		getRoute("/plugins/privileges", "plugin.privileges"),
		deleteRoute("/plugins/{name:.*}", "plugin.delete"),
		postRoute("/plugins/{name:.*}/enable", "plugin.enable"),
		postRoute("/plugins/{name:.*}/disable", "plugin.disable"),
		postRoute("/plugins/pull", "plugin.install", routeStreams, routeNeedsBody),
		postRoute("/plugins/{name:.*}/push", "plugin.push", routeStreams),
		postRoute("/plugins/{name:.*}/upgrade", "plugin.upgrade", routeStreams, routeNeedsBody),
		postRoute("/plugins/{name:.*}/set", "plugin.set", routeNeedsBody),
		postRoute("/plugins/create", "plugin.create", routeSpools),
	}
}

func distributionRoutes() []Route {
	return []Route{
		getRoute("/distribution/{name:.*}/json", "distribution.inspect"),
	}
}

func networkRoutes() []Route {
	return []Route{
		// GET
		getRoute("/networks", "network.list"),
		getRoute("/networks/", "network.list"),
		getRoute("/networks/{id:.+}", "network.inspect"),
		// POST
		postRoute("/networks/create", "network.create", routeNeedsBody),
		postRoute("/networks/{id:.*}/connect", "network.connect", routeNeedsBody),
		postRoute("/networks/{id:.*}/disconnect", "network.disconnect", routeNeedsBody),
		postRoute("/networks/prune", "network.prune"),
		// DELETE
		deleteRoute("/networks/{id:.*}", "network.delete"),
	}
}

// debugRoutes expose the daemon's memory and command line; GET only as in
// current dockerd (20.10 took any method here, which stays unknown).
func debugRoutes() []Route {
	return []Route{
		getRoute("/debug/vars", "debug.vars"),
		getRoute("/debug/pprof/", "debug.pprof"),
		getRoute("/debug/pprof/cmdline", "debug.pprof"),
		getRoute("/debug/pprof/profile", "debug.pprof"),
		getRoute("/debug/pprof/symbol", "debug.pprof"),
		getRoute("/debug/pprof/trace", "debug.pprof"),
		getRoute("/debug/pprof/{name}", "debug.pprof"),
	}
}

// grpcRoutes: BuildKit's control API over h2c, a long-lived connection.
func grpcRoutes() []Route {
	return []Route{
		postRoute("/grpc", "grpc.start", routeStreams),
	}
}
