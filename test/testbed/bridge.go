package testbed

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// AddBridge creates the Linux bridge name with the address cidr, up, for
// a dockerd's default bridge network (StartEngineOnBridge), and returns
// what removes it. The beds' own dockerds have none (--bridge none): no
// docker0 is shared with other daemons, and with --iptables=false no
// firewall rule is made either way.
func AddBridge(ctx context.Context, name, cidr string) (remove func() error, err error) {
	ip := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("link", "add", "name", name, "type", "bridge"); err != nil {
		return nil, err
	}
	remove = func() error {
		out, err := exec.Command("ip", "link", "delete", name).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip link delete %s: %v: %s", name, err, out)
		}
		return nil
	}
	for _, args := range [][]string{{"addr", "add", cidr, "dev", name}, {"link", "set", name, "up"}} {
		if err := ip(args...); err != nil {
			remove()
			return nil, err
		}
	}
	return remove, nil
}
