package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/replay"
)

const policyUsage = `usage:
  dockgate policy replay --policy DIR [--from T] [--to T] [--subject S] [--format text|json]
                         [--limit N] [--skip-bad] [--config FILE] [TRAIL...]
  dockgate policy test   [-v] [--run REGEXP] [DIR...]

replay judges every request of an audit trail again under the candidate
policy DIR and reports the requests it would newly refuse (caller, method,
path, action, the fact it refuses and its rule), those it would newly
allow, those the trail does not say enough about (not replayable, by why),
and the changes by caller and by rule. TRAIL is audit files, oldest first
(gzip-compressed rotated files are read as they are; - is stdin); without
one, the --audit-log of the config file (with its rotated files) when it
is a file. --from and --to take what audit query's --since and --until
take. Exit status: 1 when a request that succeeded in the trail (forwarded
to dockerd, in enforce or audit mode, and answered below 400) would be
refused or cannot be replayed; 0 otherwise; 2 for usage, a policy that
does not load, or an unreadable trail. A line of the trail that is not a
record stops the replay (exit 2, with its file and line) unless
--skip-bad, which lists it and reads on.

test runs the policy tests of each policy DIR (default: .): every
*_test.yaml file in DIR and in DIR/tests. Each case is judged as serve and
explain judge it. It prints PASS or FAIL per case (-v: every case, else
the failures) and a summary; exit status 1 when a case fails, 2 when a
test file or the policy is malformed (FILE:LINE: why).
`

// policyCmd is "dockgate policy replay|test".
func policyCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return 2
	}
	switch args[0] {
	case "suggest":
		return policySuggest(args[1:], stdout, stderr)
	case "replay":
		return policyReplay(args[1:], stdout, stderr)
	case "test":
		return policyTest(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, policySuggestUsage+"\n"+policyUsage)
		return 0
	}
	fmt.Fprintf(stderr, "dockgate policy: unknown command %q\n%s", args[0], policyUsage)
	return 2
}

func policyReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage) }
	dir := fs.String("policy", "", "the candidate policy directory")
	fs.String("config", defaultConfigPath, "config file whose --audit-log is the trail when no TRAIL is given")
	tf := addTrailFlags(fs, "from", "records at or after this time", "to", "records before this time", "text or json")
	subject := fs.String("subject", "", "only the requests of callers with this subject")
	limit := fs.Int("limit", 100, "requests listed per list in text (0: all)")
	trail, err := parsePositional(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "dockgate policy replay: "+format+"\n", a...)
		return 2
	}
	if *dir == "" {
		return fail("--policy DIR (the candidate) is required")
	}
	opt := replay.Options{Subject: *subject, SkipBad: *tf.skipBad}
	if opt.From, opt.To, err = tf.read(time.Now()); err != nil {
		return fail("%v", err)
	}
	if len(trail) == 0 {
		if trail, err = configuredTrail(fs); err != nil {
			return fail("%v", err)
		}
	}
	p, err := loadPolicy(*dir)
	if err != nil {
		printPolicyError(stderr, "policy replay", err)
		return 2
	}
	rep, err := replay.Trail(p, trail, opt)
	if err != nil {
		var bad audit.BadLine
		if errors.As(err, &bad) {
			return fail("%v (a line that is not a record could be a request that succeeded: --skip-bad reads on past it)", err)
		}
		return fail("%v", err)
	}
	out := bufio.NewWriter(stdout)
	if *tf.format == "json" {
		err = rep.WriteJSON(out)
	} else {
		rep.WriteText(out, *limit)
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fail("%v", err)
	}
	if rep.Fails() {
		return 1
	}
	return 0
}

// parsePositional parses flags that may come before, between or after
// the positional arguments, and returns those.
func parsePositional(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// configuredTrail is the audit log the config file names, with its
// rotated files before it (audit.log.<UTC time>[.gz] sort oldest first).
func configuredTrail(fs *flag.FlagSet) ([]string, error) {
	o, err := parseServe(serveArgsOf(fs, "config"), io.Discard)
	if err != nil {
		return nil, err
	}
	if o.auditLog == "" || o.auditLog == "-" {
		return nil, errors.New("no TRAIL given, and the configured --audit-log is not a file")
	}
	rotated, err := filepath.Glob(o.auditLog + ".2*")
	if err != nil {
		return nil, err
	}
	slices.Sort(rotated)
	return append(rotated, o.auditLog), nil
}
