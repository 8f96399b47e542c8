package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/suggest"
)

const policySuggestUsage = `usage:
  dockgate policy suggest [--out DIR] [--from T] [--to T] [--subject S] [--policy DIR]
                          [--format text|json] [--skip-bad] [--config FILE] [TRAIL...]

suggest reads an audit trail (of --mode audit or enforce) and writes the
smallest rows that would have allowed what each caller did: under a role
of --policy (the policy the trail was recorded under) when the caller has
one, else under its user:, unit:, container: or cert: subject (uid: when
it has no name). Endpoints are grouped as RESOURCE.* where every action of
the resource was used, images by repository and by namespace, binds by
their deepest common directory that is not root on the host; tenant and
owner rows when the trail shows owner facts. Each row has a comment saying
how many requests it covers and the first of them. A row that is root on
the host (privileged, host namespaces, binds of /, /etc, dockerd's
socket, …) or lets a tenant touch others' objects is written commented
out, with why: uncomment it only deliberately. With --out DIR (a new or
empty directory) it writes DIR/suggested.csv, loaded back as serve would
load it, and DIR/suggested_test.yaml (cases from the trail for dockgate
policy test); without, the policy to stdout. Exit status 0, or 2 for
usage, an unreadable trail or a line that is not a record (--skip-bad
lists it and reads on).
`

func policySuggest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy suggest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policySuggestUsage) }
	out := fs.String("out", "", "write the suggested policy directory here (new or empty)")
	current := fs.String("policy", "", "the policy the trail was recorded under: its roles name the rows")
	fs.String("config", defaultConfigPath, "config file whose --audit-log is the trail when no TRAIL is given")
	tf := addTrailFlags(fs, "from", "records at or after this time", "to", "records before this time", "text or json (the summary with --out; the rows without)")
	subject := fs.String("subject", "", "only the requests of callers with this subject")
	trail, err := parsePositional(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "dockgate policy suggest: "+format+"\n", a...)
		return 2
	}
	opt := suggest.Options{Subject: *subject, SkipBad: *tf.skipBad}
	if opt.From, opt.To, err = tf.read(time.Now()); err != nil {
		return fail("%v", err)
	}
	if len(trail) == 0 {
		if trail, err = configuredTrail(fs); err != nil {
			return fail("%v", err)
		}
	}
	if *current != "" {
		if opt.Current, err = loadPolicy(*current); err != nil {
			printPolicyError(stderr, "policy suggest", err)
			return 2
		}
	}
	s, err := suggest.Trail(trail, opt)
	if err != nil {
		var bad audit.BadLine
		if errors.As(err, &bad) {
			return fail("%v (rows learned without that line could miss what it did: --skip-bad reads on past it)", err)
		}
		return fail("%v", err)
	}
	source := strings.Join(trail, " ")
	w := bufio.NewWriter(stdout)
	switch {
	case *out == "" && *tf.format == "json":
		err = writeJSON(w, s)
	case *out == "":
		err = s.WritePolicy(w, source)
	default:
		var wr *suggest.Written
		if wr, err = s.WriteDir(*out, source); err != nil {
			return fail("%v", err)
		}
		if *tf.format == "json" {
			err = writeJSON(w, s)
		} else {
			writeSuggestSummary(w, s, wr, *out, trail)
		}
	}
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fail("%v", err)
	}
	return 0
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeSuggestSummary says what was written and what to do next.
func writeSuggestSummary(w io.Writer, s *suggest.Suggestion, wr *suggest.Written, dir string, trail []string) {
	rows, commented := 0, 0
	for _, p := range s.Principals {
		for _, r := range p.Rows {
			rows++
			if r.Danger != "" {
				commented++
			}
		}
	}
	fmt.Fprintf(w, "read %d requests; learned from %d (forwarded and answered below 400)\n", s.Requests, s.Learned)
	whys := make([]string, 0, len(s.Skipped))
	for why := range s.Skipped {
		whys = append(whys, why)
	}
	slices.Sort(whys)
	for _, why := range whys {
		fmt.Fprintf(w, "  %d taught no row: %s\n", s.Skipped[why], why)
	}
	for _, b := range s.BadLines {
		fmt.Fprintf(w, "  skipped %s\n", b.Error())
	}
	fmt.Fprintf(w, "wrote %s/%s: %d rows for %d callers", dir, suggest.PolicyFile, rows, len(s.Principals))
	if commented > 0 {
		fmt.Fprintf(w, ", %d of them commented out (root on the host, or others' objects): review them", commented)
	}
	fmt.Fprintf(w, "\nloads: %s\n", wr.Policy.Describe())
	if wr.Tests != "" {
		fmt.Fprintf(w, "wrote %s: %d cases from the trail\n", wr.Tests, wr.Cases)
	}
	fmt.Fprintf(w, "next: review the rows, then\n  dockgate policy test %s\n  dockgate policy replay --policy %s %s\n", dir, dir, strings.Join(trail, " "))
}
