package authz

import (
	"github.com/docker/docker/api/types/network"

	"github.com/dockgate/dockgate/authz/internal/strictjson"
)

// networkCreateFacts: POST /networks/create (network.CreateRequest). A
// driver other than bridge reaches the host's interfaces (macvlan, ipvlan)
// or its stack (host). Every driver option is a network-option fact: the
// bridge driver's change what the host exposes (gateway_mode_ipv4=routed
// or nat-unprotected, Engine 27/28: containers reachable from outside
// without NAT or port filtering; bridge.name of an existing host bridge;
// host_binding_ipv4; enable_ip_masquerade; trusted_host_interfaces), and a
// policy allows the harmless ones by name.
func networkCreateFacts(x *extraction) error {
	body, err := x.requireJSONBody()
	if err != nil {
		return err
	}
	var c network.CreateRequest
	if err := decodeStrictJSON(body, &c, strictjson.Options{}); err != nil {
		return err
	}
	if err := checkOwnerLabels("network create Labels", c.Labels); err != nil {
		return err
	}
	if err := x.addOwnerLabel(&c, &c.Labels); err != nil {
		return err
	}
	if c.Driver != "" && c.Driver != "bridge" {
		x.add("network-driver", c.Driver)
	}
	for _, k := range sortedKeys(c.Options) {
		x.add("network-option", k+"="+c.Options[k])
	}
	return nil
}

// networkConnectFacts: POST /networks/{id}/connect (network.ConnectOptions).
// Joining the host network is the host's network namespace; the endpoint
// may carry sysctls.
func networkConnectFacts(x *extraction) error {
	body, err := x.requireJSONBody()
	if err != nil {
		return err
	}
	var c network.ConnectOptions
	if err := decodeStrictJSON(body, &c, strictjson.Options{}); err != nil {
		return err
	}
	if x.m.Vars["id"] == "host" {
		x.add("namespace", "network=host")
	}
	x.endpointSettingsFacts(c.EndpointConfig)
	return x.pinConnectContainer(&c, &c.Container)
}

// networkDisconnectFacts: POST /networks/{id}/disconnect
// (network.DisconnectOptions): whose container leaves the network.
func networkDisconnectFacts(x *extraction) error {
	body, err := x.requireJSONBody()
	if err != nil {
		return err
	}
	var c network.DisconnectOptions
	if err := decodeStrictJSON(body, &c, strictjson.Options{}); err != nil {
		return err
	}
	return x.pinConnectContainer(&c, &c.Container)
}

// pinConnectContainer adds the owner fact of the container a tenant's
// network connect or disconnect names, and forwards the body v with the
// container's full ID.
func (x *extraction) pinConnectContainer(v any, name *string) error {
	if *name == "" {
		return nil
	}
	id, err := x.containerRef("network "+x.m.Vars["id"]+" container", *name)
	if err != nil || id == "" {
		return err
	}
	*name = id
	return x.reencode(v)
}
