// Package policygen writes large policies for the benchmarks of deciding
// and loading: the same shape at every size.
package policygen

import (
	"fmt"
	"strings"
)

// Site generates a policy of n p rows shaped like a large site's: many
// roles and users (g rows beside the n), literal image rows, path rows, a
// few deny rows. Role team<r> is given to group:team<r> and user:dev<r>;
// every tenth team role is in role:ci.
func Site(n int) string {
	var b strings.Builder
	b.WriteString("p, uid:0, *, **, allow\n")
	rows := 1
	for r := 0; rows < n; r++ {
		role := fmt.Sprintf("role:team%d", r)
		fmt.Fprintf(&b, "g, group:team%d, %s\n", r, role)
		fmt.Fprintf(&b, "g, user:dev%d, %s\n", r, role)
		if r%10 == 0 {
			fmt.Fprintf(&b, "g, %s, role:ci\n", role)
		}
		lines := []string{
			fmt.Sprintf("p, %s, endpoint, container.*, allow", role),
			fmt.Sprintf("p, %s, endpoint, image.*, allow", role),
			fmt.Sprintf("p, %s, endpoint, plugin.*, deny", role),
			fmt.Sprintf("p, %s, image, registry.example.com/team%d/**, allow", role, r),
			fmt.Sprintf("p, %s, image, registry.example.com/approved/app%d:1.%d", role, r, r) + ", allow",
			fmt.Sprintf("p, %s, image, docker.io/library/app%d:*, allow", role, r),
			fmt.Sprintf("p, %s, bind, /srv/team%d/**, allow", role, r),
			fmt.Sprintf("p, %s, bind, /srv/team%d/secrets/**, deny", role, r),
			fmt.Sprintf("p, %s, capability, NET_BIND_SERVICE, allow", role),
			fmt.Sprintf("p, %s, sysctl, net.ipv4.ip_local_port_range=*, allow", role),
			fmt.Sprintf("p, user:dev%d, port, %d, allow", r, 8000+r),
			fmt.Sprintf("p, user:dev%d, log-driver, syslog, allow", r),
		}
		for _, l := range lines {
			if rows == n {
				break
			}
			b.WriteString(l + "\n")
			rows++
		}
	}
	return b.String()
}
