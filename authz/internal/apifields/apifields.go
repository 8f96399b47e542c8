// Package apifields generates authz's table of the fields that Engine API
// versions 1.24 to the newest define on the request bodies dockgate judges
// and its SDK types (docker/docker v28, API 1.51) lack, from the API's
// swagger history, so that the strict pass refuses only fields no version
// knows, and only fields reviewed as harmless (decisions.go) pass.
//
// It reads the swagger files of the github.com/moby/moby/api module, which
// dockgate does not import: run
//
//	go run ./authz/internal/apifields/gen
//
// from the module root (it downloads the module when the cache lacks it).
package apifields

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// APIModule is the moby/moby/api release whose docs/ hold the swagger
// history read; a newer API version is a newer release here.
const APIModule = "github.com/moby/moby/api@v1.56.0"

// ErrNoSwagger: the module cache lacks APIModule.
var ErrNoSwagger = errors.New("the swagger files are not in the module cache (go mod download " + APIModule + ")")

// APIDir is APIModule's directory in the module cache.
func APIDir() (string, error) {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		out, err := exec.Command("go", "env", "GOMODCACHE").Output()
		if err != nil {
			return "", fmt.Errorf("go env GOMODCACHE: %w", err)
		}
		cache = strings.TrimSpace(string(out))
	}
	path, version, _ := strings.Cut(APIModule, "@")
	dir := filepath.Join(cache, filepath.FromSlash(path)+"@"+version)
	if _, err := os.Stat(filepath.Join(dir, "docs", "v1.24.md")); err != nil {
		return dir, ErrNoSwagger
	}
	return dir, nil
}

// decidedField is a field of a body that some API version defines and the
// SDK type lacks, with what was decided about it.
type decidedField struct {
	*found
	harmless bool
	why      string
}

// find walks every body in every API version of dir (APIDir) and returns
// what the SDK types lack, each with its decision, and the newest version.
// An error names every field that has no decision, and every decision
// that names no field found.
func find(dir string) ([]decidedField, apiVersion, error) {
	g := newFinder()
	if err := g.walkAPI124(dir); err != nil {
		return nil, 0, err
	}
	docs, err := loadSwagger(dir)
	if err != nil {
		return nil, 0, err
	}
	for _, b := range bodies {
		for _, at := range b.at {
			anywhere := false
			for _, d := range docs {
				s := d.bodySchema(at)
				if s == nil {
					continue
				}
				anywhere = true
				g.walkSwagger(d, b.typ, s, b.legacyTopLevel, typeName(b.typ), make(map[visit]bool))
			}
			if !anywhere {
				return nil, 0, fmt.Errorf("%s: no swagger version has a body at %v", typeName(b.typ), at)
			}
		}
	}
	if g.err != nil {
		return nil, 0, g.err
	}
	fields, err := decide(g.sorted())
	return fields, docs[len(docs)-1].version, err
}

// Generate returns strictjson's apifields_gen.go for the swagger history in dir.
func Generate(dir string) ([]byte, error) {
	fields, newest, err := find(dir)
	if err != nil {
		return nil, err
	}
	return render(fields, newest)
}
