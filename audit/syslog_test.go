package audit

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var rfc5424 = regexp.MustCompile(`^<86>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ dockgate \d+ (audit|audit-segment) - (\{.*\})$`)

// readOctetCounted reads RFC 6587 octet-counted frames.
func readOctetCounted(br *bufio.Reader) (string, error) {
	n, err := br.ReadString(' ')
	if err != nil {
		return "", err
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
	if err != nil {
		return "", err
	}
	b := make([]byte, size)
	_, err = io.ReadFull(br, b)
	return string(b), err
}

// The lines shipped to syslog are the chain as written to the file: their
// messages, put together, verify.
func TestSyslogOverTCPShipsTheChain(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var msgs []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			m, err := readOctetCounted(br)
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, m)
			mu.Unlock()
		}
	}()
	sink, err := DialSyslog("tcp://"+l.Addr().String(), func(err error) { t.Errorf("syslog: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	lg, err := Open(path, Options{Syslog: sink})
	if err != nil {
		t.Fatal(err)
	}
	writeN(lg, 0, 20)
	lg.Close()
	<-done

	var shipped strings.Builder
	for _, m := range msgs {
		sm := rfc5424.FindStringSubmatch(m)
		if sm == nil {
			t.Fatalf("not an RFC 5424 message: %q", m)
		}
		if (sm[1] == "audit-segment") != strings.HasPrefix(sm[2], `{"type":"audit-segment"`) {
			t.Fatalf("MSGID %s for %s", sm[1], sm[2])
		}
		shipped.WriteString(sm[2] + "\n")
	}
	file, _ := os.ReadFile(path)
	if shipped.String() != string(file) {
		t.Fatalf("shipped lines differ from the file:\n%s\nfile:\n%s", shipped.String(), file)
	}
	copyPath := filepath.Join(t.TempDir(), "central.log")
	os.WriteFile(copyPath, []byte(shipped.String()), 0o600)
	if res := mustVerify(t, VerifyOptions{}, copyPath); res.Records != 20 {
		t.Fatalf("%+v", res)
	}
}

func TestSyslogOverUnixDatagrams(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sink, err := DialSyslog("unix://"+sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	lg := NewLogger(&strings.Builder{}, Options{Syslog: sink})
	writeN(lg, 0, 3)
	lg.Close()
	buf := make([]byte, 64<<10)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 3 {
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		sm := rfc5424.FindStringSubmatch(string(buf[:n]))
		if sm == nil || !strings.Contains(sm[2], `"seq":`+strconv.Itoa(i+1)+`,`) {
			t.Fatalf("datagram %d: %q", i, buf[:n])
		}
	}
}

// A syslog server that is down never holds records up nor fails the file:
// lines are dropped, counted and reported once.
func TestSyslogDownDropsAndReports(t *testing.T) {
	var mu sync.Mutex
	var errs []error
	sink, err := DialSyslog("tcp://127.0.0.1:1", func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	sink.dial = func(string, string, time.Duration) (net.Conn, error) { return nil, errors.New("connection refused") }
	path := filepath.Join(t.TempDir(), "audit.log")
	lg, err := Open(path, Options{Syslog: sink})
	if err != nil {
		t.Fatal(err)
	}
	writeN(lg, 0, 5)
	if err := lg.Check(); err != nil || !lg.Healthy() {
		t.Fatalf("a syslog failure made the log unhealthy: %v", err)
	}
	lg.Close()
	if sink.Dropped() != 6 { // the header and five records
		t.Fatalf("dropped %d, want 6", sink.Dropped())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 {
		t.Fatalf("reported %d times: %v", len(errs), errs)
	}
	if res := mustVerify(t, VerifyOptions{}, path); res.Records != 5 {
		t.Fatalf("%+v", res)
	}
}

func TestDialSyslogRefusesBadTargets(t *testing.T) {
	for _, target := range []string{"udp://h:514", "tcp://host", "unix://", "syslog"} {
		if _, err := DialSyslog(target, nil); err == nil {
			t.Errorf("%q accepted", target)
		}
	}
}
