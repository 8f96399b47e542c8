package proxy

import "time"

// Settings are the limits and timeouts a Server applies to new
// connections. They can be changed while the server runs (SetSettings, on
// a config reload): each connection reads them once, when it is accepted,
// and keeps them to its end, so that a request in flight is never judged
// by a mix of old and new limits.
type Settings struct {
	Limits Limits
	// HeaderTimeout bounds reading one request head once its first byte
	// arrived; IdleTimeout closes a keep-alive connection with no request.
	HeaderTimeout time.Duration
	IdleTimeout   time.Duration
}

// withDefaults fills zero values the way New does.
func (st Settings) withDefaults() Settings {
	if st.Limits == (Limits{}) {
		st.Limits = DefaultLimits()
	}
	if st.HeaderTimeout == 0 {
		st.HeaderTimeout = 30 * time.Second
	}
	if st.IdleTimeout == 0 {
		st.IdleTimeout = 15 * time.Minute
	}
	return st
}

// Settings returns the settings new connections get.
func (s *Server) Settings() Settings { return *s.settings.Load() }

// SetSettings puts st in force for connections accepted from now on
// (zero values take the defaults); connections already open keep theirs.
func (s *Server) SetSettings(st Settings) {
	st = st.withDefaults()
	s.settings.Store(&st)
}
