// Package policies embeds dockgate's casbin model and its policies: the
// default policy used when serve has no --policy, and the examples.
package policies

import "embed"

// Model is the default casbin model (model.conf), used by every policy
// directory that has no model.conf of its own.
//
//go:embed model.conf
var Model string

// FS holds the policy directories: default/, ci/, read-only-monitoring/.
//
//go:embed default ci read-only-monitoring
var FS embed.FS

// Default is the directory in FS of the policy used when --policy is absent.
const Default = "default"
