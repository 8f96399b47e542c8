package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	units "github.com/docker/go-units"
	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/signature"
	"github.com/dockgate/dockgate/metrics"
	"github.com/dockgate/dockgate/proxy"
)

// Live reload (SIGHUP, systemd's ExecReload): the command line is parsed
// again, which reads the config file again (flags given on the command
// line still override it), and everything is validated the way startup
// validates it, the policy it names included. Anything invalid keeps the
// whole state in force. Otherwise what can change live changes at once:
// the policy directory and policy, the mode, the limits and timeouts of
// new connections and the audit fail mode. Settings that need a restart
// (restartSettings) keep their value in force, with a warning.
//
// A reload signal is the one trigger of a policy reload unless
// --policy-watch is given: an edit is complete when its author says so.
// The watcher, opt-in, loads the directory once its files have stayed
// unchanged for the --policy-watch quiet period (policy.Reloader).
// Either way the policy is read as one snapshot whose files must read the
// same twice (policy.ReadSnapshot), and every policy put in force, and
// every reload that fails, is written to the audit trail (policy_record.go).

// restartSettings are the settings a reload cannot change: the sockets,
// the upstream, the gc loop's interval, TLS, the audit sinks, the metrics listener, the
// connection limits and the shutdown grace are set up once, at startup.
// field returns a pointer to the setting in o.
var restartSettings = []struct {
	key   string
	field func(o *serveOptions) any
}{
	{"listen", func(o *serveOptions) any { return &o.listen }},
	{"socket_mode", func(o *serveOptions) any { return &o.socketMode }},
	{"socket_group", func(o *serveOptions) any { return &o.socketGroup }},
	{"upstream", func(o *serveOptions) any { return &o.upstream }},
	{"gc_interval", func(o *serveOptions) any { return &o.gcInterval }},
	{"tls.cert", func(o *serveOptions) any { return &o.tlsCert }},
	{"tls.key", func(o *serveOptions) any { return &o.tlsKey }},
	{"tls.client_ca", func(o *serveOptions) any { return &o.tlsClientCA }},
	{"audit.log", func(o *serveOptions) any { return &o.auditLog }},
	{"audit.hmac_key", func(o *serveOptions) any { return &o.audit.hmacKey }},
	{"audit.max_size", func(o *serveOptions) any { return &o.audit.maxSize }},
	{"audit.max_age", func(o *serveOptions) any { return &o.audit.maxAge }},
	{"audit.compress", func(o *serveOptions) any { return &o.audit.compress }},
	{"audit.syslog", func(o *serveOptions) any { return &o.audit.syslog }},
	{"audit.journald", func(o *serveOptions) any { return &o.audit.journald }},
	{"metrics_listen", func(o *serveOptions) any { return &o.metricsListen }},
	{"limits.max_connections", func(o *serveOptions) any { return &o.maxConns }},
	{"limits.max_connections_per_caller", func(o *serveOptions) any { return &o.maxConnsPerCaller }},
	{"shutdown_grace", func(o *serveOptions) any { return &o.shutdownGrace }},
}

// serveSettings are the limits and timeouts the options give.
func serveSettings(o *serveOptions) (proxy.Settings, error) {
	var err error
	limits := proxy.DefaultLimits()
	if limits.MaxBodyBytes, err = units.RAMInBytes(o.maxBody); err != nil || limits.MaxBodyBytes < 1 {
		return proxy.Settings{}, fmt.Errorf("--max-body %q: want a size such as 1MiB or 65536", o.maxBody)
	}
	if limits.MaxSpoolBytes, err = units.RAMInBytes(o.maxSpool); err != nil || limits.MaxSpoolBytes < 1 {
		return proxy.Settings{}, fmt.Errorf("--max-spool %q: want a size such as 8GiB", o.maxSpool)
	}
	limits.SpoolDir = o.spoolDir
	maxHeader, err := units.RAMInBytes(o.maxHeader)
	if err != nil || maxHeader < 1<<10 || maxHeader > 64<<20 {
		return proxy.Settings{}, fmt.Errorf("--max-header %q: want a size from 1KiB to 64MiB", o.maxHeader)
	}
	limits.MaxHeaderBytes = int(maxHeader)
	limits.MaxRequestLine = min(limits.MaxRequestLine, limits.MaxHeaderBytes)
	if o.headerTimeout <= 0 || o.idleTimeout <= 0 {
		return proxy.Settings{}, fmt.Errorf("--header-timeout and --idle-timeout must be positive")
	}
	return proxy.Settings{Limits: limits, HeaderTimeout: o.headerTimeout, IdleTimeout: o.idleTimeout}, nil
}

// configReloader holds what a reload changes and applies reloads one at a
// time.
type configReloader struct {
	ctx  context.Context
	log  zerolog.Logger
	m    *metrics.Metrics
	srv  *proxy.Server // nil: no limits to apply
	sink *audit.Logger // nil: no audit fail mode to apply
	// decider is the proxy's, for the process's life: a reload puts a
	// policy and a mode in force in it.
	decider *authz.PolicyDecider
	// sigs is the decider's signature verifier, nil when there is none; a
	// reload replaces the verifier in it when its options or files change.
	sigs *signatureHolder

	mu        sync.Mutex
	cur       *serveOptions // the options in force
	stopWatch func()        // ends the policy watch and waits for it
}

// dockerdAsked is what the decider asks dockerd: the facts' questions and
// who a caller in a container is. *dockerd.Client is both.
type dockerdAsked interface {
	authz.Inspector
	authz.CallerContainers
}

// newConfigReloader puts o and its policy p in force, and writes the
// startup policy record to sink (when not nil). With --policy-watch,
// policy directory changes are watched until ctx ends.
func newConfigReloader(ctx context.Context, o *serveOptions, p *policy.Policy, log zerolog.Logger, m *metrics.Metrics, daemon dockerdAsked, sigs *signatureHolder, sink *audit.Logger) *configReloader {
	d := authz.NewPolicyDecider(p)
	d.Extract = authz.DefaultExtractor()
	if daemon != nil {
		d.Inspector, d.Containers = daemon, daemon
	}
	if sigs != nil {
		d.Signatures = sigs
	}
	r := &configReloader{ctx: ctx, log: log, m: m, decider: d, sigs: sigs, cur: o, sink: sink}
	r.install(o, p)
	recordPolicy(sink, policy.Reload{Trigger: policy.TriggerStartup, Dir: o.policy, Loaded: p, Files: p.FileSums}, "")
	return r
}

// install puts o's mode and policy p in force and watches o's policy
// directory. The watch of the options it replaces is stopped first, and
// waited for: a reload it was doing is applied and logged before p is put
// in force, and none comes after.
func (r *configReloader) install(o *serveOptions, p *policy.Policy) {
	if r.stopWatch != nil {
		r.stopWatch()
		r.stopWatch = nil
	}
	r.decider.Put(p, o.mode == "audit")
	if dir := o.policy; dir != "" && o.policyWatch > 0 {
		pr := &policy.Reloader{Dir: dir, Holder: r.decider, Log: func(ev policy.Reload) {
			r.m.PolicyReloaded(ev.Err)
			recordPolicy(r.sink, ev, "")
			if ev.Err != nil {
				r.log.Error().Str("policy", dir).Str("trigger", ev.Trigger).Str("error", ev.Err.Error()).Str("hash", ev.Previous.Hash).Msg("policy reload failed; the policy in force stays")
				return
			}
			p := ev.Loaded
			r.log.Info().Str("policy", dir).Str("trigger", ev.Trigger).Str("hash", p.Hash).Bool("changed", ev.Changed()).Int("rules", len(p.Rules)).Int("roles", len(p.Roles())).Msg("policy reloaded")
		}}
		// The watch's baseline is the directory as it is now, just after
		// p was read from it.
		r.stopWatch = pr.Watch(r.ctx, watchInterval(o.policyWatch), o.policyWatch)
	}
}

// watchInterval is how often the watcher looks at the policy files for a
// quiet period: often enough that the quiet period is kept to within a
// quarter, rarely enough to cost nothing.
func watchInterval(quiet time.Duration) time.Duration {
	return min(max(quiet/4, 50*time.Millisecond), time.Second)
}

// watchSIGHUP reloads on every SIGHUP until ctx ends. The handler is in
// place when it returns, so that a SIGHUP no longer kills the process.
func (r *configReloader) watchSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.reload("SIGHUP")
			}
		}
	}()
}

// prepare reads and checks everything a reload would put in force,
// without changing anything. ev is the policy's part: the files read and
// the policy loaded from them, or why not.
func prepare(args []string, ev *policy.Reload) (*serveOptions, proxy.Settings, error) {
	n, err := parseServe(args, io.Discard)
	if err != nil {
		return nil, proxy.Settings{}, err
	}
	if err := validateServe(n); err != nil {
		return nil, proxy.Settings{}, err
	}
	st, err := serveSettings(n)
	if err != nil {
		return nil, proxy.Settings{}, err
	}
	ev.Dir = n.policy
	if n.policy == "" {
		ev.Loaded, err = policy.Default()
		if ev.Loaded != nil {
			ev.Files = ev.Loaded.FileSums
		}
	} else {
		*ev = policy.LoadReload(n.policy, ev.Trigger, ev.Previous)
		err = ev.Err
	}
	if err != nil {
		return nil, proxy.Settings{}, fmt.Errorf("policy not loaded:\n%w", err)
	}
	return n, st, nil
}

// reload reads the config file and the policy again and, when both are
// valid, puts them in force; when not, nothing changes. systemd hears of
// it (RELOADING=1, then READY=1 with the outcome in STATUS=). signal names
// the signal that asked for it.
func (r *configReloader) reload(signal string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sdNotify(r.log, sdReloading())
	old := r.cur
	trigger := signal
	ev := policy.Reload{Trigger: policy.TriggerSignal, Previous: r.decider.Policy()}
	n, st, err := prepare(old.args, &ev)
	var verifier *signature.Verifier
	var sigSource string
	if err == nil && r.sigs != nil {
		if sigSource = n.signatures.source(); r.sigs.changed(sigSource) {
			verifier, err = n.signatures.newVerifier()
		}
	}
	if err != nil {
		ev.Loaded, ev.Err = nil, err
		recordPolicy(r.sink, ev, signal)
		r.m.PolicyReloaded(err)
		hash := r.decider.Policy().Hash
		r.log.Error().Str("config", old.config).Str("trigger", trigger).Str("error", err.Error()).Str("hash", hash).
			Msg("reload failed; the configuration and policy in force stay")
		sdNotify(r.log, daemon.SdNotifyReady, sdStatus("reload failed; the configuration and policy in force (%s) stay: %v", hash, err))
		return err
	}
	for _, s := range restartSettings {
		was, now := reflect.ValueOf(s.field(old)).Elem(), reflect.ValueOf(s.field(n)).Elem()
		if reflect.DeepEqual(was.Interface(), now.Interface()) {
			continue
		}
		r.log.Warn().Str("config", n.config).Str("setting", s.key).Str("in_force", fmt.Sprint(was.Interface())).Str("configured", fmt.Sprint(now.Interface())).
			Msg("setting changed: it needs a restart to take effect; the value in force stays until then")
		now.Set(was)
	}
	p := ev.Loaded
	r.install(n, p)
	if verifier != nil {
		r.sigs.swap(verifier, sigSource)
		r.log.Info().Str("config", n.config).Str("docker_config", n.signatures.dockerConfig).Strs("ca_files", n.signatures.caFiles).
			Str("timeout", n.signatures.timeout.String()).Strs("insecure_registries", n.signatures.insecure).Int("cache_size", n.signatures.cacheSize).
			Msg("signature lookups: registry access replaced, its cache emptied")
	}
	recordPolicy(r.sink, ev, signal)
	if r.srv != nil {
		r.srv.SetSettings(st)
	}
	if r.sink != nil {
		r.sink.SetFailOpen(auditFailOpen(n.auditLog, n.audit.fail))
	}
	r.cur = n
	r.m.PolicyReloaded(nil)
	r.log.Info().Str("config", n.config).Str("trigger", trigger).Str("policy", p.Source).Str("hash", p.Hash).
		Int("rules", len(p.Rules)).Int("roles", len(p.Roles())).Str("mode", n.mode).
		Int64("max_body", st.Limits.MaxBodyBytes).Int("max_header", st.Limits.MaxHeaderBytes).Int64("max_spool", st.Limits.MaxSpoolBytes).
		Str("spool_dir", st.Limits.SpoolDir).Str("header_timeout", st.HeaderTimeout.String()).Str("idle_timeout", st.IdleTimeout.String()).
		Bool("audit_fail_open", auditFailOpen(n.auditLog, n.audit.fail)).
		Msg("config and policy reloaded")
	sdNotify(r.log, daemon.SdNotifyReady, sdStatus("reloaded: policy %s, mode %s", p.Hash, n.mode))
	return nil
}
