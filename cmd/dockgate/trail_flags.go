package main

import (
	"flag"
	"fmt"
	"time"
)

// trailFlags are the flags the commands that read a whole trail share
// (policy replay, policy suggest, audit drift): the period, the output
// format and what to do with a line that is not a record.
type trailFlags struct {
	start, end         *string
	startName, endName string
	format             *string
	skipBad            *bool
}

// addTrailFlags defines them on fs: the period's flags under the names
// and usages given (--from/--to, --since/--until).
func addTrailFlags(fs *flag.FlagSet, startName, startUsage, endName, endUsage, formatUsage string) *trailFlags {
	return &trailFlags{
		start: fs.String(startName, "", startUsage), startName: startName,
		end: fs.String(endName, "", endUsage), endName: endName,
		format:  fs.String("format", "text", formatUsage),
		skipBad: fs.Bool("skip-bad", false, "list lines that are not records and read on, rather than stop"),
	}
}

// read checks the format and reads the period, each time as parseWhen
// reads it relative to now; an error names the flag.
func (f *trailFlags) read(now time.Time) (start, end time.Time, err error) {
	if *f.format != "text" && *f.format != "json" {
		return start, end, fmt.Errorf("--format %q: want text or json", *f.format)
	}
	if start, err = parseWhen(*f.start, now); err != nil {
		return start, end, fmt.Errorf("--%s: %w", f.startName, err)
	}
	if end, err = parseWhen(*f.end, now); err != nil {
		return start, end, fmt.Errorf("--%s: %w", f.endName, err)
	}
	return start, end, nil
}
