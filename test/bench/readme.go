package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// The README's performance table lives between these markers; -readme
// rewrites what is between them with the run's table, and nothing else.
const (
	readmeBegin = "<!-- bench:begin -->"
	readmeEnd   = "<!-- bench:end -->"
)

// rewriteBlock replaces what doc holds between the markers with block.
// The markers must each be there once, begin before end: a README whose
// block cannot be found is left alone rather than appended to.
func rewriteBlock(doc, block string) (string, error) {
	if strings.Count(doc, readmeBegin) != 1 || strings.Count(doc, readmeEnd) != 1 {
		return "", fmt.Errorf("want one %s and one %s", readmeBegin, readmeEnd)
	}
	begin := strings.Index(doc, readmeBegin) + len(readmeBegin)
	end := strings.Index(doc, readmeEnd)
	if end < begin {
		return "", errors.New(readmeEnd + " comes before " + readmeBegin)
	}
	return doc[:begin] + "\n" + strings.TrimSpace(block) + "\n" + doc[end:], nil
}

// writeReadme rewrites path's bench block with the tables of runs, one
// per engine.
func writeReadme(path string, runs []results) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var b strings.Builder
	for i, res := range runs {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(markdownTable(res))
	}
	out, err := rewriteBlock(string(doc), b.String())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	// Beside it, then renamed: an interrupted write never leaves half a
	// README.
	tmp := path + ".bench-tmp"
	if err := os.WriteFile(tmp, []byte(out), fi.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
