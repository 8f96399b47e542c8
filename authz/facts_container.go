package authz

import (
	"bytes"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/checkpoint"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/dockgate/dockgate/authz/internal/strictjson"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
)

// containerCreateFacts: POST /containers/create, decoded as dockerd's
// runconfig decodeContainerConfig decodes it (container.CreateRequest:
// Config, HostConfig, NetworkingConfig).
func containerCreateFacts(x *extraction) error {
	body, err := x.requireJSONBody()
	if err != nil {
		return err
	}
	var w container.CreateRequest
	if err := decodeStrictJSON(body, &w, strictjson.ContainerCreate()); err != nil {
		return err
	}
	if w.Config == nil {
		return badBody("container.create: config cannot be empty")
	}
	// The create is forwarded re-encoded when dockgate changes it: a bind
	// of a Docker daemon's socket can be given dockgate's instead.
	x.delegating = true
	if err := checkOwnerLabels("container create Labels", w.Config.Labels); err != nil {
		return err
	}
	if err := x.addImageRun(w.Config.Image); err != nil {
		return err
	}
	x.verifyCreatedImage(w.Config.Image)
	hc := w.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if err := x.hostConfigFacts(hc); err != nil {
		return err
	}
	// Image VOLUMEs and Config.Volumes become anonymous volumes of
	// HostConfig.VolumeDriver (covered by hostConfigFacts).
	if w.NetworkingConfig != nil {
		if err := x.endpointsFacts(w.NetworkingConfig.EndpointsConfig); err != nil {
			return err
		}
		for _, name := range sortedKeys(w.NetworkingConfig.EndpointsConfig) {
			if err := x.networkRef(name); err != nil {
				return err
			}
		}
	}
	if err := x.createMissingVolumes(hc.VolumeDriver); err != nil {
		return err
	}
	// Last, so that the labels, the pinned container references and the
	// delegated sockets (hostConfigFacts) are all in what is forwarded.
	return x.recordCreate(&w, hc)
}

// containerStartFacts: POST /containers/{name}/start. dockerd 20.10 applies
// a HostConfig sent here when the API version is below 1.24
// (postContainersStart → DecodeHostConfig → ContainerStart(hostConfig)),
// both as {"HostConfig":{…}} and as top-level fields: the first is judged
// like a create's, the second refused like a create's. From 1.24 on
// dockerd refuses a body, and so does dockgate (an empty object aside).
// The checkpoint-dir query restores from a host directory. Whatever the
// body, the host paths the container recorded at create are judged again
// (containerMountsAgain).
func containerStartFacts(x *extraction) error {
	dir, err := x.formValue("checkpoint-dir")
	if err != nil {
		return err
	}
	if dir != "" {
		if err := x.addHostPath("bind", dir); err != nil {
			return err
		}
	}
	if err := x.startBodyFacts(); err != nil {
		return err
	}
	return x.containerMountsAgain()
}

// startBodyFacts reads the HostConfig of an old API version's start body.
func (x *extraction) startBodyFacts() error {
	body, err := x.body()
	if err != nil {
		return err
	}
	switch string(bytes.Trim(body, " \t\r\n")) {
	case "", "{}", "null":
		return nil
	}
	if !x.apiBefore("1.24") {
		return badBody("container.start takes no body since API 1.24")
	}
	body, err = x.jsonBody()
	if err != nil {
		return err
	}
	var w container.CreateRequest
	if err := decodeStrictJSON(body, &w, strictjson.ContainerCreate()); err != nil {
		return err
	}
	if w.HostConfig == nil {
		return nil
	}
	return x.hostConfigFacts(w.HostConfig)
}

// containerRestartFacts: POST /containers/{name}/restart mounts the
// container's host paths again.
func containerRestartFacts(x *extraction) error {
	return x.containerMountsAgain()
}

// containerMountsAgain judges the host paths the container of the
// request's {name} recorded at create (binds, volumes with a host device,
// devices) again, as they resolve now and for this caller, since dockerd
// resolves them again when it (re)starts the container (BRIEF §7 item
// 11): a source swapped for a symlink since the create is judged where it
// points now. The request is forwarded pinned to the container that was
// judged. A container that does not exist has nothing to judge: dockerd
// answers 404.
func (x *extraction) containerMountsAgain() error {
	m, found, err := x.namedContainerMounts()
	if err != nil || !found {
		return err
	}
	if err := x.recordedMountsFacts(m, ""); err != nil {
		return err
	}
	return x.pinPathVar("name", m.ID)
}

// recordedMountsFacts judges host paths as dockerd recorded them, for a
// container started again or, when volumesFrom names it, for the binds a
// container created copies from it: those cannot be rewritten, so a Docker
// daemon's socket among them is refused.
func (x *extraction) recordedMountsFacts(m dockerd.ContainerMounts, volumesFrom string) error {
	for _, b := range m.Binds {
		owner, err := x.addBind(b)
		if err != nil {
			return err
		}
		if owner == daemonSocket && volumesFrom != "" {
			return inheritedDaemonSocket(volumesFrom, b)
		}
	}
	for _, v := range m.Volumes {
		if err := x.namedVolumeFacts(v, nil); err != nil {
			return err
		}
	}
	for _, d := range m.Devices {
		if err := x.addHostPath("device", d); err != nil {
			return err
		}
	}
	return nil
}

// namedContainerMounts returns what the container the request's {name}
// names took from the host, as dockerd recorded it; found is false when
// there is no such container (dockerd answers the request 404).
func (x *extraction) namedContainerMounts() (dockerd.ContainerMounts, bool, error) {
	name := x.m.Vars["name"]
	if name == "" || !validObjectName(name) {
		return dockerd.ContainerMounts{}, false, nil
	}
	in, err := x.inspector()
	if err != nil {
		return dockerd.ContainerMounts{}, false, err
	}
	m, found, err := in.ContainerMounts(x.ctx, name)
	if err != nil {
		return dockerd.ContainerMounts{}, false, upstreamError("container "+name, err)
	}
	return m, found, nil
}

// containerUpdateFacts: POST /containers/{name}/update (container.UpdateConfig).
// A restart policy set here makes dockerd start the container again on
// its own, so its host paths are judged again too.
func containerUpdateFacts(x *extraction) error {
	body, err := x.requireJSONBody()
	if err != nil {
		return err
	}
	var u container.UpdateConfig
	if err := decodeStrictJSON(body, &u, strictjson.Options{}); err != nil {
		return err
	}
	if err := x.resourcesFacts(&u.Resources); err != nil {
		return err
	}
	// On update 0 and every negative value remove the container's limit
	// (getPidsLimit: Limit -1); null leaves it as it is.
	if u.PidsLimit != nil && *u.PidsLimit <= 0 {
		x.add("resource", "pids-limit=unlimited")
	}
	x.restartFacts(u.RestartPolicy)
	return x.containerMountsAgain()
}

// execCreateFacts: POST /containers/{name}/exec (container.ExecOptions).
func execCreateFacts(x *extraction) error {
	body, err := x.requireJSONBody()
	if err != nil {
		return err
	}
	var e container.ExecOptions
	if err := decodeStrictJSON(body, &e, strictjson.Options{}); err != nil {
		return err
	}
	if e.Privileged {
		x.add("privileged", "exec")
	}
	return socketHolderFacts(x)
}

// checkpointCreateFacts: POST /containers/{name}/checkpoints writes the
// checkpoint to CheckpointDir on the host.
func checkpointCreateFacts(x *extraction) error {
	body, err := x.jsonBody()
	if err != nil || len(body) == 0 {
		return err
	}
	var c checkpoint.CreateOptions
	if err := decodeStrictJSON(body, &c, strictjson.Options{}); err != nil {
		return err
	}
	if c.CheckpointDir != "" {
		return x.addHostPath("bind", c.CheckpointDir)
	}
	return nil
}

// hostConfigFacts reads every fact of a HostConfig.
func (x *extraction) hostConfigFacts(hc *container.HostConfig) error {
	if hc.Privileged {
		x.add("privileged", "container")
	}
	if err := x.bindsFacts(hc.Binds); err != nil {
		return err
	}
	if err := x.mountsFacts(hc.Mounts); err != nil {
		return err
	}
	if d := hc.VolumeDriver; d != "" && d != "local" {
		x.add("volume-driver", d)
	}
	if err := x.volumesFromFacts(hc.VolumesFrom); err != nil {
		return err
	}
	if err := x.containerRefsFacts(hc); err != nil {
		return err
	}
	if err := x.resourcesFacts(&hc.Resources); err != nil {
		return err
	}
	x.capabilityFacts(hc.CapAdd)
	if err := x.namespaceFacts(hc); err != nil {
		return err
	}
	if err := x.securityOptFacts(hc.SecurityOpt); err != nil {
		return err
	}
	masked, err := x.defaultMaskedPaths(hc.MaskedPaths)
	if err != nil {
		return err
	}
	if weakensSystemPaths(hc.MaskedPaths, masked) || weakensSystemPaths(hc.ReadonlyPaths, defaultReadonlyPaths) {
		x.add("security-opt", "systempaths=unconfined")
	}
	for _, k := range sortedKeys(hc.Sysctls) {
		x.add("sysctl", k+"="+hc.Sysctls[k])
	}
	if hc.Runtime != "" && hc.Runtime != "runc" {
		x.add("runtime", hc.Runtime)
	}
	switch hc.LogConfig.Type {
	case "", "json-file", "local":
	default:
		x.add("log-driver", hc.LogConfig.Type)
	}
	if err := x.portFacts(hc.PortBindings); err != nil {
		return err
	}
	for _, k := range sortedKeys(hc.Annotations) {
		x.add("annotation", k)
	}
	if hc.OomScoreAdj < 0 {
		x.add("resource", "oom-score-adj="+strconv.Itoa(hc.OomScoreAdj))
	}
	x.restartFacts(hc.RestartPolicy)
	return nil
}

// resourcesFacts reads the Resources of a create or an update.
func (x *extraction) resourcesFacts(r *container.Resources) error {
	for _, d := range r.Devices {
		p := d.PathOnHost
		if p == "" {
			return badBody("device without PathOnHost")
		}
		// dockerd stats a relative path from its working directory, /.
		if !path.IsAbs(p) {
			p = "/" + p
		}
		if err := x.addHostPath("device", p); err != nil {
			return err
		}
	}
	for _, rule := range r.DeviceCgroupRules {
		x.add("device", "cgroup-rule:"+rule)
	}
	for _, req := range r.DeviceRequests {
		// An empty driver lets dockerd pick one by capabilities (nvidia
		// for "gpu"): the value is then "request:".
		x.add("device", "request:"+req.Driver)
	}
	if r.CgroupParent != "" {
		x.add("cgroup-parent", r.CgroupParent)
	}
	if r.OomKillDisable != nil && *r.OomKillDisable {
		x.add("resource", "oom-kill-disable")
	}
	// PidsLimit: on create dockerd drops 0 and negative values
	// (postContainersCreate), which is the default, no limit, and what
	// the CLI always sends; only an update can remove a limit
	// (containerUpdateFacts).
	return nil
}

// restartFacts: policies that bring a container back after it exits or the
// daemon restarts.
func (x *extraction) restartFacts(p container.RestartPolicy) {
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		x.add("resource", "restart="+string(p.Name))
	}
}

// defaultCapabilities is Docker's default capability set (oci/caps
// DefaultCapabilities), without the CAP_ prefix: adding one of these is not
// a fact.
var defaultCapabilities = map[string]bool{
	"CHOWN": true, "DAC_OVERRIDE": true, "FSETID": true, "FOWNER": true,
	"MKNOD": true, "NET_RAW": true, "SETGID": true, "SETUID": true,
	"SETFCAP": true, "SETPCAP": true, "NET_BIND_SERVICE": true,
	"SYS_CHROOT": true, "KILL": true, "AUDIT_WRITE": true,
}

// normalizeCapability reads a capability name as dockerd's
// NormalizeLegacyCapabilities does: strings.ToUpper (so "cap_ſys_admin" is
// CAP_SYS_ADMIN) and the CAP_ prefix stripped.
func normalizeCapability(c string) string {
	return strings.TrimPrefix(strings.ToUpper(c), "CAP_")
}

// capabilityFacts adds each added capability outside the default set.
// "ALL" stays ALL: it adds every capability whatever CapDrop says
// (TweakCapabilities checks CapAdd ALL first).
func (x *extraction) capabilityFacts(add []string) {
	for _, c := range add {
		c = normalizeCapability(c)
		if !defaultCapabilities[c] {
			x.add("capability", c)
		}
	}
}

// namespaceFacts: host and shared namespaces. Values dockerd's Valid()
// methods refuse are refused here too.
func (x *extraction) namespaceFacts(hc *container.HostConfig) error {
	switch n := hc.NetworkMode; {
	case n.IsHost():
		x.add("namespace", "network=host")
	case n.IsContainer():
		x.add("namespace", "network=container")
	}
	if !hc.PidMode.Valid() {
		return badBody("invalid PidMode %q", hc.PidMode)
	}
	switch {
	case hc.PidMode.IsHost():
		x.add("namespace", "pid=host")
	case hc.PidMode.IsContainer():
		x.add("namespace", "pid=container")
	}
	if !hc.IpcMode.Valid() {
		return badBody("invalid IpcMode %q", hc.IpcMode)
	}
	switch {
	case hc.IpcMode.IsHost():
		x.add("namespace", "ipc=host")
	case hc.IpcMode.IsContainer():
		x.add("namespace", "ipc=container")
	}
	if !hc.UTSMode.Valid() {
		return badBody("invalid UTSMode %q", hc.UTSMode)
	}
	if hc.UTSMode.IsHost() {
		x.add("namespace", "uts=host")
	}
	if !hc.UsernsMode.Valid() {
		return badBody("invalid UsernsMode %q", hc.UsernsMode)
	}
	if hc.UsernsMode.IsHost() {
		x.add("namespace", "userns=host")
	}
	if !hc.CgroupnsMode.Valid() {
		return badBody("invalid CgroupnsMode %q", hc.CgroupnsMode)
	}
	// Below API 1.41 an unset cgroup namespace mode is "host" on cgroup v1
	// hosts (postContainersCreate), BRIEF §7 item 9; dockgate does not
	// assume the host's cgroup version. From 1.41 an unset mode is the
	// daemon's default-cgroupns-mode, which dockerd 20.10 sets to "host"
	// on cgroup v1 hosts too: that default is the daemon's, not the
	// request's, and is no fact.
	if hc.CgroupnsMode.IsHost() || (hc.CgroupnsMode.IsEmpty() && x.apiBefore("1.41")) {
		v1, err := x.cgroupV1()
		if err != nil {
			return err
		}
		// On a cgroup v1 host the host's cgroup namespace is what dockerd
		// gives every container: asking for it (as an updater sending a
		// container's own inspect back does) changes nothing.
		if !v1 {
			x.add("namespace", "cgroupns=host")
		}
	}
	if !hc.Cgroup.Valid() {
		return badBody("invalid Cgroup %q", hc.Cgroup)
	}
	if hc.Cgroup.IsContainer() {
		x.add("namespace", "cgroup=container")
	}
	return nil
}

// securityOptFacts reads SecurityOpt as dockerd's parseSecurityOpt does:
// bare "no-new-privileges", "writable-cgroups" and "disable", else key and
// value split at the first '=' or, failing that, the first ':'. Options
// dockerd refuses are refused.
func (x *extraction) securityOptFacts(opts []string) error {
	nnpFalse := false
	for _, opt := range opts {
		switch opt {
		case "no-new-privileges":
			nnpFalse = false
			continue
		case "writable-cgroups":
			x.add("security-opt", "writable-cgroups=true")
			continue
		case "disable":
			x.add("security-opt", "label=disable")
			continue
		}
		var k, v string
		var ok bool
		if strings.Contains(opt, "=") {
			k, v, ok = strings.Cut(opt, "=")
		} else if strings.Contains(opt, ":") {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return badBody("invalid security option %q", opt)
		}
		switch k {
		case "label":
			x.add("security-opt", "label="+v)
		case "apparmor":
			switch v {
			case "":
			case "unconfined":
				x.add("security-opt", "apparmor=unconfined")
			default:
				x.add("security-opt", "apparmor="+v)
			}
		case "seccomp":
			switch v {
			case "", "builtin":
			case "unconfined":
				x.add("security-opt", "seccomp=unconfined")
			default:
				x.add("security-opt", "seccomp=custom")
			}
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return badBody("invalid security option %q", opt)
			}
			nnpFalse = !b
		case "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return badBody("invalid security option %q", opt)
			}
			if b {
				x.add("security-opt", "writable-cgroups=true")
			}
		default:
			return badBody("invalid security option %q", opt)
		}
	}
	if nnpFalse {
		x.add("security-opt", "no-new-privileges=false")
	}
	return nil
}

// The default masked and read-only paths (oci/defaults.go, dockerd 28). A
// HostConfig that sets its own list replaces them; a list that leaves any
// of them out weakens confinement like the CLI's --security-opt
// systempaths=unconfined (which sends empty lists). dockerd before 25
// masked two fewer (oldMaskedPaths): its own defaults sent back to it
// weaken nothing.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
		"/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	oldMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore",
		"/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// weakensSystemPaths reports whether an explicit list (non-nil: JSON [] is
// an empty list, null is "use the defaults") leaves out a default path.
func weakensSystemPaths(list, defaults []string) bool {
	if list == nil {
		return false
	}
	have := make(map[string]bool, len(list))
	for _, p := range list {
		have[path.Clean(p)] = true
	}
	for _, d := range defaults {
		if !have[d] {
			return true
		}
	}
	return false
}

// portFacts: published host ports below 1024, including ranges and any
// host IP. An empty or zero HostPort is an ephemeral port.
func (x *extraction) portFacts(bindings nat.PortMap) error {
	keys := make([]string, 0, len(bindings))
	for k := range bindings {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, b := range bindings[nat.Port(k)] {
			lo, hi, err := parseHostPortRange(b.HostPort)
			if err != nil {
				return badBody("invalid host port %q for %s: %v", b.HostPort, k, err)
			}
			for p := max(lo, 1); p <= hi && p < 1024; p++ {
				x.add("port", strconv.Itoa(p))
			}
		}
	}
	return nil
}

// parseHostPortRange reads a HostPort ("80", "8000-8100", "") as the union
// of what go-connections' nat parsers accept across dockerd versions:
// 20.10's split on every '-' and reads the first two parts; 28's cuts at
// the first '-' and accepts a sign.
func parseHostPortRange(s string) (lo, hi int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	parts := strings.Split(s, "-")
	if lo, err = parsePortNumber(parts[0]); err != nil {
		return 0, 0, err
	}
	if len(parts) == 1 {
		return lo, lo, nil
	}
	// "a-b-c": 20.10 binds a to b, 28 refuses it.
	if hi, err = parsePortNumber(parts[1]); err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, strconv.ErrRange
	}
	return lo, hi, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 0)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > 65535 {
		return 0, strconv.ErrRange
	}
	return int(n), nil
}

// endpointsFacts: networks a container joins at create. The host network
// and container: modes are namespaces; endpoint sysctls
// (com.docker.network.endpoint.sysctls, dockerd 25+) are sysctls.
func (x *extraction) endpointsFacts(eps map[string]*network.EndpointSettings) error {
	for _, name := range sortedKeys(eps) {
		switch {
		case name == "host":
			x.add("namespace", "network=host")
		case strings.HasPrefix(name, "container:"):
			x.add("namespace", "network=container")
		}
		x.endpointSettingsFacts(eps[name])
	}
	return nil
}

// endpointSysctlsOpt is libnetwork's netlabel.EndpointSysctls.
const endpointSysctlsOpt = "com.docker.network.endpoint.sysctls"

func (x *extraction) endpointSettingsFacts(ep *network.EndpointSettings) {
	if ep == nil {
		return
	}
	if v, ok := ep.DriverOpts[endpointSysctlsOpt]; ok {
		x.addEndpointSysctls(v)
	}
}

// addEndpointSysctls adds each sysctl of a comma-separated
// com.docker.network.endpoint.sysctls value.
func (x *extraction) addEndpointSysctls(v string) {
	for _, s := range strings.Split(v, ",") {
		if s != "" {
			x.add("sysctl", s)
		}
	}
}

// sortedKeys returns m's keys in order, so that facts come out in a stable
// order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// addHostPath adds a fact whose value is a resolved host path, and a
// replaceable-path fact for the same path when the caller could redirect
// it before dockerd mounts it (hostpath_control.go).
func (x *extraction) addHostPath(kind, p string) error {
	r, why, err := x.host.resolveFor(p, x.req.Cred)
	if err != nil {
		return err
	}
	x.addResolved(kind, r, why)
	return nil
}

// addResolved is addHostPath for a path resolveFor resolved to r, the
// caller able to redirect it when why says so.
func (x *extraction) addResolved(kind, r, why string) {
	x.add(kind, r)
	if why != "" {
		x.add(policy.ReplaceablePathKind, r)
		x.req.note(policy.Fact{Kind: policy.ReplaceablePathKind, Value: r}, why)
	}
}

// bindsFacts reads HostConfig.Binds as dockerd's Linux mount parser
// (volume/mounts linuxParser.ParseMountRaw) does: "src:dst[:mode]" where
// an absolute src is a host path and any other src a named volume; a bare
// "dst" is an anonymous volume. A bind of a Docker daemon's socket is
// given dockgate's socket in binds itself (facts_socket.go).
func (x *extraction) bindsFacts(binds []string) error {
	for i, raw := range binds {
		src, err := parseBindSource(raw)
		if err != nil {
			return err
		}
		switch {
		case src == "":
		case path.IsAbs(src):
			owner, err := x.addBind(src)
			if err != nil {
				return err
			}
			if owner == daemonSocket && x.delegating {
				if binds[i], err = x.delegateBindsEntry(raw, src); err != nil {
					return err
				}
			}
		default:
			if err := x.namedVolumeFacts(src, nil); err != nil {
				return err
			}
			found, err := x.volumeRef(src)
			if err != nil {
				return err
			}
			if !found && x.req.Owner != "" && !slices.Contains(x.missingVolumes, src) {
				// dockerd would create it unlabelled (a bind has no
				// labels): dockgate creates it for the tenant first.
				x.missingVolumes = append(x.missingVolumes, src)
			}
		}
	}
	return nil
}

// parseBindSource returns the source of a Binds entry, "" for an anonymous
// volume, refusing what dockerd refuses.
func parseBindSource(raw string) (string, error) {
	arr := strings.SplitN(raw, ":", 4)
	if arr[0] == "" {
		return "", badBody("invalid bind %q", raw)
	}
	switch len(arr) {
	case 1:
		return "", nil
	case 2:
		// "dst:mode" is not a volume: dockerd refuses it.
		if validMountMode(arr[1]) {
			return "", badBody("invalid bind %q", raw)
		}
		return arr[0], nil
	case 3:
		if !validMountMode(arr[2]) {
			return "", badBody("invalid mode in bind %q", raw)
		}
		return arr[0], nil
	}
	return "", badBody("invalid bind %q", raw)
}

// validMountMode is linuxValidMountMode: a comma list with at most one of
// each kind of mode.
func validMountMode(mode string) bool {
	if mode == "" {
		return true
	}
	var rw, label, prop, cp, cons int
	for _, o := range strings.Split(mode, ",") {
		switch o {
		case "rw", "ro":
			rw++
		case "z", "Z":
			label++
		case "private", "rprivate", "slave", "rslave", "shared", "rshared":
			prop++
		case "nocopy":
			cp++
		case "consistent", "cached", "delegated":
			cons++
		default:
			return false
		}
	}
	return rw <= 1 && label <= 1 && prop <= 1 && cp <= 1 && cons <= 1
}

// mountsFacts reads HostConfig.Mounts (and a service's mounts). A bind
// mount of a Docker daemon's socket is given dockgate's socket in mounts
// itself (facts_socket.go).
func (x *extraction) mountsFacts(mounts []mount.Mount) error {
	for i := range mounts {
		m := &mounts[i]
		switch m.Type {
		case mount.TypeBind:
			if !path.IsAbs(m.Source) {
				return badBody("bind mount source %q is not an absolute path", m.Source)
			}
			owner, err := x.addBind(m.Source)
			if err != nil {
				return err
			}
			if owner == daemonSocket && x.delegating {
				if m.Source, err = x.delegateMountSource(m.Source, m.Target); err != nil {
					return err
				}
			}
		case mount.TypeVolume:
			var drv *mount.Driver
			if m.VolumeOptions != nil {
				drv = m.VolumeOptions.DriverConfig
				// The labels of the volume dockerd creates for the mount.
				if err := checkOwnerLabels("mount VolumeOptions Labels", m.VolumeOptions.Labels); err != nil {
					return err
				}
			}
			if x.req.Owner != "" {
				// A volume dockerd creates for this mount (anonymous, or
				// named and missing) is the tenant's; an existing one
				// keeps its labels.
				if m.VolumeOptions == nil {
					m.VolumeOptions = &mount.VolumeOptions{}
				}
				x.setOwnerLabels(&m.VolumeOptions.Labels)
			}
			if m.Source == "" {
				// Anonymous: a new volume with the inline driver config.
				if drv != nil {
					if err := x.volumeOptionFacts(drv.Name, drv.Options); err != nil {
						return err
					}
				}
				continue
			}
			if err := x.namedVolumeFacts(m.Source, drv); err != nil {
				return err
			}
			if _, err := x.volumeRef(m.Source); err != nil {
				return err
			}
		case mount.TypeImage:
			if err := x.addImageRun(m.Source); err != nil {
				return err
			}
		case mount.TypeTmpfs, mount.TypeNamedPipe:
		case mount.TypeCluster:
			// A swarm cluster (CSI) volume, created by volume.create.
		default:
			return badBody("unknown mount type %q", m.Type)
		}
	}
	return nil
}

// volumesFromFacts: VolumesFrom "container[:ro|rw]" mounts everything the
// source container mounts: its binds and its volumes.
func (x *extraction) volumesFromFacts(from []string) error {
	for _, spec := range from {
		id, mode, hasMode := strings.Cut(spec, ":")
		if id == "" || (hasMode && !validMountMode(mode)) {
			return badBody("invalid VolumesFrom %q", spec)
		}
		if !validObjectName(id) {
			return badBody("invalid container name in VolumesFrom %q", spec)
		}
		in, err := x.inspector()
		if err != nil {
			return err
		}
		m, found, err := in.ContainerMounts(x.ctx, id)
		if err != nil {
			return upstreamError("container "+id, err)
		}
		if !found {
			return badBody("VolumesFrom: no such container %q", id)
		}
		if x.volumesFrom == nil {
			x.volumesFrom = make(map[string]string)
		}
		x.volumesFrom[id] = m.ID
		// Devices are not inherited.
		if err := x.recordedMountsFacts(dockerd.ContainerMounts{Binds: m.Binds, Volumes: m.Volumes}, id); err != nil {
			return err
		}
	}
	return nil
}

// cgroupV1 says whether dockerd runs on a cgroup v1 host.
func (x *extraction) cgroupV1() (bool, error) {
	d, err := x.daemon()
	return d.CgroupVersion == "1", err
}

// defaultMaskedPaths are the masked paths dockerd gives a container that
// sets none: dockerd's own, by its version. Only a list that leaves out
// one of the newest defaults asks dockerd which it is.
func (x *extraction) defaultMaskedPaths(list []string) ([]string, error) {
	if !weakensSystemPaths(list, defaultMaskedPaths) {
		return defaultMaskedPaths, nil
	}
	d, err := x.daemon()
	if err != nil {
		return nil, err
	}
	if major, _, _ := strings.Cut(d.Version, "."); len(major) == 2 && major < "25" {
		return oldMaskedPaths, nil
	}
	return defaultMaskedPaths, nil
}

// daemon is what dockerd says of itself.
func (x *extraction) daemon() (dockerd.Daemon, error) {
	in, err := x.inspector()
	if err != nil {
		return dockerd.Daemon{}, err
	}
	d, err := in.Daemon(x.ctx)
	if err != nil {
		return dockerd.Daemon{}, upstreamError("dockerd's version", err)
	}
	return d, nil
}
