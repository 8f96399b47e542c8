package dockerd

import (
	"context"
	"sync"
	"time"
)

// Daemon is what dockerd says of itself that the meaning of a request
// depends on: a setting sent back as dockerd would choose it anyway is no
// change (a container's own inspect, sent back by an updater, say).
type Daemon struct {
	// CgroupVersion is "1" or "2": on a cgroup v1 host every container
	// shares the host's cgroup namespace unless told otherwise.
	CgroupVersion string
	// Version is dockerd's version, "20.10.24+dfsg1", "29.8.0": its
	// default masked paths grew over the releases.
	Version string
}

// daemonTTL is how long what dockerd says of itself is kept: it changes
// only when dockerd is replaced.
const daemonTTL = time.Minute

// daemonCache keeps dockerd's answer to Info.
type daemonCache struct {
	mu   sync.Mutex
	at   time.Time
	info Daemon
}

// Daemon returns what dockerd says of itself, asked at most once a minute.
func (d *Client) Daemon(ctx context.Context) (Daemon, error) {
	d.daemon.mu.Lock()
	defer d.daemon.mu.Unlock()
	if !d.daemon.at.IsZero() && time.Since(d.daemon.at) < daemonTTL {
		return d.daemon.info, nil
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var info Daemon
	err := d.ask(ctx, func(ctx context.Context) error {
		i, err := d.sdk.Info(ctx)
		info = Daemon{CgroupVersion: i.CgroupVersion, Version: i.ServerVersion}
		return err
	})
	if err != nil {
		return Daemon{}, answered(err)
	}
	d.daemon.info, d.daemon.at = info, time.Now()
	return info, nil
}
