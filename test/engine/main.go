// Command engine builds the current Engine the end-to-end tests run
// against (test/testbed.CurrentEngine) into its cache dir, unless a build
// of the same versions is there: `make engine`. The tests build it
// themselves when it is missing; CI builds it first so that the build's
// minutes do not count against the tests' timeout.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dockgate/dockgate/test/testbed"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := testbed.BuildEngine(ctx, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine:", err)
		os.Exit(1)
	}
	fmt.Printf("Engine %s in %s\n", testbed.CurrentEngine.Version, dir)
}
