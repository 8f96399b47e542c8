package authz

import (
	"path"
	"strings"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"

	"github.com/dockgate/dockgate/authz/internal/strictjson"
	"github.com/dockgate/dockgate/internal/dockerd"
)

// Volume facts. A local-driver volume is a mount(2) that dockerd performs
// as root on the host (volume/local localVolume.mount): with o=bind or
// rbind (or type none) its device is a host path bound into the container,
// with a /dev device it is a block device, and any other type is a
// filesystem (nfs, cifs, overlay, proc, ...). Such a volume may be created
// first and mounted by name later, so named volumes are resolved to their
// options by asking dockerd (BRIEF §7 item 3).

// validObjectName is what dockgate passes on to dockerd's inspect
// endpoints: the client's own rule, so that what the facts accept is what
// the client will ask about.
func validObjectName(s string) bool { return dockerd.ValidObjectName(s) }

// volumeCreateFacts: POST /volumes/create (volume.CreateOptions).
func volumeCreateFacts(x *extraction) error {
	body, err := x.requireJSONBody()
	if err != nil {
		return err
	}
	var c volume.CreateOptions
	if err := decodeStrictJSON(body, &c, strictjson.Options{}); err != nil {
		return err
	}
	if err := checkOwnerLabels("volume create Labels", c.Labels); err != nil {
		return err
	}
	if err := x.addOwnerLabel(&c, &c.Labels); err != nil {
		return err
	}
	return x.volumeOptionFacts(c.Driver, c.DriverOpts)
}

// namedVolumeFacts: a volume mounted by name. inline is the mount's own
// driver config (used when dockerd creates the volume); the existing
// volume's options are read from dockerd.
func (x *extraction) namedVolumeFacts(name string, inline *mount.Driver) error {
	if strings.HasPrefix(name, "/") || !validObjectName(name) {
		return badBody("invalid volume name %q", name)
	}
	if inline != nil {
		if err := x.volumeOptionFacts(inline.Name, inline.Options); err != nil {
			return err
		}
	}
	in, err := x.inspector()
	if err != nil {
		return err
	}
	driver, opts, found, err := in.VolumeOptions(x.ctx, name)
	if err != nil {
		return upstreamError("volume "+name, err)
	}
	if !found {
		return nil
	}
	return x.volumeOptionFacts(driver, opts)
}

// volumeOptionFacts reads a volume's driver and driver options.
func (x *extraction) volumeOptionFacts(driver string, opts map[string]string) error {
	if driver != "" && driver != "local" {
		x.add("volume-driver", driver)
		return nil
	}
	if len(opts) == 0 {
		return nil
	}
	typ, o, device := opts["type"], opts["o"], opts["device"]
	flags := strings.Split(o, ",")
	bind := typ == "none" || typ == "bind" || typ == "rbind"
	for _, f := range flags {
		switch strings.TrimSpace(f) {
		case "bind", "rbind":
			bind = true
		}
	}
	if device != "" {
		dev := device
		// mount(2) reads a relative source from dockerd's working
		// directory, /.
		if !path.IsAbs(dev) && (bind || strings.HasPrefix(dev, "dev/")) {
			dev = "/" + dev
		}
		if bind {
			if err := x.addHostPath("bind", dev); err != nil {
				return err
			}
		}
		if p := path.Clean(dev); p == "/dev" || strings.HasPrefix(p, "/dev/") {
			if err := x.addHostPath("device", dev); err != nil {
				return err
			}
		}
	}
	switch typ {
	case "", "none", "bind", "rbind":
	default:
		x.add("volume-option", "type="+typ)
	}
	// overlay takes host directories in its options.
	for _, f := range flags {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			continue
		}
		switch k {
		case "lowerdir", "upperdir", "workdir", "lowerdir+", "datadir+":
			for _, d := range strings.Split(v, ":") {
				if d == "" {
					continue
				}
				if !path.IsAbs(d) {
					d = "/" + d
				}
				if err := x.addHostPath("bind", d); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
