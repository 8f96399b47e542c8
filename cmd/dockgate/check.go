package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/dockgate/dockgate/authz/policy"
)

// check is "dockgate check [--policy DIR]": it loads the policy as serve
// would and says "ok: N rules, M roles, sha256:…" after the policy's
// signature keys (name, algorithm, fingerprint), or prints every problem
// as FILE:LINE: MESSAGE and exits 1. Without --policy it checks the
// embedded default policy. A policy that loads but whose signature rows
// and keys do not go together (rows without keys, keys without rows) is a
// warning: it serves, and refuses what it cannot verify.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", defaultConfigPath, "config file to validate, with the policy it names (default: "+defaultConfigPath+" if it exists)")
	fs.String("policy", "", "policy directory (default: the config's, else the embedded default policy)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dockgate check [--config FILE] [--policy DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dockgate check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	// The config is read exactly as serve reads it; --policy overrides
	// the config's policy as it would on the serve command line.
	o, err := parseServe(serveArgsOf(fs, "config", "policy"), io.Discard)
	if err == nil {
		err = validateServe(o)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\ndockgate check: config not valid\n", err)
		return 1
	}
	p, err := loadPolicy(o.policy)
	if err != nil {
		printPolicyError(stderr, "check", err)
		return 1
	}
	if o.config != "" {
		fmt.Fprintf(stdout, "ok: config %s\n", o.config)
	}
	if o.policy != "" {
		// Policy tests beside the policy are checked as files (they are
		// run by dockgate policy test).
		if _, err := readPolicyTests(o.policy); err != nil {
			fmt.Fprintf(stderr, "%v\ndockgate check: policy tests not valid\n", err)
			return 1
		}
	}
	// Warnings do not fail the check: the policy loads and serves.
	printTenantWarnings(stderr, p)
	for _, w := range signatureWarnings(p.VerifiesSignatures, p.Keys) {
		fmt.Fprintln(stderr, w)
	}
	// The keys, for comparing with the ones the release pipeline signs with.
	for _, k := range p.Keys.Keys() {
		fmt.Fprintf(stdout, "key: %s (%s) %s\n", k.Name, k.Algorithm, k.Fingerprint)
	}
	fmt.Fprintf(stdout, "ok: %s\n", p.Describe())
	return 0
}

// loadPolicy loads --policy DIR, or the embedded default when dir is "".
func loadPolicy(dir string) (*policy.Policy, error) {
	if dir == "" {
		return policy.Default()
	}
	return policy.LoadDir(dir)
}

// printPolicyError prints each problem on a line of its own, FILE:LINE
// first so that editors can jump to it, then how many there were.
func printPolicyError(w io.Writer, cmd string, err error) {
	var pes policy.Errors
	if !errors.As(err, &pes) {
		fmt.Fprintf(w, "dockgate %s: %v\n", cmd, err)
		return
	}
	for _, pe := range pes {
		fmt.Fprintln(w, pe.Error())
	}
	noun := "problem"
	if len(pes) != 1 {
		noun = "problems"
	}
	fmt.Fprintf(w, "dockgate %s: policy not loaded: %d %s\n", cmd, len(pes), noun)
}
