package main

import (
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz/policy"
)

// recordPolicy writes the audit trail's record of a policy load to sink:
// a policy put in force (at startup, or by a reload that changed it), or a
// reload that failed. A reload that put the same policy in force again
// changes nothing and writes nothing. signal names the signal of a
// signal-triggered reload.
func recordPolicy(sink *audit.Logger, ev policy.Reload, signal string) {
	if sink == nil || (ev.Err == nil && !ev.Changed()) {
		return
	}
	r := &audit.PolicyRecord{Time: time.Now(), Trigger: ev.Trigger, Source: ev.Dir}
	if ev.Trigger == policy.TriggerSignal {
		r.Signal = signal
	}
	for _, f := range ev.Files {
		r.Files = append(r.Files, audit.PolicyFile{Name: f.Name, SHA256: f.SHA256})
	}
	if ev.Err != nil {
		r.Result, r.Error = audit.PolicyFailed, ev.Err.Error()
		if ev.Previous != nil {
			r.PolicyHash = ev.Previous.Hash
			if r.Source == "" {
				r.Source = ev.Previous.Source
			}
		}
		sink.WritePolicy(r)
		return
	}
	r.Result, r.PolicyHash = audit.PolicyApplied, ev.Loaded.Hash
	if r.Source == "" {
		r.Source = ev.Loaded.Source
	}
	if ev.Previous != nil {
		r.PreviousHash = ev.Previous.Hash
	}
	d := policy.DiffRows(ev.Previous, ev.Loaded)
	r.RowsAdded, r.RowsRemoved = d.Added, d.Removed
	sink.WritePolicy(r)
}
