package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"

	"github.com/dockgate/dockgate/policytest"
)

// policyTest is "dockgate policy test [-v] [--run REGEXP] [DIR...]": the
// policy tests of each policy directory, run against it. Exit status: 0
// every case passes, 1 a case fails, 2 a malformed test file or policy,
// or a directory without tests.
func policyTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage) }
	verbose := fs.Bool("v", false, "print every case, not only the failures")
	run := fs.String("run", "", "only the cases whose name matches this regular expression")
	dirs, err := parsePositional(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var only *regexp.Regexp
	if *run != "" {
		if only, err = regexp.Compile(*run); err != nil {
			fmt.Fprintf(stderr, "dockgate policy test: --run: %v\n", err)
			return 2
		}
	}
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	code := 0
	for _, dir := range dirs {
		code = max(code, testPolicyDir(dir, only, *verbose, stdout, stderr))
	}
	return code
}

func testPolicyDir(dir string, only *regexp.Regexp, verbose bool, stdout, stderr io.Writer) int {
	files, err := readPolicyTests(dir)
	if err != nil {
		fmt.Fprintf(stderr, "dockgate policy test: %v\n", err)
		return 2
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "dockgate policy test: %s: no test files (*_test.yaml, tests/*.yaml)\n", dir)
		return 2
	}
	p, err := loadPolicy(dir)
	if err != nil {
		printPolicyError(stderr, "policy test", err)
		return 2
	}
	if only != nil {
		for _, f := range files {
			var keep []*policytest.Case
			for _, c := range f.Cases {
				if only.MatchString(c.Name) {
					keep = append(keep, c)
				}
			}
			f.Cases = keep
		}
	}
	results, err := policytest.Run(context.Background(), p, files)
	if err != nil {
		fmt.Fprintf(stderr, "dockgate policy test: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "=== %s\n", dir)
	if policytest.Print(stdout, results, verbose) > 0 {
		return 1
	}
	return 0
}

// readPolicyTests reads and checks the test files of a policy directory.
func readPolicyTests(dir string) ([]*policytest.File, error) {
	paths, err := policytest.FindFiles(dir)
	if err != nil {
		return nil, err
	}
	var files []*policytest.File
	for _, p := range paths {
		f, err := policytest.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}
