package main

import (
	"flag"
	"fmt"
	"sync/atomic"
	"time"

	units "github.com/docker/go-units"
	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/audit"
)

// auditServeOptions are the audit flags of "dockgate serve".
type auditServeOptions struct {
	hmacKey  string
	fail     string
	maxSize  string
	maxAge   time.Duration
	compress bool
	syslog   string
	journald bool
}

func (a *auditServeOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&a.hmacKey, "audit-hmac-key", "", "file holding a key (16 bytes or more) that makes the audit chain HMAC-SHA-256")
	fs.StringVar(&a.fail, "audit-fail", "", "closed: answer 503 to new requests while the audit log cannot be written; open: log the failure and go on (default: closed for a file, open for stdout)")
	fs.StringVar(&a.maxSize, "audit-max-size", "", "rotate the audit file when it reaches this size (e.g. 100MiB)")
	fs.DurationVar(&a.maxAge, "audit-max-age", 0, "rotate the audit file when it is this old (e.g. 24h)")
	fs.BoolVar(&a.compress, "audit-compress", false, "gzip rotated audit files in the background")
	fs.BoolVar(&a.journald, "audit-journald", false, "also ship every audit line to the systemd journal, with fields DOCKGATE_ACTION, DOCKGATE_DECISION, DOCKGATE_UID, DOCKGATE_SEQ, DOCKGATE_HASH")
	fs.StringVar(&a.syslog, "audit-syslog", "", "also ship every audit line to syslog (RFC 5424): unix:///dev/log, unixstream:///PATH or tcp://HOST:PORT")
}

// openAudit opens the audit sink as the flags say. Sink failures and
// rotations are reported on the operational log.
func openAudit(path string, a *auditServeOptions, log zerolog.Logger) (*audit.Logger, error) {
	o, err := auditOptions(path, a, log)
	if err != nil {
		return nil, err
	}
	if a.syslog != "" {
		if o.Syslog, err = audit.DialSyslog(a.syslog, func(err error) {
			log.Error().Str("audit_syslog", a.syslog).Str("error", err.Error()).Msg("audit lines cannot be shipped to syslog; the audit log file goes on")
		}); err != nil {
			return nil, fmt.Errorf("--audit-syslog: %w", err)
		}
	}
	if a.journald {
		if o.Journald, err = audit.OpenJournald(func(err error) {
			log.Error().Str("error", err.Error()).Msg("audit lines cannot be shipped to journald; the audit log file goes on")
		}); err != nil {
			if o.Syslog != nil {
				o.Syslog.Close()
			}
			return nil, fmt.Errorf("--audit-journald: %w", err)
		}
	}
	// The fail mode can change on a config reload (Logger.SetFailOpen):
	// the message says the one in force when the failure happens.
	var opened atomic.Pointer[audit.Logger]
	startOpen := o.FailOpen
	o.OnError = func(err error) {
		open := startOpen
		if l := opened.Load(); l != nil {
			open = l.FailOpen()
		}
		auditUnavailable(log, path, open, err)
	}
	l, err := audit.Open(path, o)
	opened.Store(l)
	if err != nil {
		if o.Syslog != nil {
			o.Syslog.Close()
		}
		if o.Journald != nil {
			o.Journald.Close()
		}
	}
	return l, err
}

func auditOptions(path string, a *auditServeOptions, log zerolog.Logger) (audit.Options, error) {
	toFile := path != "" && path != "-"
	var o audit.Options
	switch a.fail {
	case "":
		o.FailOpen = !toFile
	case "closed":
	case "open":
		o.FailOpen = true
	default:
		return o, fmt.Errorf("--audit-fail %q: want closed or open", a.fail)
	}
	if a.hmacKey != "" {
		key, err := audit.ReadHMACKey(a.hmacKey)
		if err != nil {
			return o, fmt.Errorf("--audit-hmac-key: %w", err)
		}
		o.HMACKey = key
	}
	if a.maxSize != "" {
		n, err := units.RAMInBytes(a.maxSize)
		if err != nil || n < 1 {
			return o, fmt.Errorf("--audit-max-size %q: want a size such as 100MiB", a.maxSize)
		}
		o.Rotate.MaxSize = n
	}
	if a.maxAge < 0 {
		return o, fmt.Errorf("--audit-max-age %v: want a positive duration such as 24h", a.maxAge)
	}
	o.Rotate.MaxAge = a.maxAge
	o.Rotate.Compress = a.compress
	if !toFile && (o.Rotate.MaxSize > 0 || o.Rotate.MaxAge > 0 || o.Rotate.Compress) {
		return o, fmt.Errorf("--audit-max-size, --audit-max-age and --audit-compress need --audit-log FILE")
	}
	failOpen := o.FailOpen
	o.OnError = func(err error) { auditUnavailable(log, path, failOpen, err) }
	o.OnRecover = func(lost uint64) {
		log.Warn().Str("audit_log", path).Uint64("lost_records", lost).Msg("audit log writable again")
	}
	o.Rotate.OnRotate = func(rotated string, err error) {
		if err != nil {
			log.Error().Str("audit_log", path).Str("error", err.Error()).Msg("audit log rotation")
			return
		}
		log.Info().Str("audit_log", path).Str("rotated", rotated).Msg("audit log rotated")
	}
	return o, nil
}

// auditUnavailable logs that the audit sink cannot be written, and what
// that means for requests under the fail mode in force.
func auditUnavailable(log zerolog.Logger, path string, failOpen bool, err error) {
	failMode, msg := "closed", "audit log unavailable: new requests are refused with 503 until it can be written"
	if failOpen {
		failMode, msg = "open", "audit log unavailable: requests go on unrecorded (--audit-fail open)"
	}
	log.Error().Str("audit_log", path).Str("audit_fail", failMode).Str("error", err.Error()).Msg(msg)
}

// auditFailOpen is the fail mode --audit-fail gives for the audit log at
// path: open or closed as asked, else closed for a file and open for stdout.
func auditFailOpen(path, fail string) bool {
	switch fail {
	case "open":
		return true
	case "closed":
		return false
	}
	return path == "" || path == "-"
}
