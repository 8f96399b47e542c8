// Command gen writes authz/internal/strictjson/apifields_gen.go from the Engine API's swagger
// history (package apifields). Run it from the module root:
//
//	go run ./authz/internal/apifields/gen
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/dockgate/dockgate/authz/internal/apifields"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "apifields:", err)
		os.Exit(1)
	}
}

func run() error {
	dir, err := apifields.APIDir()
	if errors.Is(err, apifields.ErrNoSwagger) {
		// Not a dependency of dockgate, so go mod download alone does
		// not fetch it.
		cmd := exec.Command("go", "mod", "download", apifields.APIModule)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go mod download %s: %w", apifields.APIModule, err)
		}
		dir, err = apifields.APIDir()
	}
	if err != nil {
		return err
	}
	src, err := apifields.Generate(dir)
	if err != nil {
		return err
	}
	return os.WriteFile(apifields.Output, src, 0o644)
}
