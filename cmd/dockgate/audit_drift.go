package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/drift"
)

const auditDriftUsage = `usage:
  dockgate audit drift [--upstream URL] [--since T] [--until T] [--format text|json]
                       [--timeout D] [--skip-bad] [--config FILE] TRAIL...

drift compares dockerd's own view with the audit trail TRAIL (oldest
first; gzip-compressed rotated files are read as they are; - is stdin):
dockerd's events of the period (--since, default the trail's first
record; --until, default now) and its containers, volumes and networks
created in it. An object that appeared without a request dockgate
forwarded (a container or exec whose ID no create on record answered, an
image pulled, loaded, imported, tagged or committed, a volume or network
created, while no such request was under way) is drift: somebody used
dockerd's socket. Each is listed with its time and what dockerd says of
it (the event's attributes: image, name, labels). Execs into running
containers, privileged containers and containers started with host binds
are listed as runtime events, each with whether dockgate allowed it and
for whom. dockerd keeps its last 256 events only: containers, volumes and
networks are also found by their create time; an image that came while
its events are gone is not. --upstream is dockerd's socket (default: the
config's upstream). Exit status 1 when there is drift, 0 when there is
none, 2 for usage, an unreadable trail or dockerd unreachable.
`

func auditDrift(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit drift", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditDriftUsage) }
	fs.String("config", defaultConfigPath, "config file whose upstream is dockerd's socket when --upstream is not given")
	fs.String("upstream", "", "dockerd's socket: unix:///path or tcp://host:port")
	tf := addTrailFlags(fs, "since", "start of the period (default: the trail's first record)", "until", "end of the period (default: now)", "text or json")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up on dockerd after this long")
	trail, err := parsePositional(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "dockgate audit drift: "+format+"\n", a...)
		return 2
	}
	if len(trail) == 0 {
		return fail("TRAIL: the audit files to compare with dockerd")
	}
	// The upstream is read as serve reads it: the config's, unless the
	// flag overrides it.
	o, err := parseServe(serveArgsOf(fs, "config", "upstream"), io.Discard)
	if err != nil {
		return fail("%v", err)
	}
	opt := drift.Options{Upstream: o.upstream, SkipBad: *tf.skipBad}
	if opt.Since, opt.Until, err = tf.read(time.Now()); err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rep, err := drift.Run(ctx, opt, trail)
	if err != nil {
		var bad audit.BadLine
		if errors.As(err, &bad) {
			return fail("%v (a line that is not a record could be the request that explains an object: --skip-bad reads on past it)", err)
		}
		return fail("%v", err)
	}
	w := bufio.NewWriter(stdout)
	if *tf.format == "json" {
		err = rep.WriteJSON(w)
	} else {
		rep.WriteText(w)
	}
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fail("%v", err)
	}
	if rep.Found() {
		return 1
	}
	return 0
}
