package main

import (
	"fmt"
	"io"
	"os/user"

	"github.com/dockgate/dockgate/authz/policy"
)

// printTenantWarnings prints the policy's tenants that could create
// nothing on this host (policy.TenantWarnings).
func printTenantWarnings(w io.Writer, p *policy.Policy) {
	for _, line := range p.TenantWarnings(func(uid string) error {
		_, err := user.LookupId(uid)
		return err
	}) {
		fmt.Fprintln(w, line)
	}
}
