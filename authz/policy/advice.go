package policy

import (
	"path"
	"strings"
)

// Advice that teaches the fix. A refusal names the rule that decided (or
// says that none allows the fact); what follows says what to do: the row
// that would allow the fact, for the subject of the caller that such rows
// are usually written for, or, where any such row would undo what the
// policy protects (another tenant's objects, root on the host), what to do
// instead.
//
// A suggested row names just what was asked: the exact value, or for a
// host path that directory and what is below it. It is never written for
// "*": a fix for one caller must not open the fact to every caller.

// Advise says what to do about a refused fact, "" when there is nothing
// to say (it is allowed, or a custom model decided it, whose rows dockgate
// cannot reason about). caller names the caller in the advice. rootWhy,
// when not "", says why allowing f is root on the host where the policy
// cannot know it from the fact alone (an endpoint's meaning is its
// route's: "a plugin runs with the privileges it asks for").
func (c *CallerRules) Advise(caller string, f Fact, rootWhy string) string {
	p := c.p
	if p == nil || p.CustomModel {
		return ""
	}
	v := c.Decide(f)
	if v.Allow {
		return ""
	}
	danger := hostRoot(f)
	if danger == "" && rootWhy != "" {
		danger = rootBecause(rootWhy)
	}
	if v.Rule != nil {
		// A deny row: the rule text already names its file and line.
		if danger != "" {
			return "a deny row wins over every allow row, and allowing it " + danger
		}
		return "a deny row wins over every allow row: to allow it, narrow or remove that row"
	}
	switch f.Kind {
	case OwnerKind:
		return ownerAdvice(caller, f.Value, c)
	case ReplaceablePathKind:
		return "no row should allow it: " + caller + " could point the path at any host directory, dockerd's socket included, between the decision and dockerd's mount; make every directory on the way root-owned and writable by root only (docs/policy-language.md, \"Host paths the caller can change\")"
	case "local-image":
		if iv := c.Decide(Fact{Kind: "image", Value: f.Value}); iv.Allow && iv.Rule != nil {
			return "the policy approves " + f.Value + " when it comes from its registry (" + iv.Rule.text + "), and this image did not (it was built, loaded, tagged or committed here): pull it from the registry, or run it under a name a local-image row allows" + c.allowedList("local-image", " (allowed: %s)")
		}
	case "image-target":
		if iv := c.Decide(Fact{Kind: "image", Value: f.Value}); iv.Allow && iv.Rule != nil {
			return "naming images in a namespace the policy approves for running (" + iv.Rule.text + ") would let local content pass as approved: give it a name of your own" + c.allowedList("image-target", " (allowed: %s)")
		}
	}
	if danger != "" {
		fix := "allowing it " + danger + ", so no row is suggested for a group of callers"
		if alt := instead[f]; alt != "" {
			fix += ": " + alt
		}
		if s := c.identity(); s != "" {
			if row, ok := suggestRow(s, f, true); ok {
				fix += "; for one caller trusted with root on the host, " + row + " would do it"
			}
		}
		return fix
	}
	s := c.subjectFor(f.Kind)
	if s == "" {
		return ""
	}
	row, ok := suggestRow(s, f, false)
	if !ok {
		return ""
	}
	fix := "to allow it, add " + row + " to the policy"
	switch f.Kind {
	case "bind", "image", "local-image", "image-target":
		fix += c.allowedList(f.Kind, ", or use what it allows: %s")
	}
	return fix
}

// ownerAdvice: rows of the owner fact are what keeps tenants apart, so
// none is ever suggested for another tenant's object or an unowned one.
func ownerAdvice(caller, value string, c *CallerRules) string {
	switch value {
	case "none":
		return "a tenant may touch only what it created through dockgate, so no row is suggested: use one that " + caller + " created through dockgate, or have a caller who is no tenant (such as root) do this"
	case "other":
		return "a tenant never touches another tenant's objects, so no row is suggested: have its owner, or a caller who is no tenant (such as root), do this"
	}
	s := c.subjectFor(OwnerKind)
	if row, ok := suggestRow(s, Fact{Kind: OwnerKind, Value: value}, true); s != "" && ok {
		return "to let tenants touch their own objects, add " + row + " to the policy"
	}
	return ""
}

// suggestRow renders the allow row of subject s for f, quoted, when a
// pattern naming just f's value matches it: exactly that value, or, unless
// exact, for a host path that directory and what is below it.
func suggestRow(s string, f Fact, exact bool) (string, bool) {
	pat := f.Value
	if !exact && f.Kind == "bind" && strings.HasPrefix(pat, "/") && pat != "/" {
		// The directory and what is below it: a job's bind of
		// /srv/data/1 is usually followed by /srv/data/2.
		pat = strings.TrimSuffix(pat, "/") + "/**"
	}
	cp, err := CompilePattern(pat)
	if err != nil || !cp.Match(f.Value) {
		return "", false
	}
	return `"` + rowText("p", s, f.Kind, pat, "allow") + `"`, true
}

// allowedList names what the caller's allow rows of kind grant, in format
// (one %s), so that a refusal can point at what is already open; "" when
// there is nothing to name or too much.
func (c *CallerRules) allowedList(kind, format string) string {
	rows := c.p.lookups.rowsByKind[kind]
	if len(rows) == 0 {
		return ""
	}
	applies := c.p.subjectApplies(c.subjects)
	var pats []string
	for _, r := range rows {
		if r.deny || !applies(r.Subject) || r.Pattern == "**" {
			continue
		}
		pats = append(pats, r.Pattern)
	}
	if len(pats) == 0 || len(pats) > 4 {
		return ""
	}
	return strings.Replace(format, "%s", strings.Join(pats, ", "), 1)
}

// subjectFor picks the subject a suggested row names: the role of the
// caller whose rows already grant facts of this kind (where the policy
// keeps such grants), else its first role with allow rows, else its first
// role, else its most specific identity.
func (c *CallerRules) subjectFor(kind string) string {
	roles := c.p.rolesOf(c.subjects)
	best, withRows := "", ""
	for _, role := range roles {
		kinds := c.p.lookups.allowKinds[role]
		if len(kinds) > 0 && withRows == "" {
			withRows = role
		}
		if kinds[kind] && best == "" {
			best = role
		}
	}
	switch {
	case best != "":
		return best
	case withRows != "":
		return withRows
	case len(roles) > 0:
		return roles[0]
	}
	return c.identity()
}

// identityOrder is the order in which a caller's own subjects are named in
// a suggested row: its user name, then what a caller without one has.
var identityOrder = []string{"user:", "uid:", "cert:", "cert-dns:", "cert-uri:", "unit:", "container:"}

// identity returns the caller's most specific own subject.
func (c *CallerRules) identity() string {
	for _, pre := range identityOrder {
		if s := subjectWith(c.subjects, pre); s != "" {
			return s
		}
	}
	return ""
}

// rootCapabilities are capabilities with which a container's root acts on
// the host kernel or on processes and files outside the container.
var rootCapabilities = map[string]bool{
	"ALL": true, "SYS_ADMIN": true, "SYS_MODULE": true, "SYS_RAWIO": true, "SYS_PTRACE": true,
	"DAC_READ_SEARCH": true, "SYS_BOOT": true, "MAC_ADMIN": true, "MAC_OVERRIDE": true,
	"BPF": true, "PERFMON": true, "SYSLOG": true,
}

// systemPaths are host paths whose bind (or any directory holding one)
// gives a container the host: its configuration, binaries, kernel
// interfaces, devices and the state and sockets of dockerd and containerd.
var systemPaths = []string{
	"/etc", "/root", "/boot", "/proc", "/sys", "/dev", "/run", "/var/run",
	"/var/lib/docker", "/var/lib/containerd", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
}

// rootBecause is what hostRoot says of a fact whose allowing is root on
// the host.
func rootBecause(why string) string { return "is root on the host (" + why + ")" }

// hostRoot says what allowing f would give away when that is root on the
// host, or the confinement that keeps a container's root from the host;
// "" when it is not.
func hostRoot(f Fact) string {
	v := f.Value
	switch f.Kind {
	case "privileged":
		if v == "build" {
			return rootBecause("a build step without BuildKit's sandbox has every capability and every host device")
		}
		return rootBecause("a privileged container or exec has every capability and every host device")
	case "namespace":
		ns, how, _ := strings.Cut(v, "=")
		if how != "host" {
			return ""
		}
		switch ns {
		case "pid":
			return rootBecause("in the host's pid namespace a container's root sees, signals and enters every host process")
		case "network":
			return rootBecause("in the host's network namespace a container reaches every service on the host's loopback, dockerd's TCP socket included")
		case "userns":
			return rootBecause("without user namespace remapping a container's root is the host's root")
		}
		return rootBecause("the container shares the host's " + ns + " namespace")
	case "capability":
		if rootCapabilities[v] {
			return rootBecause("with " + v + " a container's root acts on the host kernel, processes or files")
		}
	case "device":
		switch {
		case strings.HasPrefix(v, "request:"):
			return ""
		case strings.HasPrefix(v, "cgroup-rule:"):
			return rootBecause("a device cgroup rule lets a container use host devices it creates; a disk is every file on the host")
		}
		return rootBecause("a host device gives a container that hardware; a disk is every file on the host")
	case "bind":
		return hostRootPath(v)
	case "security-opt":
		switch {
		case v == "seccomp=unconfined", v == "seccomp=custom", v == "apparmor=unconfined", v == "label=disable",
			strings.HasPrefix(v, "label=type:"), v == "systempaths=unconfined", v == "writable-cgroups=true":
			return "takes away confinement that keeps a container's root from the host kernel"
		}
	case "build":
		switch v {
		case "network=host":
			return rootBecause("a build step in the host's network namespace reaches every service on the host's loopback")
		case "buildkit":
			return "lets BuildKit builds do what dockgate cannot judge (a session tunnelled in its control API, a client-side frontend's own containers, a context another request uploads, caches in other stores, OCI layout sources, source policies, a tenant's raw LLB image, fields newer than dockgate knows), and with them any image"
		}
	}
	return ""
}

// instead says what to do rather than allow a fact that hostRoot names.
var instead = map[Fact]string{
	{Kind: "build", Value: "buildkit"}: "send the context with the build and use the Dockerfile frontend, whose images and steps dockgate judges like a legacy build's (or build with DOCKER_BUILDKIT=0)",
}

// hostRootPath says why a bind of p is root on the host, "" when it is not.
func hostRootPath(p string) string {
	switch base := path.Base(p); {
	case p == "/":
		return rootBecause("it is the host's whole file system")
	case base == "docker.sock" || base == "containerd.sock":
		return rootBecause("whoever reaches " + base + " runs anything on the host as root")
	}
	for _, sp := range systemPaths {
		switch {
		case p == sp || strings.HasPrefix(p, sp+"/"):
			return rootBecause(sp + " is part of the host's system: its configuration, binaries, kernel interfaces, devices, or dockerd's state and socket")
		case strings.HasPrefix(sp, p+"/"):
			return rootBecause("it holds " + sp)
		}
	}
	return ""
}
