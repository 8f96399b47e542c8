package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dockgate/dockgate/audit"
)

const auditUsage = `usage:
  dockgate audit verify  [--hmac-key FILE] [--anchor SEQ:HASH] FILE...
  dockgate audit query   [filters] [--json] [--starts] [--policy] FILE...
  dockgate audit summary [filters] [--top N] FILE...

FILEs are read in the order given (oldest first); gzip-compressed (rotated)
files are read transparently, and - is stdin.

verify checks the hash chain: every record's seq follows the one before it
and its hash covers the previous hash and the record, and every segment
header (a start or restart, or the first line of a rotated file) continues
from the line before it, or the previous file's last line. It prints
"ok: N records, last seq S, last hash H" and exits 0, or prints the first
broken line as FILE:LINE: why and exits 1. Records removed from the end of
the last file leave no trace in the chain itself: note the last seq and
hash, and give them later as --anchor SEQ:HASH to prove the trail still
reaches them.

query prints the selected records as a table (time, caller, action,
decision, status, reason or denied fact; a decision marked * would have been
refused in enforce mode), or with --json the record lines as written. The
"phase":"start" record that opens a hijacked session or a long stream is
left out unless --starts is given (the record that ends it carries the
outcome; a session that never ended has only its start).

query --policy prints the policy records instead: every policy put in
force (at startup, by a reload signal, by the --policy-watch watcher) with
its hash and the rows added and removed, and every reload that failed,
with its error and the hash of the policy that stayed in force. Only
--since and --until apply to them; --json prints the lines, which list
the files read with their sha256 and the rows themselves.

summary prints per caller: requests, refusals by rule, images run (the image
facts of container.create), privileged attempts and the busiest actions,
then how many policies were put in force (by trigger), how many reloads
failed, and the hash of the last policy put in force.

filters:
  --since T, --until T   RFC 3339 time or date (2026-11-26), or a duration
                         before now (24h); since <= time < until
  --user U, --uid N      the caller's user name or uid
  --unit U               the caller's systemd unit
  --container C          the container the caller runs in (ID or prefix)
  --action GLOB          e.g. container.*, exec.*
  --decision D           allow, deny or error
  --image GLOB           an image fact, e.g. 'docker.io/library/*'
  --object ID            an object created by the request (object_id), or
                         named in its path: traces an ID to its creator
                         and to what was done with it later
  --policy               policy records instead of request records
GLOB: * is any text (/ and : included), ? is one character.
`

func auditCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	switch args[0] {
	case "verify":
		return auditVerify(args[1:], stdout, stderr)
	case "query":
		return auditQuery(args[1:], stdout, stderr)
	case "summary":
		return auditSummary(args[1:], stdout, stderr)
	case "drift":
		return auditDrift(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, auditUsage+"\n"+auditDriftUsage)
		return 0
	}
	fmt.Fprintf(stderr, "dockgate audit: unknown command %q\n%s", args[0], auditUsage)
	return 2
}

func newAuditFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("audit "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage) }
	return fs
}

// parseAuditArgs parses flags and wants at least one FILE. Flags may come
// after the files too.
func parseAuditArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) == 0 {
		return nil, errors.New("no FILE given")
	}
	return files, nil
}

func auditVerify(args []string, stdout, stderr io.Writer) int {
	fs := newAuditFlags("verify", stderr)
	keyFile := fs.String("hmac-key", "", "file holding the HMAC key the trail was written with")
	anchor := fs.String("anchor", "", "SEQ:HASH of a record the trail must still reach")
	files, err := parseAuditArgs(fs, args)
	if err != nil {
		return usageError(stderr, "verify", err)
	}
	var o audit.VerifyOptions
	if *keyFile != "" {
		if o.HMACKey, err = audit.ReadHMACKey(*keyFile); err != nil {
			fmt.Fprintf(stderr, "dockgate audit verify: %v\n", err)
			return 2
		}
	}
	if *anchor != "" {
		if o.AnchorSeq, o.AnchorHash, err = audit.ParseAnchor(*anchor); err != nil {
			return usageError(stderr, "verify", err)
		}
	}
	res, err := audit.VerifyFiles(files, o)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL: %v\n", err)
		return 1
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if res.Lost > 0 {
		fmt.Fprintf(stdout, "warning: %d records could not be written while the audit sink failed (the segment headers written on recovery say so)\n", res.Lost)
	}
	if res.StartHash != audit.GenesisHash && res.StartHash != "" {
		fmt.Fprintf(stdout, "note: the trail continues a chain from seq %d, hash %s (earlier files not given)\n", res.StartSeq, res.StartHash)
	}
	last := res.LastHash
	if last == "" {
		last = "-"
	}
	fmt.Fprintf(stdout, "ok: %d records, last seq %d, last hash %s\n", res.Records, res.LastSeq, last)
	return 0
}

// filterFlags adds the filters query and summary share.
func filterFlags(fs *flag.FlagSet) func() (audit.Filter, error) {
	since := fs.String("since", "", "records at or after this time")
	until := fs.String("until", "", "records before this time")
	user := fs.String("user", "", "caller user name")
	uid := fs.String("uid", "", "caller uid")
	unit := fs.String("unit", "", "caller systemd unit")
	container := fs.String("container", "", "the container the caller runs in")
	action := fs.String("action", "", "action glob")
	decision := fs.String("decision", "", "allow, deny or error")
	image := fs.String("image", "", "image fact glob")
	object := fs.String("object", "", "object ID (created, or named in the path)")
	policy := fs.Bool("policy", false, "the policy records (policies put in force, failed reloads) instead of the request records")
	return func() (audit.Filter, error) {
		f := audit.Filter{User: *user, Unit: *unit, Container: *container, Action: *action, Decision: *decision,
			Image: *image, Object: *object, UID: audit.AnyUID, Policy: *policy}
		if f.Policy && (*user != "" || *uid != "" || *unit != "" || *container != "" || *action != "" || *decision != "" || *image != "" || *object != "") {
			return f, errors.New("--policy selects policy records, which have no caller, action, decision, image or object: only --since and --until apply")
		}
		now := time.Now()
		var err error
		if f.Since, err = parseWhen(*since, now); err != nil {
			return f, fmt.Errorf("--since: %w", err)
		}
		if f.Until, err = parseWhen(*until, now); err != nil {
			return f, fmt.Errorf("--until: %w", err)
		}
		if *uid != "" {
			n, err := strconv.ParseUint(*uid, 10, 32)
			if err != nil {
				return f, fmt.Errorf("--uid %q: want a number", *uid)
			}
			f.UID = int64(n)
		}
		switch f.Decision {
		case "", audit.DecisionAllow, audit.DecisionDeny, audit.DecisionError:
		default:
			return f, fmt.Errorf("--decision %q: want allow, deny or error", f.Decision)
		}
		return f, nil
	}
}

// parseWhen reads an RFC 3339 time, a date, or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time, a date (2006-01-02) or a duration (24h)", s)
}

func auditQuery(args []string, stdout, stderr io.Writer) int {
	fs := newAuditFlags("query", stderr)
	filter := filterFlags(fs)
	asJSON := fs.Bool("json", false, "print the record lines as written")
	starts := fs.Bool("starts", false, `include "phase":"start" records`)
	files, err := parseAuditArgs(fs, args)
	if err != nil {
		return usageError(stderr, "query", err)
	}
	f, err := filter()
	if err != nil {
		return usageError(stderr, "query", err)
	}
	f.Starts = *starts || *asJSON
	out := bufio.NewWriterSize(stdout, 256<<10)
	if !*asJSON {
		audit.FormatHeader(out)
	}
	err = audit.Query(files, f, func(e *audit.Entry, line []byte) error {
		if *asJSON {
			out.Write(line)
			return out.WriteByte('\n')
		}
		audit.FormatRow(out, e)
		return nil
	})
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(stderr, "dockgate audit query: %v\n", err)
		return 1
	}
	return 0
}

func auditSummary(args []string, stdout, stderr io.Writer) int {
	fs := newAuditFlags("summary", stderr)
	filter := filterFlags(fs)
	top := fs.Int("top", 10, "lines per list (0: all)")
	files, err := parseAuditArgs(fs, args)
	if err != nil {
		return usageError(stderr, "summary", err)
	}
	f, err := filter()
	if err != nil {
		return usageError(stderr, "summary", err)
	}
	s, err := audit.Summarize(files, f)
	if err != nil {
		fmt.Fprintf(stderr, "dockgate audit summary: %v\n", err)
		return 1
	}
	out := bufio.NewWriter(stdout)
	s.Write(out, *top)
	out.Flush()
	return 0
}

func usageError(stderr io.Writer, cmd string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "dockgate audit %s: %v\n%s", cmd, err, strings.SplitN(auditUsage, "\n\n", 2)[0]+"\n")
	return 2
}
