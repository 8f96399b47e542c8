package audit

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// journalDatagram encodes an entry as journald's native protocol does for
// values without newlines (KEY=VALUE lines), as journal.Send would.
func journalDatagram(msg string, prio journal.Priority, vars map[string]string) []byte {
	b := []byte("PRIORITY=" + strconv.Itoa(int(prio)) + "\nMESSAGE=" + msg + "\n")
	for k, v := range vars {
		b = append(b, k+"="+v+"\n"...)
	}
	return b
}

func parseDatagram(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("not a KEY=VALUE line: %q", line)
		}
		if _, dup := out[k]; dup {
			t.Fatalf("field %s twice", k)
		}
		out[k] = v
	}
	return out
}

// A fake journald: a Unix datagram socket in a temp dir. The library's
// socket path is fixed, so the sink's send function is wrapped to write
// there instead.
func fakeJournald(t *testing.T) (send func(string, journal.Priority, map[string]string) error, recv func() map[string]string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "socket")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	send = func(msg string, prio journal.Priority, vars map[string]string) error {
		_, err := c.Write(journalDatagram(msg, prio, vars))
		return err
	}
	buf := make([]byte, 64<<10)
	recv = func() map[string]string {
		t.Helper()
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return parseDatagram(t, buf[:n])
	}
	return send, recv
}

func TestJournaldFields(t *testing.T) {
	var sb strings.Builder
	lg := NewLogger(&sb)
	allow := fullRecord()
	allow.Phase, allow.Decision, allow.WouldDeny, allow.Status = "", DecisionAllow, false, 201
	lg.Write(allow)
	lg.Write(fullRecord()) // deny, phase start
	anon := fullRecord()
	anon.Caller, anon.Decision = nil, DecisionError
	lg.Write(anon)
	lines := strings.SplitAfter(strings.TrimSuffix(sb.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, tc := range []struct {
		prio     journal.Priority
		decision string
		uid      string
		phase    string
	}{
		{journal.PriInfo, "allow", "1000", ""},
		{journal.PriWarning, "deny", "1000", "start"},
		{journal.PriWarning, "error", "", "start"},
	} {
		msg, prio, vars := journalFields([]byte(lines[i]))
		if msg != strings.TrimSuffix(lines[i], "\n") {
			t.Errorf("%d: MESSAGE %q is not the line", i, msg)
		}
		_, sum, _ := splitSealed([]byte(msg))
		wantVars := map[string]string{
			"SYSLOG_IDENTIFIER": "dockgate", "DOCKGATE_TYPE": "audit",
			"DOCKGATE_REQUEST_ID": "a1b2c3d4-42", "DOCKGATE_ACTION": "container.create",
			"DOCKGATE_DECISION": tc.decision, "DOCKGATE_SEQ": strconv.Itoa(i + 1), "DOCKGATE_HASH": string(sum),
		}
		if tc.uid != "" {
			wantVars["DOCKGATE_UID"] = tc.uid
		}
		if tc.phase != "" {
			wantVars["DOCKGATE_PHASE"] = tc.phase
		}
		if prio != tc.prio {
			t.Errorf("%d: PRIORITY %d, want %d", i, prio, tc.prio)
		}
		if len(vars) != len(wantVars) {
			t.Errorf("%d: fields %v, want %v", i, vars, wantVars)
		}
		for k, v := range wantVars {
			if vars[k] != v {
				t.Errorf("%d: %s=%q, want %q", i, k, vars[k], v)
			}
		}
		for k := range vars {
			// journald drops fields whose names break its rules.
			if strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" || k[0] == '_' {
				t.Errorf("field name %q is not valid for journald", k)
			}
		}
	}
	msg, prio, vars := journalFields([]byte(`{"type":"audit-segment","time":"2026-11-26T20:00:00Z","reason":"restart","alg":"sha256","prev_hash":"` + GenesisHash + `","seq":7,"hash":"` + GenesisHash + `"}` + "\n"))
	if prio != journal.PriNotice || vars["DOCKGATE_TYPE"] != SegmentType || vars["DOCKGATE_SEGMENT_REASON"] != "restart" || vars["DOCKGATE_SEQ"] != "7" || !strings.HasPrefix(msg, "{") {
		t.Errorf("segment header: %d %v", prio, vars)
	}
}

// Every line of the file reaches the journal, in order, and the MESSAGE
// fields are a copy of the chain that verifies; syslog shipping at the same
// time gets the same lines.
func TestJournaldSinkShipsTheChain(t *testing.T) {
	send, recv := fakeJournald(t)
	sink := newJournaldSink(send, func(err error) { t.Errorf("journald: %v", err) })
	slog := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: slog, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	syslog, err := DialSyslog("unix://"+slog, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	lg, err := Open(path, Options{Journald: sink, Syslog: syslog})
	if err != nil {
		t.Fatal(err)
	}
	// Read as lines arrive: a datagram socket's queue is short, and a
	// full one blocks the sender.
	entries := make(chan map[string]string, 21)
	go func() {
		for range 21 { // the segment header and 20 records
			entries <- recv()
		}
	}()
	sysDone := make(chan error, 1)
	go func() {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64<<10)
		for range 21 {
			if _, err := pc.Read(buf); err != nil {
				sysDone <- err
				return
			}
		}
		sysDone <- nil
	}()
	writeN(lg, 0, 20)
	lg.Close()

	var shipped strings.Builder
	for i := range 21 {
		f := <-entries
		shipped.WriteString(f["MESSAGE"] + "\n")
		if i == 0 {
			if f["DOCKGATE_TYPE"] != SegmentType || f["PRIORITY"] != "5" {
				t.Errorf("first entry %v", f)
			}
			continue
		}
		if f["DOCKGATE_SEQ"] != strconv.Itoa(i) || f["DOCKGATE_REQUEST_ID"] != "req-"+strings.Repeat("0", 4-len(strconv.Itoa(i-1)))+strconv.Itoa(i-1) ||
			f["DOCKGATE_DECISION"] != "deny" || f["PRIORITY"] != "4" || f["DOCKGATE_UID"] != "1000" || len(f["DOCKGATE_HASH"]) != 64 {
			t.Errorf("entry %d: %v", i, f)
		}
	}
	file, _ := os.ReadFile(path)
	if shipped.String() != string(file) {
		t.Fatalf("journal copy differs from the file:\n%s\nfile:\n%s", shipped.String(), file)
	}
	copyPath := filepath.Join(t.TempDir(), "journal.log")
	os.WriteFile(copyPath, []byte(shipped.String()), 0o600)
	if res := mustVerify(t, VerifyOptions{}, copyPath); res.Records != 20 {
		t.Fatalf("%+v", res)
	}
	if err := <-sysDone; err != nil {
		t.Fatalf("syslog copy: %v", err)
	}
}

// A journal that cannot be written never holds records up nor fails the
// file: lines are dropped, counted and reported once.
func TestJournaldDownDropsAndReports(t *testing.T) {
	var mu sync.Mutex
	var errs []error
	calls := 0
	sink := newJournaldSink(func(string, journal.Priority, map[string]string) error {
		calls++
		return errors.New("connection refused")
	}, func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
	path := filepath.Join(t.TempDir(), "audit.log")
	lg, err := Open(path, Options{Journald: sink})
	if err != nil {
		t.Fatal(err)
	}
	writeN(lg, 0, 5)
	if err := lg.Check(); err != nil || !lg.Healthy() {
		t.Fatalf("a journald failure made the log unhealthy: %v", err)
	}
	lg.Close()
	if sink.Dropped() != 6 || calls != 12 { // the header and five records, each tried twice
		t.Fatalf("dropped %d after %d sends, want 6 after 12", sink.Dropped(), calls)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "journald: connection refused") {
		t.Fatalf("reported %d times: %v", len(errs), errs)
	}
	if res := mustVerify(t, VerifyOptions{}, path); res.Records != 5 {
		t.Fatalf("%+v", res)
	}
}
