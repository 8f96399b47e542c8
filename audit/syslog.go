package audit

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"
)

// SyslogSink ships every line of the chain (records and segment headers,
// sealed, exactly as written to the primary sink) to a syslog server as
// RFC 5424 messages: over a Unix datagram socket (such as /dev/log), one
// message per datagram, or over TCP with octet-counting framing (RFC 6587).
//
// Lines are queued and shipped as the shipper (ship.go) says: after the
// file write, never holding a request up, drops counted (Dropped).
type SyslogSink struct {
	shipper
	network, addr string
	hostname      string
	pid           int
	conn          net.Conn
	msg           []byte // the message being formatted, reused
	// dial is net.DialTimeout, replaced in tests.
	dial func(network, addr string, timeout time.Duration) (net.Conn, error)
}

// Syslog facility and severity of audit messages: authpriv (10), info (6).
const syslogPRI = 10*8 + 6

// DialSyslog returns a sink for target: unix:///dev/log (a datagram
// socket, as syslog daemons listen), unixgram:///path, unixstream:///path
// (octet-counted) or tcp://host:port. It connects in the background: a
// server that is down at start is retried. onErr hears of a failure once,
// until shipping works again.
func DialSyslog(target string, onErr func(error)) (*SyslogSink, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("syslog %q: %w", target, err)
	}
	s := &SyslogSink{shipper: newShipper(onErr), pid: os.Getpid(), dial: net.DialTimeout}
	switch u.Scheme {
	case "unix", "unixgram":
		s.network, s.addr = "unixgram", u.Path
	case "unixstream":
		s.network, s.addr = "unix", u.Path
	case "tcp":
		s.network, s.addr = "tcp", u.Host
	default:
		return nil, fmt.Errorf("syslog %q: want unix:///dev/log, unixgram:///PATH, unixstream:///PATH or tcp://HOST:PORT", target)
	}
	if s.addr == "" || (s.network == "tcp" && u.Port() == "") {
		return nil, fmt.Errorf("syslog %q: no address", target)
	}
	if s.hostname, err = os.Hostname(); err != nil || s.hostname == "" {
		s.hostname = "-"
	}
	go s.run()
	return s, nil
}

func (s *SyslogSink) run() {
	s.shipper.run(func(line []byte) error {
		s.msg = s.format(s.msg[:0], line)
		return s.write(s.msg)
	}, func() {
		if s.conn != nil {
			s.conn.Close()
		}
	})
}

// write writes one message, connecting first when needed; a failed write
// drops the connection.
func (s *SyslogSink) write(msg []byte) error {
	if s.conn == nil {
		c, err := s.dial(s.network, s.addr, 2*time.Second)
		if err != nil {
			return fmt.Errorf("syslog %s: %w", s.addr, err)
		}
		s.conn = c
	}
	s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	n, err := s.conn.Write(msg)
	if err == nil && n != len(msg) {
		err = errors.New("short write")
	}
	if err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("syslog %s: %w", s.addr, err)
	}
	return nil
}

// format appends the RFC 5424 message for line to b, octet-counted on a
// stream:
//
//	<86>1 2026-11-26T20:50:54.791430Z host dockgate 4242 audit - {"type":"audit",...}
func (s *SyslogSink) format(b, line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	msgID := "audit"
	if t := lineType(line); t == SegmentType || t == PolicyType {
		msgID = t
	}
	start := len(b)
	b = append(b, '<')
	b = strconv.AppendInt(b, syslogPRI, 10)
	b = append(b, ">1 "...)
	b = time.Now().UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, ' ')
	b = append(b, s.hostname...)
	b = append(b, " dockgate "...)
	b = strconv.AppendInt(b, int64(s.pid), 10)
	b = append(b, ' ')
	b = append(b, msgID...)
	b = append(b, " - "...)
	b = append(b, line...)
	if s.network == "unixgram" {
		return b
	}
	// Octet counting: "LEN SP MSG".
	msgLen := len(b) - start
	prefix := strconv.AppendInt(nil, int64(msgLen), 10)
	prefix = append(prefix, ' ')
	b = append(b, prefix...) // grow
	copy(b[start+len(prefix):], b[start:start+msgLen])
	copy(b[start:], prefix)
	return b
}
