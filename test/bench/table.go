package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// tableHeader names the columns of the printed table and of the README's.
var tableHeader = []string{"metric", "unit", "against", "its value", "dockgate", "ratio or added", "target", "result"}

// tableCells is one line of cells per row: what dockgate measured, what it
// is compared with (dockerd direct unless the row names another base), and
// the verdict on its target.
func tableCells(rows []row) [][]string {
	cells := make([][]string, 0, len(rows))
	for _, r := range rows {
		against, base, vs, result := "", "", "", ""
		if r.Direct != nil {
			against, base = cmp.Or(r.Base, "direct"), num(*r.Direct)
		}
		switch {
		case r.Ratio != nil:
			vs = fmt.Sprintf("%.3f×", *r.Ratio)
		case r.Added != nil:
			vs = fmt.Sprintf("%+.1f %s", *r.Added, r.Unit)
		}
		if r.Pass != nil {
			result = map[bool]string{true: "PASS", false: "FAIL"}[*r.Pass]
		}
		if r.Error != "" {
			result = "ERROR"
		}
		cells = append(cells, []string{r.Name, r.Unit, against, base, num(r.Dockgate), vs, r.Target, result})
	}
	return cells
}

// machine is the line that says what was measured where.
func machine(res results) string {
	mode := ""
	if res.Quick {
		mode = ", a -quick run"
	}
	return fmt.Sprintf("dockgate %s (%s) vs dockerd %s (API %s, engine %s) — %s, %d CPUs (%s), kernel %s, %s%s",
		cmp.Or(res.DockgateVersion, "?"), cmp.Or(res.Revision, "revision not given"), res.DockerdVersion, cmp.Or(res.DockerdAPI, "?"),
		cmp.Or(res.Engine, "?"), res.GoVersion, res.CPUs, cmp.Or(res.CPUModel, "CPU model unknown"), res.Kernel,
		res.Time.Format("2006-01-02"), mode)
}

func printTable(w io.Writer, res results) {
	fmt.Fprintf(w, "\n%s\n\n", machine(res))
	cells := append([][]string{tableHeader}, tableCells(res.Rows)...)
	width := make([]int, len(tableHeader))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range cells {
		var b strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i <= 2 || i == len(row)-1 { // names and verdicts read left-aligned, numbers right
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
			b.WriteString("  ")
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	for _, r := range res.Rows {
		if r.Error != "" {
			fmt.Fprintf(w, "error in %s: %s\n", r.Name, r.Error)
		}
	}
	fmt.Fprintln(w)
}

// markdownTable is res as the README shows it: the machine, then the rows.
func markdownTable(res results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", machine(res))
	line := func(cells []string) {
		for i := range cells {
			cells[i] = strings.ReplaceAll(cells[i], "|", `\|`)
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
	}
	line(append([]string(nil), tableHeader...))
	b.WriteString("|---|---|---|--:|--:|--:|---|---|\n")
	for _, c := range tableCells(res.Rows) {
		line(c)
	}
	return b.String()
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
