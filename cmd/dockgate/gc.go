package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dockgate/dockgate/internal/dockerd"
	"github.com/dockgate/dockgate/proxy"
	"github.com/dockgate/dockgate/tenancy"
)

const gcUsage = `usage: dockgate gc [--config FILE] [--upstream URL] (--owner SUBJECT | --expired) [--older-than DURATION] [--dry-run]

Removes what tenants left behind: containers (forced, with their
anonymous volumes), then networks, then volumes, so that the containers no
longer hold the networks and volumes.

  --owner SUBJECT   everything labelled io.dockgate.owner=SUBJECT
                    (uid:, user:, unit:, container: or cert: subject)
  --expired         everything with an owner whose io.dockgate.expires
                    label is in the past (an unparseable one is reported
                    and left alone)
  --older-than D    only what was created longer ago than D (e.g. 2h)
  --dry-run         list what would be removed, remove nothing

One line per object, then a summary. Exit 0, 1 if anything could not be
listed or removed (a network another tenant's container still uses, say),
2 on a usage error.
`

// newGCClient is the client of the upstream dockerd for "dockgate gc",
// which reads the upstream as serve does.
func newGCClient(upstream string) (*dockerd.Client, error) {
	up, err := proxy.ParseUpstream(upstream)
	if err != nil {
		return nil, err
	}
	return dockerd.New(up.URL)
}

// gcCmd is "dockgate gc".
func gcCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, gcUsage)
		fs.PrintDefaults()
	}
	fs.String("config", defaultConfigPath, "config file whose upstream is used (default: "+defaultConfigPath+" if it exists)")
	fs.String("upstream", "", "dockerd's socket: unix:///path or tcp://host:port (default: the config's, else unix:///var/run/docker.sock)")
	var o tenancy.Options
	fs.StringVar(&o.Owner, "owner", "", "remove what this subject owns")
	fs.BoolVar(&o.Expired, "expired", false, "remove what expired")
	fs.DurationVar(&o.OlderThan, "older-than", 0, "only what was created longer ago than this")
	fs.BoolVar(&o.DryRun, "dry-run", false, "list what would be removed, remove nothing")
	usageErr := func(err error) int {
		fmt.Fprintf(stderr, "dockgate gc: %v\n%s\n", err, strings.SplitN(gcUsage, "\n\n", 2)[0])
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usageErr(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	case o.Owner == "" && !o.Expired:
		return usageErr(errors.New("want --owner SUBJECT or --expired"))
	case o.Owner != "" && o.Expired:
		return usageErr(errors.New("--owner and --expired select differently; give one"))
	case o.OlderThan < 0:
		return usageErr(fmt.Errorf("--older-than %v: want a duration of zero or more", o.OlderThan))
	}
	if o.Owner != "" {
		if err := tenancy.CheckOwner(o.Owner); err != nil {
			return usageErr(fmt.Errorf("--owner %w", err))
		}
	}
	// The upstream is read as serve reads it, so that gc cleans the
	// dockerd that dockgate fronts.
	so, err := parseServe(serveArgsOf(fs, "config", "upstream"), io.Discard)
	if err != nil {
		fmt.Fprintf(stderr, "dockgate gc: %v\n", err)
		return 2
	}
	c, err := newGCClient(so.upstream)
	if err != nil {
		fmt.Fprintf(stderr, "dockgate gc: %v\n", err)
		return 2
	}
	defer c.Close()
	o.Now = time.Now()
	r := tenancy.Run(context.Background(), c, o)
	for _, res := range r.Results {
		fmt.Fprintln(stdout, res.Line())
	}
	for _, err := range r.Errs {
		fmt.Fprintf(stderr, "dockgate gc: %s: %v\n", so.upstream, err)
	}
	fmt.Fprintln(stdout, r.Summary(o.DryRun))
	if r.Failed() {
		return 1
	}
	return 0
}
