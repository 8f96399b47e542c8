package authz

import (
	"context"
	"strconv"

	"github.com/docker/docker/api/types/swarm"

	"github.com/dockgate/dockgate/authz/internal/strictjson"
)

// ServiceInspector is implemented by Inspectors that can read a swarm
// service's previous spec. service.update with rollback=previous puts that
// spec in force instead of the one in the body (swarmkit's UpdateService),
// so it is what must be judged.
type ServiceInspector interface {
	// ServicePreviousSpec returns the spec the service would roll back
	// to: found is false when the service does not exist, spec is nil
	// when it has no previous spec.
	ServicePreviousSpec(ctx context.Context, id string) (spec *swarm.ServiceSpec, found bool, err error)
}

// serviceCreateFacts: POST /services/create (swarm.ServiceSpec).
func serviceCreateFacts(x *extraction) error {
	body, err := x.requireJSONBody()
	if err != nil {
		return err
	}
	var spec swarm.ServiceSpec
	if err := decodeStrictJSON(body, &spec, strictjson.Options{}); err != nil {
		return err
	}
	// Only the spec the client sends: a rollback's previous spec is
	// dockerd's.
	if err := checkOwnerLabels("service Labels", spec.Labels); err != nil {
		return err
	}
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		if err := checkOwnerLabels("service container spec Labels", cs.Labels); err != nil {
			return err
		}
	}
	return x.serviceSpecFacts(&spec)
}

// serviceUpdateFacts: POST /services/{id}/update (swarm.ServiceSpec), and
// with rollback=previous the spec it rolls back to.
func serviceUpdateFacts(x *extraction) error {
	if err := serviceCreateFacts(x); err != nil {
		return err
	}
	rollback, err := x.formValue("rollback")
	if err != nil || rollback != "previous" {
		return err
	}
	id := x.m.Vars["id"]
	si, ok := x.in.(ServiceInspector)
	if !ok {
		return badBody("service.update: cannot judge a rollback to a spec dockgate cannot read")
	}
	if !validObjectName(id) {
		return badBody("invalid service name %q", id)
	}
	prev, found, err := si.ServicePreviousSpec(x.ctx, id)
	if err != nil {
		return upstreamError("service "+id, err)
	}
	if !found {
		return badBody("service.update: no such service %q", id)
	}
	if prev == nil {
		return nil
	}
	return x.serviceSpecFacts(prev)
}

// serviceSpecFacts reads what a service's tasks would do on the swarm's
// nodes: the container spec (image, privileges, capabilities, sysctls,
// mounts), a plugin spec's privileges, networks, published ports and the
// log driver. Host paths are resolved on this node.
func (x *extraction) serviceSpecFacts(spec *swarm.ServiceSpec) error {
	tt := &spec.TaskTemplate
	if cs := tt.ContainerSpec; cs != nil {
		if err := x.containerSpecFacts(cs); err != nil {
			return err
		}
	}
	if ps := tt.PluginSpec; ps != nil {
		if ps.Remote != "" {
			if err := x.addPluginRef(ps.Remote); err != nil {
				return err
			}
		}
		for _, p := range ps.Privileges {
			if p == nil {
				continue
			}
			if err := x.pluginPrivilegeFacts(p.Name, p.Value); err != nil {
				return err
			}
		}
	}
	nets := append(append([]swarm.NetworkAttachmentConfig(nil), tt.Networks...), spec.Networks...)
	for _, n := range nets {
		if n.Target == "host" {
			x.add("namespace", "network=host")
		}
		if v, ok := n.DriverOpts[endpointSysctlsOpt]; ok {
			x.addEndpointSysctls(v)
		}
	}
	if ld := tt.LogDriver; ld != nil {
		switch ld.Name {
		case "", "json-file", "local":
		default:
			x.add("log-driver", ld.Name)
		}
	}
	if es := spec.EndpointSpec; es != nil {
		for _, p := range es.Ports {
			if p.PublishedPort > 0 && p.PublishedPort < 1024 {
				x.add("port", strconv.FormatUint(uint64(p.PublishedPort), 10))
			}
		}
	}
	return nil
}

func (x *extraction) containerSpecFacts(cs *swarm.ContainerSpec) error {
	if cs.Image == "" {
		return badBody("service: container spec without an image")
	}
	if err := x.addImageRun(cs.Image); err != nil {
		return err
	}
	if p := cs.Privileges; p != nil {
		if se := p.SELinuxContext; se != nil {
			if se.Disable {
				x.add("security-opt", "label=disable")
			}
			for _, l := range []struct{ k, v string }{{"user", se.User}, {"role", se.Role}, {"type", se.Type}, {"level", se.Level}} {
				if l.v != "" {
					x.add("security-opt", "label="+l.k+":"+l.v)
				}
			}
		}
		if sc := p.Seccomp; sc != nil {
			switch sc.Mode {
			case "", swarm.SeccompModeDefault:
			case swarm.SeccompModeUnconfined:
				x.add("security-opt", "seccomp=unconfined")
			case swarm.SeccompModeCustom:
				x.add("security-opt", "seccomp=custom")
			default:
				return badBody("service: unknown seccomp mode %q", sc.Mode)
			}
		}
		if aa := p.AppArmor; aa != nil {
			switch aa.Mode {
			case "", swarm.AppArmorModeDefault:
			case swarm.AppArmorModeDisabled:
				x.add("security-opt", "apparmor=unconfined")
			default:
				return badBody("service: unknown AppArmor mode %q", aa.Mode)
			}
		}
	}
	x.capabilityFacts(cs.CapabilityAdd)
	for _, k := range sortedKeys(cs.Sysctls) {
		x.add("sysctl", k+"="+cs.Sysctls[k])
	}
	if err := x.mountsFacts(cs.Mounts); err != nil {
		return err
	}
	if cs.OomScoreAdj < 0 {
		x.add("resource", "oom-score-adj="+strconv.FormatInt(cs.OomScoreAdj, 10))
	}
	return nil
}
