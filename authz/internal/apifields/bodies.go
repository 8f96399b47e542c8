package apifields

import (
	"reflect"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/checkpoint"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
)

// body is one type package authz decodes a request body into with its
// strict pass (decodeStrictJSON), and where the swagger describes that body.
type body struct {
	typ reflect.Type
	at  []swaggerAt
	// legacyTopLevel: at the top level of this body, the fields of this
	// type (and Cpuset) are not looked for: old daemons read HostConfig
	// fields there, and authz refuses them (createOptions'
	// legacyTopLevel), which a known field would bypass.
	legacyTopLevel reflect.Type
}

// swaggerAt locates a body in a swagger file: the body parameter of an
// operation, or a definition's property for a body the API takes inside
// an archive (a plugin's config.json).
type swaggerAt struct {
	method, path string
	definition   string
	properties   []string
}

func post(path string) swaggerAt { return swaggerAt{method: "POST", path: path} }

// bodies are the types of every decodeStrictJSON call in package authz
// (TestAPIFieldBodies there keeps the two in step).
var bodies = []body{
	{
		// Create, a pre-1.24 start's HostConfig, and commit's Config.
		typ:            reflect.TypeFor[container.CreateRequest](),
		at:             []swaggerAt{post("/containers/create"), post("/commit")},
		legacyTopLevel: reflect.TypeFor[container.HostConfig](),
	},
	{typ: reflect.TypeFor[container.UpdateConfig](), at: []swaggerAt{post("/containers/{id}/update")}},
	{typ: reflect.TypeFor[container.ExecOptions](), at: []swaggerAt{post("/containers/{id}/exec")}},
	// Checkpoints are experimental: no swagger describes them.
	{typ: reflect.TypeFor[checkpoint.CreateOptions]()},
	{typ: reflect.TypeFor[network.CreateRequest](), at: []swaggerAt{post("/networks/create")}},
	{typ: reflect.TypeFor[network.ConnectOptions](), at: []swaggerAt{post("/networks/{id}/connect")}},
	{typ: reflect.TypeFor[network.DisconnectOptions](), at: []swaggerAt{post("/networks/{id}/disconnect")}},
	{typ: reflect.TypeFor[volume.CreateOptions](), at: []swaggerAt{post("/volumes/create")}},
	{typ: reflect.TypeFor[types.PluginPrivileges](), at: []swaggerAt{post("/plugins/pull"), post("/plugins/{name}/upgrade")}},
	{typ: reflect.TypeFor[[]string](), at: []swaggerAt{post("/plugins/{name}/set")}},
	{typ: reflect.TypeFor[types.PluginConfig](), at: []swaggerAt{{definition: "Plugin", properties: []string{"Config"}}}},
	{typ: reflect.TypeFor[swarm.ServiceSpec](), at: []swaggerAt{post("/services/create"), post("/services/{id}/update")}},
}

// BodyTypes are the types whose fields the generator looks for.
func BodyTypes() []reflect.Type {
	var ts []reflect.Type
	for _, b := range bodies {
		ts = append(ts, b.typ)
	}
	return ts
}
