// Package audit writes, chains and reads dockgate's audit records: one per
// request, and one per policy put in force or reload that failed.
package audit

import "time"

// Decisions a record can carry.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
	DecisionError = "error"
)

// OutcomeClientAborted is the outcome of a request whose client went away
// before it ended: in the middle of its body, or before the whole answer
// reached it. The decision stays what was decided (nothing was refused),
// and the status is what the client was sent, 0 when nothing was.
const OutcomeClientAborted = "client_aborted"

// PhaseStart marks the extra record written when a hijacked session or a long
// stream begins, so that a session that never ends is still on record.
const PhaseStart = "start"

// Caller is who made a request, as recorded (BRIEF §6).
type Caller struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	PID    int32    `json:"pid"`
	User   string   `json:"user,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// GIDs are all the caller's gids, primary first (each a gid:
	// subject): what the record's decision was made with, for replaying
	// it under another policy.
	GIDs      []uint32 `json:"gids,omitempty"`
	Exe       string   `json:"exe,omitempty"`
	Unit      string   `json:"unit,omitempty"`
	Container string   `json:"container,omitempty"`
	// ContainerName is the name dockerd gave Container when the request
	// was judged; Subjects are the subjects a caller in a container was
	// judged by (docs/containers.md), and ActsFor the tenant whose
	// container it is. All three are empty for a host process.
	ContainerName string   `json:"container_name,omitempty"`
	Subjects      []string `json:"subjects,omitempty"`
	ActsFor       string   `json:"acts_for,omitempty"`
	// Creators are the subject sets of the container's recorded
	// creators that capped this request (each must have allowed it too:
	// docs/containers.md); written for every caller in a container that
	// dockerd knew, [] when none capped it.
	Creators [][]string `json:"creators,omitempty"`
	Cert     string     `json:"cert,omitempty"`
	// CertSANs are the DNS and URI subject alternative names of a TLS
	// caller's verified certificate, as the subjects they give:
	// "cert-dns:NAME" and "cert-uri:URI".
	CertSANs []string `json:"cert_sans,omitempty"`
}

// FactResult is one fact of a request with its decision and the rule that
// made it, as the record shows it: kind "endpoint", value
// "container.create", decision "allow", rule
// "p, role:dev, endpoint, container.*, allow", say. Rule is omitted when
// the decider named none. The audit package defines it rather than take
// the decider's own type, so that reading a trail needs nothing of the
// policy engine.
type FactResult struct {
	Kind     string `json:"kind"`
	Value    string `json:"value"`
	Decision string `json:"decision"`
	Rule     string `json:"rule,omitempty"`
}

// Record is one audit record. Its JSON form is the contract in BRIEF §6.
type Record struct {
	Time       time.Time    `json:"time"`
	RequestID  string       `json:"request_id"`
	Phase      string       `json:"phase,omitempty"`
	Caller     *Caller      `json:"caller,omitempty"`
	Method     string       `json:"method,omitempty"`
	Path       string       `json:"path,omitempty"`
	APIVersion string       `json:"api_version,omitempty"`
	Action     string       `json:"action,omitempty"`
	Facts      []FactResult `json:"facts,omitempty"`
	Decision   string       `json:"decision"`
	WouldDeny  bool         `json:"would_deny,omitempty"`
	Reason     string       `json:"reason,omitempty"`
	// Outcome says how a request that did not end normally ended
	// (OutcomeClientAborted); empty when it ended normally.
	Outcome    string  `json:"outcome,omitempty"`
	Status     int     `json:"status"`
	BytesIn    int64   `json:"bytes_in"`
	BytesOut   int64   `json:"bytes_out"`
	DurationMS float64 `json:"duration_ms"`
	Hijacked   bool    `json:"hijacked"`
	ObjectID   string  `json:"object_id,omitempty"`
	// Forwarded is the request target sent to dockerd when dockgate
	// changed it (a tenant's request pinned to an object's full ID, or
	// its owner filter merged into the query); Path is what the client
	// sent.
	Forwarded string `json:"forwarded,omitempty"`
	// Rewrites are the binds of a Docker daemon's socket that dockgate
	// forwarded with its own socket instead, one a line ("bind SRC:DST ->
	// DGSOCK:DST"): the container got dockgate's socket, not the
	// daemon's.
	Rewrites []string `json:"rewrites,omitempty"`
	// ExitCode is the exit code of an exec session's process, read from
	// dockerd after the session ended (exec.start only).
	ExitCode *int `json:"exit_code,omitempty"`
}
