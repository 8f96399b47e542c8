package drift

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a reader: the period, the drift, then
// the runtime events.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "dockerd at %s from %s to %s: %d events, compared with %d requests dockgate forwarded\n",
		r.Upstream, r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339), r.Events, r.Requests)
	for _, b := range r.BadLines {
		fmt.Fprintf(w, "skipped %s\n", b.Error())
	}
	if len(r.Drift) == 0 {
		fmt.Fprintln(w, "no drift: every container, exec, image, volume and network that appeared came through dockgate")
	} else {
		fmt.Fprintf(w, "DRIFT: %s appeared without a request through dockgate (somebody used dockerd's socket):\n", objects(len(r.Drift)))
		for _, f := range r.Drift {
			fmt.Fprintf(w, "  %s %s %s%s %s (%s%s)\n", f.Time.Format(time.RFC3339), f.Object, short(f.ID), quoted(f.Name), f.What, f.Seen, attrs(f.Attributes))
		}
	}
	if len(r.Runtime) > 0 {
		fmt.Fprintf(w, "runtime events (%d):\n", len(r.Runtime))
		for _, f := range r.Runtime {
			ctr := "container " + short(f.ID) + quoted(f.Name)
			var what string
			switch f.What {
			case WhatExec:
				what = "exec into " + ctr
			case WhatPrivileged:
				what = "privileged " + ctr + " created"
			case WhatHostBind:
				what = ctr + " started with host binds " + strings.Join(f.Binds, ", ")
			default:
				what = f.What + " " + ctr
			}
			fmt.Fprintf(w, "  %s %s: %s\n", f.Time.Format(time.RFC3339), what, verdict(f))
		}
	}
}

func verdict(f Finding) string {
	switch {
	case !f.Allowed:
		return "NOT through dockgate"
	case f.WouldDeny:
		return "forwarded by dockgate in audit mode for " + f.Caller + ", which the policy would refuse (request " + f.RequestID + ")"
	}
	return "allowed by dockgate for " + f.Caller + " (request " + f.RequestID + ")"
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 && !strings.ContainsAny(id, ":/") {
		return id[:12]
	}
	return id
}

func quoted(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" %q", name)
}

// attrs prints what dockerd says of an object, its keys sorted.
func attrs(a map[string]string) string {
	if len(a) == 0 {
		return ""
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(a)) {
		fmt.Fprintf(&b, "; %s=%s", k, a[k])
	}
	return b.String()
}

func objects(n int) string {
	if n == 1 {
		return "1 object"
	}
	return fmt.Sprintf("%d objects", n)
}
