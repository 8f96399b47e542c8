// Command dockgate is an authorizing proxy for the Docker daemon socket.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage:
  dockgate serve   [--config FILE] [--listen URL]... [--socket-mode 0660] [--socket-group NAME]
                   [--upstream URL] [--policy DIR] [--audit-log PATH|-] [--mode enforce|audit]
                   [--metrics-listen ADDR]   (dockgate serve -h for every flag)
  dockgate check   [--config FILE] [--policy DIR]
  dockgate explain [--policy DIR] --as SUBJECT [--as SUBJECT]... METHOD PATH [BODY_FILE|-]
  dockgate audit   verify|query|summary|drift [flags] FILE...   (dockgate audit help)
  dockgate policy  suggest [--out DIR] [flags] [TRAIL...] | replay --policy DIR [flags] [TRAIL...]
                   | test [DIR...]   (dockgate policy help)
  dockgate gc      [--config FILE] [--upstream URL] (--owner SUBJECT | --expired)
                   [--older-than DURATION] [--dry-run]
  dockgate version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "explain":
		return explain(args[1:], os.Stdin, stdout, stderr)
	case "audit":
		return auditCmd(args[1:], stdout, stderr)
	case "policy":
		return policyCmd(args[1:], stdout, stderr)
	case "gc":
		return gcCmd(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "dockgate %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "dockgate: unknown command %q\n%s", args[0], usage)
	return 2
}
