package proxy

import "github.com/dockgate/dockgate/audit"

// Observer is told what the proxy does, for metrics. Its methods are called
// on the serving goroutines and must not block. The proxy does not know
// what an observer does with it (cmd/dockgate exports Prometheus metrics).
type Observer interface {
	// Finished gets every request's final audit record, once, when it is
	// finished (as it is written to the audit log). It must not keep rec
	// or what it points to: the proxy reuses their storage.
	Finished(rec *audit.Record)
	// HijackStarted and HijackEnded bracket a hijacked session (attach,
	// exec, an upgraded connection) while bytes are spliced.
	HijackStarted()
	HijackEnded()
	// ConnRefused counts a connection refused with 503 because its caller
	// was at a limit: LimitPerCaller or LimitTotal.
	ConnRefused(limit string)
	// SilentConnClosed counts a connection closed because it sent no
	// request within the header timeout of its accept.
	SilentConnClosed()
}

func (s *Server) observeFinished(rec *audit.Record) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.Finished(rec)
	}
}

func (s *Server) hijackStarted() {
	if s.cfg.Observer != nil {
		s.cfg.Observer.HijackStarted()
	}
}

func (s *Server) hijackEnded() {
	if s.cfg.Observer != nil {
		s.cfg.Observer.HijackEnded()
	}
}

func (s *Server) observeConnRefused(limit string) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.ConnRefused(limit)
	}
}

func (s *Server) observeSilentClosed() {
	if s.cfg.Observer != nil {
		s.cfg.Observer.SilentConnClosed()
	}
}
