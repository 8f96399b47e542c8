package authz

// Route is one Docker Engine API route as dockerd registers it, named with
// the action the policy sees, with everything dockgate does differently on
// it: what it reads before deciding, which facts it reads, which object it
// names, what a tenant's request on it gets, how its answer is relayed. A
// new endpoint is one row in the table below (and one fact reader when its
// request can reach the host); nothing else is keyed by its action.
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
	// Hijack marks routes whose answer may turn the connection into a raw
	// stream both ways (attach, exec start), which the proxy splices.
	Hijack bool
	// ExitOf is the kind of process (ObjectExec, ObjectContainer) whose exit
	// code the record of a finished hijacked session carries, asked of
	// dockerd by the {name} of the path; "" for none.
	ExitOf string
	// NewID says where dockerd's answer names the object the request
	// created, for the audit record.
	NewID NewIDSource
	// GRPC marks dockerd's gRPC endpoint, reached by an h2c upgrade.
	GRPC bool

	// facts reads what a request on this route would do beyond its
	// endpoint fact; nil when the endpoint fact says it all.
	facts endpointFacts
	// target is the existing object the request names (the owner fact);
	// nil for routes that name none.
	target *ownerTarget
	// labels is where a tenant's create records its owner.
	labels ownerLabelPlace
	// scope limits a tenant's list, event stream or prune to its own
	// objects (facts_scope.go); nil for routes with nothing to limit.
	scope func(x *extraction) error
	// absent404 is the kind of object whose absence turns a refusal into
	// dockerd's 404 (probe.go); "" for none.
	absent404 string
	// givesHost, when not "", says why allowing the endpoint is root on
	// the host; a refusal of it says so instead of suggesting a row for a
	// group of callers (refusal.go).
	givesHost string
	// names, when set, says which container names the request may
	// change the meaning of: they are dropped from the inspector's cache
	// once dockerd answered (names.go).
	names namedContainers
}

// NewIDSource is where dockerd's answer names a created object.
type NewIDSource int

const (
	// NoNewID: the route creates nothing the record names.
	NoNewID NewIDSource = iota
	// NewIDInBody: the JSON answer's Id (or Name, for a volume).
	NewIDInBody
	// NewIDInProgress: the last aux message of a build's progress stream.
	NewIDInProgress
)

// ownerLabelPlace is where a tenant's create puts its owner labels.
type ownerLabelPlace int

const (
	noOwnerLabels ownerLabelPlace = iota
	// ownerLabelsInBody: the Labels of the JSON body (containers,
	// volumes, networks).
	ownerLabelsInBody
	// ownerLabelsOnImage: the labels of the image it makes, through the
	// query (build's labels, commit's and import's changes).
	ownerLabelsOnImage
)

// needsOwner reports whether the facts of a route depend on whether the
// caller is a tenant and whose objects it names: creates (labelled),
// requests that target an existing object or name one in their body
// (the owner fact), lists and prunes (limited to the caller's objects).
func (r *Route) needsOwner() bool {
	return r.labels != noOwnerLabels || r.target != nil || r.scope != nil
}

// routeOpt is one word of a table line: each sets what it names.
type routeOpt func(*Route)

var (
	streams        routeOpt = func(r *Route) { r.Stream = true }
	readsBody      routeOpt = func(r *Route) { r.NeedsBody = true }
	spools         routeOpt = func(r *Route) { r.Spool = true }
	hijacks        routeOpt = func(r *Route) { r.Hijack = true }
	upgradesToGRPC routeOpt = func(r *Route) { r.GRPC = true }
	answersNewID   routeOpt = func(r *Route) { r.NewID = NewIDInBody }
	streamsNewID   routeOpt = func(r *Route) { r.NewID = NewIDInProgress }
	labelsBody     routeOpt = func(r *Route) { r.labels = ownerLabelsInBody }
	labelsImage    routeOpt = func(r *Route) { r.labels = ownerLabelsOnImage }
)

// reads gives a route its fact reader.
func reads(f endpointFacts) routeOpt { return func(r *Route) { r.facts = f } }

// targets says which existing object the route names.
func targets(t ownerTarget) routeOpt { return func(r *Route) { r.target = &t } }

// exitOf says whose exit code ends a hijacked session's record.
func exitOf(kind string) routeOpt { return func(r *Route) { r.ExitOf = kind } }

// scopedBy says how a tenant's request is limited to its own objects.
func scopedBy(f func(x *extraction) error) routeOpt { return func(r *Route) { r.scope = f } }

// absent404 says a refused lookup of a missing object of kind gets
// dockerd's 404.
func absent404(kind string) routeOpt { return func(r *Route) { r.absent404 = kind } }

// changesNames says the request may change what container names mean,
// and which.
func changesNames(f namedContainers) routeOpt { return func(r *Route) { r.names = f } }

// givesHost says allowing the endpoint is root on the host, and why.
func givesHost(why string) routeOpt { return func(r *Route) { r.givesHost = why } }

// pluginPrivileges is why installing, creating, upgrading, enabling or
// configuring a plugin is root on the host.
var pluginPrivileges = givesHost("a plugin runs with the privileges it asks for")

func newRoute(method, path, action string, opts []routeOpt) Route {
	r := Route{Method: method, Path: path, Action: action}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func headRoute(path, action string, opts ...routeOpt) Route {
	return newRoute("HEAD", path, action, opts)
}

func getRoute(path, action string, opts ...routeOpt) Route {
	return newRoute("GET", path, action, opts)
}

func postRoute(path, action string, opts ...routeOpt) Route {
	return newRoute("POST", path, action, opts)
}

func putRoute(path, action string, opts ...routeOpt) Route {
	return newRoute("PUT", path, action, opts)
}

func deleteRoute(path, action string, opts ...routeOpt) Route {
	return newRoute("DELETE", path, action, opts)
}

func optionsRoute(path, action string, opts ...routeOpt) Route {
	return newRoute("OPTIONS", path, action, opts)
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
		getRoute("/containers/{name:.*}/checkpoints", "container.checkpoint.list", targets(containerTarget)),
		postRoute("/containers/{name:.*}/checkpoints", "container.checkpoint.create", readsBody, reads(checkpointCreateFacts), targets(containerTarget)),
		deleteRoute("/containers/{name}/checkpoints/{checkpoint}", "container.checkpoint.delete", targets(containerTarget)),
	}
}

func containerRoutes() []Route {
	return []Route{
		// HEAD
		headRoute("/containers/{name:.*}/archive", "container.archive.head", targets(containerTarget)),
		// GET: /containers/json precedes /containers/{name:.*}/json, so a
		// container cannot be inspected under the name "json" by this path.
		getRoute("/containers/json", "container.list", scopedBy(scopeByOwnerFilter)),
		getRoute("/containers/{name:.*}/export", "container.export", targets(containerTarget)),
		getRoute("/containers/{name:.*}/changes", "container.changes", targets(containerTarget)),
		getRoute("/containers/{name:.*}/json", "container.inspect", targets(containerTarget)),
		getRoute("/containers/{name:.*}/top", "container.top", targets(containerTarget)),
		getRoute("/containers/{name:.*}/logs", "container.logs", streams, targets(containerTarget)),
		getRoute("/containers/{name:.*}/stats", "container.stats", streams, targets(containerTarget)),
		getRoute("/containers/{name:.*}/attach/ws", "container.attach.ws", streams, reads(socketHolderFacts), targets(containerTarget)),
		getRoute("/exec/{id:.*}/json", "exec.inspect", targets(execInspectTarget)),
		getRoute("/containers/{name:.*}/archive", "container.archive.get", targets(containerTarget)),
		// POST
		postRoute("/containers/create", "container.create", readsBody, reads(containerCreateFacts), labelsBody, answersNewID, changesNames(createdName)),
		postRoute("/containers/{name:.*}/kill", "container.kill", targets(containerTarget)),
		postRoute("/containers/{name:.*}/pause", "container.pause", targets(containerTarget)),
		postRoute("/containers/{name:.*}/unpause", "container.unpause", targets(containerTarget)),
		postRoute("/containers/{name:.*}/restart", "container.restart", reads(containerRestartFacts), targets(containerTarget)),
		// API < 1.24 daemons take a HostConfig here; the body is read so
		// that it is judged like a create.
		postRoute("/containers/{name:.*}/start", "container.start", readsBody, reads(containerStartFacts), targets(containerTarget)),
		postRoute("/containers/{name:.*}/stop", "container.stop", targets(containerTarget)),
		postRoute("/containers/{name:.*}/wait", "container.wait", streams, targets(containerTarget)),
		postRoute("/containers/{name:.*}/resize", "container.resize", targets(containerTarget)),
		postRoute("/containers/{name:.*}/attach", "container.attach", streams, hijacks, exitOf(ObjectContainer), reads(socketHolderFacts), targets(containerTarget)),
		// Removed after dockerd 20.10, where it still serves /v1.23 and
		// older: it reads a file out of a container like archive.get.
		postRoute("/containers/{name:.*}/copy", "container.archive.copy", readsBody, targets(containerTarget)),
		postRoute("/containers/{name:.*}/exec", "container.exec", readsBody, reads(execCreateFacts), targets(containerTarget), answersNewID),
		postRoute("/exec/{name:.*}/start", "exec.start", streams, hijacks, exitOf(ObjectExec), targets(execTarget)),
		postRoute("/exec/{name:.*}/resize", "exec.resize", targets(execTarget)),
		postRoute("/containers/{name:.*}/rename", "container.rename", reads(socketHolderFacts), targets(containerTarget), changesNames(renamedNames)),
		postRoute("/containers/{name:.*}/update", "container.update", readsBody, reads(containerUpdateFacts), targets(containerTarget)),
		postRoute("/containers/prune", "container.prune", scopedBy(scopeByOwnerFilter)),
		postRoute("/commit", "image.commit", readsBody, reads(imageCommitFacts), targets(commitTarget), labelsImage, answersNewID),
		// PUT
		putRoute("/containers/{name:.*}/archive", "container.archive.put", reads(socketHolderFacts), targets(containerTarget)),
		// DELETE
		deleteRoute("/containers/{name:.*}", "container.delete", targets(containerTarget), changesNames(removedName)),
	}
}

func imageRoutes() []Route {
	return []Route{
		// GET
		getRoute("/images/json", "image.list", scopedBy(scopeImageList)),
		getRoute("/images/search", "image.search"),
		getRoute("/images/get", "image.save", targets(imageSaveTarget)),
		getRoute("/images/{name:.*}/get", "image.save", targets(imageSaveTarget)),
		getRoute("/images/{name:.*}/history", "image.history", targets(imageTarget)),
		getRoute("/images/{name:.*}/json", "image.inspect", targets(imageTarget)),
		// POST
		postRoute("/images/load", "image.load", streams, spools, reads(imageLoadFacts)),
		// One dockerd handler: it pulls when fromImage is set, else imports
		// from fromSrc (a URL, or the body when "-"). The body is a tarball,
		// so it is not read here. dockerd's r.Form also takes a
		// form-encoded body (ahead of the query): such a body on this route
		// must be refused or read by the caller, or it can turn an import
		// into a pull.
		postRoute("/images/create", "image.pull", streams, reads(imagePullFacts)).ifQuery("fromImage"),
		postRoute("/images/create", "image.import", streams, reads(imageImportFacts), labelsImage),
		postRoute("/images/{name:.*}/push", "image.push", streams, reads(imagePushFacts), targets(imageTarget)),
		postRoute("/images/{name:.*}/tag", "image.tag", reads(imageTagFacts), targets(imageTarget)),
		postRoute("/images/prune", "image.prune", scopedBy(scopeByOwnerFilter)),
		// DELETE
		deleteRoute("/images/{name:.*}", "image.delete", targets(imageDeleteTarget)),
	}
}

func systemRoutes() []Route {
	return []Route{
		// dockerd answers CORS preflight for any path.
		optionsRoute("/{anyroute:.*}", "system.options"),
		getRoute("/_ping", "system.ping"),
		headRoute("/_ping", "system.ping"),
		getRoute("/events", "system.events", streams, scopedBy(scopeByOwnerFilter)),
		getRoute("/info", "system.info"),
		getRoute("/version", "system.version"),
		getRoute("/system/df", "system.df", scopedBy(scopeDiskUsage)),
		postRoute("/auth", "system.auth"),
	}
}

func volumeRoutes() []Route {
	return []Route{
		// GET
		getRoute("/volumes", "volume.list", scopedBy(scopeByOwnerFilter)),
		getRoute("/volumes/{name:.*}", "volume.inspect", targets(volumeTarget)),
		// POST
		postRoute("/volumes/create", "volume.create", readsBody, reads(volumeCreateFacts), labelsBody, answersNewID),
		postRoute("/volumes/prune", "volume.prune", scopedBy(scopeByOwnerFilter)),
		// PUT: cluster volumes (API 1.42+), a swarm spec like service update.
		putRoute("/volumes/{name:.*}", "volume.update", readsBody, targets(volumeTarget)),
		// DELETE
		deleteRoute("/volumes/{name:.*}", "volume.delete", targets(volumeTarget)),
	}
}

// buildRoutes: the build body is the context tarball; what a build may do
// is read from its query, so it is not NeedsBody.
func buildRoutes() []Route {
	return []Route{
		postRoute("/build", "build.run", streams, spools, reads(buildFacts), labelsImage, streamsNewID),
		postRoute("/build/prune", "build.prune", scopedBy(refuseBuildPrune)),
		postRoute("/build/cancel", "build.cancel"),
	}
}

// sessionRoutes: BuildKit's session is a hijacked HTTP/2 connection that
// stays open for the whole build. Opening one grants nothing: dockerd
// calls the client on it, and the proxy reads the Dockerfile of each build
// that uses it as it passes (proxy/buildkit_session.go).
func sessionRoutes() []Route {
	return []Route{
		postRoute("/session", "session.start", streams),
	}
}

func swarmRoutes() []Route {
	return []Route{
		postRoute("/swarm/init", "swarm.init", readsBody),
		postRoute("/swarm/join", "swarm.join", readsBody),
		postRoute("/swarm/leave", "swarm.leave"),
		getRoute("/swarm", "swarm.inspect"),
		getRoute("/swarm/unlockkey", "swarm.unlockkey"),
		postRoute("/swarm/update", "swarm.update", readsBody),
		postRoute("/swarm/unlock", "swarm.unlock"),

		getRoute("/services", "service.list"),
		getRoute("/services/{id}", "service.inspect"),
		postRoute("/services/create", "service.create", readsBody, reads(serviceCreateFacts)),
		postRoute("/services/{id}/update", "service.update", readsBody, reads(serviceUpdateFacts)),
		deleteRoute("/services/{id}", "service.delete"),
		getRoute("/services/{id}/logs", "service.logs", streams),

		getRoute("/nodes", "node.list"),
		getRoute("/nodes/{id}", "node.inspect"),
		deleteRoute("/nodes/{id}", "node.delete"),
		postRoute("/nodes/{id}/update", "node.update", readsBody),

		getRoute("/tasks", "task.list"),
		getRoute("/tasks/{id}", "task.inspect"),
		getRoute("/tasks/{id}/logs", "task.logs", streams),

		getRoute("/secrets", "secret.list"),
		postRoute("/secrets/create", "secret.create", readsBody),
		deleteRoute("/secrets/{id}", "secret.delete"),
		getRoute("/secrets/{id}", "secret.inspect"),
		postRoute("/secrets/{id}/update", "secret.update", readsBody),

		getRoute("/configs", "config.list"),
		postRoute("/configs/create", "config.create", readsBody),
		deleteRoute("/configs/{id}", "config.delete"),
		getRoute("/configs/{id}", "config.inspect"),
		postRoute("/configs/{id}/update", "config.update", readsBody),
	}
}

// pluginRoutes: a plugin runs with the privileges it asks for, so pull,
// upgrade, set and create are read in full.
func pluginRoutes() []Route {
	return []Route{
		getRoute("/plugins", "plugin.list"),
		getRoute("/plugins/{name:.*}/json", "plugin.inspect", absent404(ObjectPlugin)),
		getRoute("/plugins/privileges", "plugin.privileges"),
		deleteRoute("/plugins/{name:.*}", "plugin.delete"),
		postRoute("/plugins/{name:.*}/enable", "plugin.enable", pluginPrivileges),
		postRoute("/plugins/{name:.*}/disable", "plugin.disable"),
		postRoute("/plugins/pull", "plugin.install", streams, readsBody, reads(pluginFacts), pluginPrivileges),
		postRoute("/plugins/{name:.*}/push", "plugin.push", streams),
		postRoute("/plugins/{name:.*}/upgrade", "plugin.upgrade", streams, readsBody, reads(pluginFacts), pluginPrivileges),
		postRoute("/plugins/{name:.*}/set", "plugin.set", readsBody, reads(pluginSetFacts), pluginPrivileges),
		postRoute("/plugins/create", "plugin.create", spools, reads(pluginCreateFacts), pluginPrivileges),
	}
}

func distributionRoutes() []Route {
	return []Route{
		getRoute("/distribution/{name:.*}/json", "distribution.inspect", reads(distributionInspectFacts)),
	}
}

func networkRoutes() []Route {
	return []Route{
		// GET
		getRoute("/networks", "network.list", scopedBy(scopeNetworkList)),
		getRoute("/networks/", "network.list", scopedBy(scopeNetworkList)),
		getRoute("/networks/{id:.+}", "network.inspect", targets(networkTarget)),
		// POST
		postRoute("/networks/create", "network.create", readsBody, reads(networkCreateFacts), labelsBody, answersNewID),
		postRoute("/networks/{id:.*}/connect", "network.connect", readsBody, reads(networkConnectFacts), targets(networkTarget)),
		postRoute("/networks/{id:.*}/disconnect", "network.disconnect", readsBody, reads(networkDisconnectFacts), targets(networkTarget)),
		postRoute("/networks/prune", "network.prune", scopedBy(scopeByOwnerFilter)),
		// DELETE
		deleteRoute("/networks/{id:.*}", "network.delete", targets(networkTarget)),
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
// Opening it grants nothing: every call on it is judged on its own route
// (buildKitCallRoutes) before its request reaches dockerd.
func grpcRoutes() []Route {
	return []Route{
		postRoute("/grpc", "grpc.start", streams, upgradesToGRPC),
	}
}
