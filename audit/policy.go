package audit

import (
	"encoding/json"
	"time"

	"github.com/rs/zerolog"
)

// PolicyType is the "type" of a policy record: the second kind of line
// the chain holds besides request records ("type":"audit"). Readers of
// request records pass over it as they pass over segment headers.
const PolicyType = "policy"

// Policy record results.
const (
	PolicyApplied = "applied" // the policy is now in force
	PolicyFailed  = "failed"  // a reload failed: the policy in force stays
)

// PolicyRecord is the record of a policy put in force (at startup, or by
// a reload that changed it) or of a reload that failed. Like a request
// record it is sealed into the hash chain with its seq and hash, so that
// the trail proves which policy decided each request after it.
type PolicyRecord struct {
	Time time.Time `json:"time"`
	// Result is PolicyApplied or PolicyFailed.
	Result string `json:"result"`
	// Trigger is startup, signal (Signal names it: SIGHUP) or watcher.
	Trigger string `json:"trigger"`
	Signal  string `json:"signal,omitempty"`
	// Source is the policy directory, or embedded:default.
	Source string `json:"source"`
	// PolicyHash is the policy in force after the event: the new one, or
	// for a failure the one that stays. PreviousHash is the one before.
	PolicyHash   string `json:"policy_hash"`
	PreviousHash string `json:"previous_policy_hash,omitempty"`
	// Files are the files read, with the SHA-256 of their bytes.
	Files []PolicyFile `json:"files,omitempty"`
	// RowsAdded and RowsRemoved are the rows that changed, as
	// "FILE:LINE: p, SUBJECT, KIND, PATTERN, EFFECT" (or a g row); at
	// startup every row is added.
	RowsAdded   []string `json:"rows_added,omitempty"`
	RowsRemoved []string `json:"rows_removed,omitempty"`
	// Error is why a reload failed, with file and line when a policy file
	// is the reason.
	Error string `json:"error,omitempty"`
}

// PolicyFile is one file of a policy and its digest.
type PolicyFile struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// WritePolicy writes a policy record through the same chain as request
// records.
func (l *Logger) WritePolicy(r *PolicyRecord) {
	e := l.zl.Log().Str("type", PolicyType).
		Str("time", r.Time.UTC().Format(time.RFC3339Nano)).
		Str("result", r.Result).
		Str("trigger", r.Trigger)
	if r.Signal != "" {
		e = e.Str("signal", r.Signal)
	}
	e = e.Str("source", r.Source).Str("policy_hash", r.PolicyHash)
	if r.PreviousHash != "" {
		e = e.Str("previous_policy_hash", r.PreviousHash)
	}
	if len(r.Files) > 0 {
		e = e.Array("files", policyFiles(r.Files))
	}
	if len(r.RowsAdded) > 0 {
		e = e.Strs("rows_added", r.RowsAdded)
	}
	if len(r.RowsRemoved) > 0 {
		e = e.Strs("rows_removed", r.RowsRemoved)
	}
	if r.Error != "" {
		e = e.Str("error", r.Error)
	}
	e.Send()
}

type policyFiles []PolicyFile

func (fs policyFiles) MarshalZerologArray(a *zerolog.Array) {
	for _, f := range fs {
		a.Dict(zerolog.Dict().Str("name", f.Name).Str("sha256", f.SHA256))
	}
}

// policyLine is a policy record line as read back.
type policyLine struct {
	Type string `json:"type"`
	PolicyRecord
	Seq uint64 `json:"seq"`
}

// decodePolicy reads a policy record line into e: e.Type is PolicyType and
// e.Policy the record.
func decodePolicy(line []byte, e *Entry) error {
	var pl policyLine
	if err := json.Unmarshal(line, &pl); err != nil {
		return err
	}
	*e = Entry{Type: pl.Type, Seq: pl.Seq, Policy: &pl.PolicyRecord}
	e.Time = pl.Time
	return nil
}
