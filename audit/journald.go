package audit

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/coreos/go-systemd/v22/journal"
)

// JournaldSink ships every line of the chain (records and segment headers,
// sealed, exactly as written to the primary sink) to the systemd journal
// over its native protocol, with structured fields:
//
//	MESSAGE            the line itself, so that the journal's copy verifies
//	PRIORITY           6 (info) for allow, 4 (warning) for deny and error,
//	                   5 (notice) for a segment header and a policy put in
//	                   force, 4 for a policy reload that failed
//	SYSLOG_IDENTIFIER  dockgate
//	DOCKGATE_TYPE      audit, audit-segment or policy
//	DOCKGATE_POLICY_RESULT, DOCKGATE_TRIGGER, DOCKGATE_POLICY_HASH
//	                   (policy records only)
//	DOCKGATE_REQUEST_ID, DOCKGATE_ACTION, DOCKGATE_DECISION, DOCKGATE_UID
//	                   (records only; DOCKGATE_UID when the caller is known)
//	DOCKGATE_SEQ, DOCKGATE_HASH
//
// so that journalctl DOCKGATE_DECISION=deny or DOCKGATE_UID=1000 selects
// records. Lines are queued and shipped as the shipper (ship.go) says:
// after the file write, never holding a request up, drops counted.
type JournaldSink struct {
	shipper
	// sendFn is journal.Send; tests replace it (the library's socket path
	// is fixed).
	sendFn func(msg string, prio journal.Priority, vars map[string]string) error
}

// OpenJournald returns a journald sink, or an error when the journal's
// socket cannot be reached. onErr hears of a failure once, until shipping
// works again.
func OpenJournald(onErr func(error)) (*JournaldSink, error) {
	if !journal.Enabled() {
		return nil, errors.New("journald: the journal's socket (/run/systemd/journal/socket) cannot be reached")
	}
	return newJournaldSink(journal.Send, onErr), nil
}

func newJournaldSink(send func(string, journal.Priority, map[string]string) error, onErr func(error)) *JournaldSink {
	s := &JournaldSink{shipper: newShipper(onErr), sendFn: send}
	go s.run(s.ship, nil)
	return s
}

func (s *JournaldSink) ship(line []byte) error {
	msg, prio, vars := journalFields(line)
	if err := s.sendFn(msg, prio, vars); err != nil {
		return errors.New("journald: " + err.Error())
	}
	return nil
}

// journalFields builds the journal entry of one sealed line.
func journalFields(line []byte) (msg string, prio journal.Priority, vars map[string]string) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	msg = string(line)
	vars = map[string]string{"SYSLOG_IDENTIFIER": "dockgate"}
	if prefix, sum, ok := splitSealed(line); ok {
		vars["DOCKGATE_HASH"] = string(sum)
		if seq, ok := sealedSeq(prefix); ok {
			vars["DOCKGATE_SEQ"] = strconv.FormatUint(seq, 10)
		}
	}
	if lineType(line) == SegmentType {
		vars["DOCKGATE_TYPE"] = SegmentType
		var h segmentHeader
		if json.Unmarshal(line, &h) == nil && h.Reason != "" {
			vars["DOCKGATE_SEGMENT_REASON"] = h.Reason
		}
		return msg, journal.PriNotice, vars
	}
	if lineType(line) == PolicyType {
		vars["DOCKGATE_TYPE"] = PolicyType
		var e Entry
		if decodePolicy(line, &e) != nil {
			return msg, journal.PriWarning, vars
		}
		for k, v := range map[string]string{"DOCKGATE_POLICY_RESULT": e.Policy.Result, "DOCKGATE_TRIGGER": e.Policy.Trigger, "DOCKGATE_POLICY_HASH": e.Policy.PolicyHash} {
			if v != "" {
				vars[k] = v
			}
		}
		if e.Policy.Result == PolicyApplied {
			return msg, journal.PriNotice, vars
		}
		return msg, journal.PriWarning, vars
	}
	vars["DOCKGATE_TYPE"] = "audit"
	prio = journal.PriWarning
	var e Entry
	if decodeEntry(line, &e) != nil {
		return msg, prio, vars
	}
	if e.Decision == DecisionAllow {
		prio = journal.PriInfo
	}
	for k, v := range map[string]string{"DOCKGATE_REQUEST_ID": e.RequestID, "DOCKGATE_ACTION": e.Action, "DOCKGATE_DECISION": e.Decision, "DOCKGATE_PHASE": e.Phase} {
		if v != "" {
			vars[k] = v
		}
	}
	if e.Caller != nil {
		vars["DOCKGATE_UID"] = strconv.FormatUint(uint64(e.Caller.UID), 10)
	}
	return msg, prio, vars
}
