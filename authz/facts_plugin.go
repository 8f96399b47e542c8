package authz

import (
	"archive/tar"
	"errors"
	"io"
	"path"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types"

	"github.com/dockgate/dockgate/authz/internal/strictjson"
)

// Plugin facts. A plugin runs as root with the privileges its config asks
// for; dockerd installs it only when the client sends exactly those
// privileges (plugin/backend_linux.go computePrivileges and the check in
// Pull/Upgrade), so the privileges in the body are the plugin's.

// maxPluginConfig bounds the config.json read from a plugin create tarball.
const maxPluginConfig = 1 << 20

// pluginFacts: POST /plugins/pull?remote= and POST /plugins/{name}/upgrade?remote=,
// body the accepted privileges (types.PluginPrivileges).
func pluginFacts(x *extraction) error {
	remote, err := x.formValue("remote")
	if err != nil {
		return err
	}
	if err := x.addPluginRef(remote); err != nil {
		return err
	}
	body, err := x.requireJSONBody()
	if err != nil {
		return err
	}
	var privs types.PluginPrivileges
	if err := decodeStrictJSON(body, &privs, strictjson.Options{}); err != nil {
		return err
	}
	for _, p := range privs {
		if err := x.pluginPrivilegeFacts(p.Name, p.Value); err != nil {
			return err
		}
	}
	return nil
}

// addPluginRef adds the image fact of a plugin reference: plugins are
// images, normalized as dockerd's pullPlugin normalizes them.
func (x *extraction) addPluginRef(remote string) error {
	named, err := reference.ParseNormalizedNamed(remote)
	if err != nil {
		return badBody("invalid plugin reference %q: %v", remote, err)
	}
	x.add("image", reference.TagNameOnly(named).String())
	return nil
}

// pluginPrivilegeFacts maps one plugin privilege to facts.
func (x *extraction) pluginPrivilegeFacts(name string, values []string) error {
	switch name {
	case "network":
		for _, v := range values {
			if v == "host" {
				x.add("namespace", "network=host")
			}
		}
	case "host ipc namespace":
		x.add("namespace", "ipc=host")
	case "host pid namespace":
		x.add("namespace", "pid=host")
	case "mount":
		for _, v := range values {
			if err := x.addPluginPath("bind", v); err != nil {
				return err
			}
		}
	case "device":
		for _, v := range values {
			if err := x.addPluginPath("device", v); err != nil {
				return err
			}
		}
	case "allow-all-devices":
		x.add("device", "cgroup-rule:a *:* rwm")
	case "capabilities":
		x.capabilityFacts(values)
	default:
		return badBody("unknown plugin privilege %q", name)
	}
	return nil
}

// addPluginPath adds a host path of a plugin privilege; a relative one is
// kept as cleaned (it names a path in the plugin's bundle, which no host
// path pattern matches).
func (x *extraction) addPluginPath(kind, p string) error {
	if path.IsAbs(p) {
		return x.addHostPath(kind, p)
	}
	x.add(kind, path.Clean(p))
	return nil
}

// pluginSetFacts: POST /plugins/{name}/set, body ["name[.field]=value", ...]
// (plugin/v2 newSettable). A mount's "source" and a device's "path" are
// host paths; without a field the name may be a mount or a device whose
// only settable field is meant, so an absolute value is read as both.
func pluginSetFacts(x *extraction) error {
	body, err := x.requireJSONBody()
	if err != nil {
		return err
	}
	var args []string
	if err := decodeStrictJSON(body, &args, strictjson.Options{}); err != nil {
		return err
	}
	for _, arg := range args {
		i := strings.Index(arg, "=")
		if i == 0 {
			return badBody("invalid plugin setting %q", arg)
		}
		if i < 0 {
			continue
		}
		name, value := arg[:i], arg[i+1:]
		field := ""
		if j := strings.LastIndex(name, "."); j > 0 {
			field = name[j+1:]
		}
		switch field {
		case "source":
			if err := x.addPluginPath("bind", value); err != nil {
				return err
			}
		case "path":
			if err := x.addPluginPath("device", value); err != nil {
				return err
			}
		case "":
			if path.IsAbs(value) {
				if err := x.addHostPath("bind", value); err != nil {
					return err
				}
				if err := x.addHostPath("device", value); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// pluginCreateFacts: POST /plugins/create?name=, body a tarball with
// config.json and rootfs/, spooled (Match.Spool) because a plugin's rootfs
// is easily larger than a JSON body may be. The privileges are computed
// from config.json as dockerd computes them (the last config.json in the
// archive wins, as in splitConfigRootFSFromTar, which reads the body as a
// plain tar: no decompression here either). The tar is streamed from the
// spool file: only config.json is held in memory.
func pluginCreateFacts(x *extraction) error {
	var config []byte
	f, size, err := x.spooledBody()
	if err != nil {
		return err
	}
	if f != nil && size > 0 {
		if config, err = pluginConfigFromTar(io.NewSectionReader(f, 0, size)); err != nil {
			return err
		}
	}
	if config == nil {
		return badBody("plugin.create: no config.json in the archive")
	}
	var c types.PluginConfig
	if err := decodeStrictJSON(config, &c, strictjson.Options{}); err != nil {
		return err
	}
	if t := c.Network.Type; t != "" && t != "null" && t != "bridge" {
		if err := x.pluginPrivilegeFacts("network", []string{t}); err != nil {
			return err
		}
	}
	if c.IpcHost {
		x.add("namespace", "ipc=host")
	}
	if c.PidHost {
		x.add("namespace", "pid=host")
	}
	for _, m := range c.Mounts {
		if m.Source != nil {
			if err := x.addPluginPath("bind", *m.Source); err != nil {
				return err
			}
		}
	}
	for _, d := range c.Linux.Devices {
		if d.Path != nil {
			if err := x.addPluginPath("device", *d.Path); err != nil {
				return err
			}
		}
	}
	if c.Linux.AllowAllDevices {
		x.add("device", "cgroup-rule:a *:* rwm")
	}
	x.capabilityFacts(c.Linux.Capabilities)
	return nil
}

// pluginConfigFromTar returns the last config.json of a plugin create
// tarball, nil when it has none.
func pluginConfigFromTar(r io.Reader) ([]byte, error) {
	tr := tar.NewReader(r)
	var config []byte
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return config, nil
		}
		if err != nil {
			return nil, badBody("plugin.create: invalid tar archive: %v", err)
		}
		name := path.Clean(hdr.Name)
		if path.IsAbs(name) {
			name = name[1:]
		}
		if name != "config.json" {
			continue
		}
		config, err = io.ReadAll(io.LimitReader(tr, maxPluginConfig+1))
		if err != nil {
			return nil, badBody("plugin.create: cannot read config.json: %v", err)
		}
		if len(config) > maxPluginConfig {
			return nil, badBody("plugin.create: config.json is too large")
		}
	}
}
