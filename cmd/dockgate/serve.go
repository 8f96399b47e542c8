package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/internal/dockerd"
	"github.com/dockgate/dockgate/metrics"
	"github.com/dockgate/dockgate/proxy"
	"github.com/dockgate/dockgate/tenancy"
)

// serveOptions are the flags of "dockgate serve" (BRIEF §2).
type serveOptions struct {
	args        []string // the command line, parsed again on every reload
	config      string   // the config file read, or ""
	listen      listFlag
	socketMode  string
	socketGroup string
	upstream    string
	policy      string
	// policyWatch, when positive, reloads the policy directory once its
	// files have stayed unchanged this long; 0: reload on SIGHUP only.
	policyWatch time.Duration
	auditLog    string
	mode        string
	maxConns    int
	// maxConnsPerCaller is one caller's share of maxConns.
	maxConnsPerCaller int
	maxBody           string
	maxSpool          string
	spoolDir          string
	maxHeader         string
	// headerTimeout bounds reading a request head once it began;
	// idleTimeout closes keep-alive connections with no request.
	headerTimeout, idleTimeout time.Duration
	// TLS for tcp:// listeners: server certificate, key, client CA.
	tlsCert, tlsKey, tlsClientCA string
	// shutdownGrace is how long requests in flight may take after SIGTERM.
	shutdownGrace time.Duration
	audit         auditServeOptions
	// metricsListen is where /metrics, /healthz and /readyz are served.
	metricsListen string
	// gcInterval is how often expired tenant objects are removed; 0: never.
	gcInterval time.Duration
	// signatures is dockgate's own registry access for the signature fact.
	signatures signatureOptions
}

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// serveArgsOf is the serve command line that gives the flags names the
// values they were set to on fs: subcommands that read the config as serve
// reads it (check, gc) pass their own flags on through it.
func serveArgsOf(fs *flag.FlagSet, names ...string) []string {
	var args []string
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(names, f.Name) {
			return
		}
		if l, ok := f.Value.(*listFlag); ok {
			for _, v := range *l {
				args = append(args, "--"+f.Name, v)
			}
			return
		}
		args = append(args, "--"+f.Name, f.Value.String())
	})
	return args
}

func parseServe(args []string, stderr io.Writer) (*serveOptions, error) {
	o := &serveOptions{args: args}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", defaultConfigPath, "YAML config file; flags given on the command line override it (read only if it exists unless given)")
	fs.Var(&o.listen, "listen", "where to listen: unix:///path, or tcp://host:port with --tls-cert, --tls-key and --tls-client-ca (repeatable)")
	fs.StringVar(&o.socketMode, "socket-mode", "0660", "permissions of the Unix socket")
	fs.StringVar(&o.socketGroup, "socket-group", "", "group that owns the Unix socket")
	fs.StringVar(&o.upstream, "upstream", "unix:///var/run/docker.sock", "dockerd's socket: unix:///path or tcp://host:port")
	fs.StringVar(&o.policy, "policy", "", "policy directory (default: the embedded default policy)")
	fs.DurationVar(&o.policyWatch, "policy-watch", 0, "also reload the policy directory by itself once its files have changed and then stayed unchanged this long (e.g. 5s); 0: reload on SIGHUP (systemctl reload) only")
	fs.StringVar(&o.auditLog, "audit-log", "-", "audit log file, or - for stdout")
	fs.StringVar(&o.mode, "mode", "enforce", "enforce, or audit (forward everything, record what would be refused)")
	fs.IntVar(&o.maxConns, "max-connections", 1024, "concurrent client connections of all callers together, over every listener; more are answered 503 (the last 1/16, at most 64, are kept for root)")
	fs.IntVar(&o.maxConnsPerCaller, "max-connections-per-caller", 64, "concurrent client connections of one caller (a uid, a container, or a TLS certificate's common name); more are answered 503")
	fs.StringVar(&o.maxBody, "max-body", "2MiB", "largest request body that is read whole to be judged (container create and the like); larger ones get 413")
	fs.StringVar(&o.maxHeader, "max-header", "1MiB", "largest request head (request line and headers); larger ones get 431")
	fs.DurationVar(&o.headerTimeout, "header-timeout", 30*time.Second, "time allowed for a request head once its first byte arrived (slowloris); streams have no deadline")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 15*time.Minute, "a keep-alive connection with no request for this long is closed")
	fs.StringVar(&o.maxSpool, "max-spool", "8GiB", "largest tarball body (image load, build context, plugin create) spooled to a temporary file to be judged; larger ones get 413")
	fs.StringVar(&o.spoolDir, "spool-dir", "", "directory for spooled tarball bodies (default: $TMPDIR or /tmp)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "server certificate (PEM) for tcp:// listeners")
	fs.StringVar(&o.tlsKey, "tls-key", "", "server private key (PEM) for tcp:// listeners")
	fs.StringVar(&o.tlsClientCA, "tls-client-ca", "", "CA certificates (PEM) client certificates must chain to, for tcp:// listeners")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 30*time.Second, "after SIGTERM, how long requests in flight may finish before hijacked sessions and streams are closed")
	o.audit.flags(fs)
	o.signatures.flags(fs)
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus /metrics, /healthz and /readyz on host:port or unix:///path (default: off)")
	fs.DurationVar(&o.gcInterval, "gc-interval", time.Minute, "remove tenants' expired containers, networks and volumes (as dockgate gc --expired) this often; 0: never")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := loadConfigFlags(fs, o); err != nil {
		return nil, err
	}
	if len(o.listen) == 0 {
		o.listen = listFlag{"unix:///run/dockgate/docker.sock"}
	}
	if o.shutdownGrace < 0 {
		return nil, fmt.Errorf("--shutdown-grace %v: want zero or more", o.shutdownGrace)
	}
	if o.policyWatch < 0 {
		return nil, fmt.Errorf("--policy-watch %v: want zero (off) or a quiet period such as 5s", o.policyWatch)
	}
	if o.gcInterval < 0 {
		return nil, fmt.Errorf("--gc-interval %v: want zero or more", o.gcInterval)
	}
	if o.maxConns < 1 || o.maxConnsPerCaller < 1 {
		return nil, fmt.Errorf("--max-connections %d, --max-connections-per-caller %d: want 1 or more each", o.maxConns, o.maxConnsPerCaller)
	}
	if err := checkTLSFlags(o); err != nil {
		return nil, err
	}
	if err := o.signatures.check(); err != nil {
		return nil, err
	}
	if o.mode != "enforce" && o.mode != "audit" {
		return nil, fmt.Errorf("--mode %q: want enforce or audit", o.mode)
	}
	return o, nil
}

func serve(args []string, stderr io.Writer) int {
	log := zerolog.New(stderr).With().Timestamp().Str("type", "log").Logger()
	o, err := parseServe(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "dockgate serve: %v\n", err)
		return 2
	}
	if err := runServe(o, log); err != nil {
		log.Error().Err(err).Msg("dockgate stopped")
		return 1
	}
	return 0
}

func runServe(o *serveOptions, log zerolog.Logger) error {
	up, err := proxy.ParseUpstream(o.upstream)
	if err != nil {
		return err
	}
	mode, err := strconv.ParseUint(o.socketMode, 8, 32)
	if err != nil || mode > 0o777 {
		return fmt.Errorf("--socket-mode %q: want an octal mode such as 0660", o.socketMode)
	}
	// A policy that does not load stops startup: serving without one, or
	// with the default instead of the one asked for, would be a guess.
	policy, err := loadPolicy(o.policy)
	if err != nil {
		return fmt.Errorf("policy not loaded:\n%w", err)
	}
	settings, err := serveSettings(o)
	if err != nil {
		return err
	}
	// Everything dockgate asks dockerd itself goes through this one
	// client: the state some facts need (a named volume's options, the
	// mounts VolumesFrom copies), the exit codes of sessions, the expiry
	// gc and the readiness probe.
	daemon, err := dockerd.New(up.URL)
	if err != nil {
		return err
	}
	// dockgate's own registry access, for policies that verify
	// signatures; a reload may replace the verifier inside the holder.
	sigSource := o.signatures.source()
	verifier, err := o.signatures.newVerifier()
	if err != nil {
		return err
	}
	sigs := newSignatureHolder(verifier, sigSource)
	defer sigs.Close()
	var m *metrics.Metrics
	var observer proxy.Observer
	if o.metricsListen != "" {
		m = metrics.New()
		observer = m
		m.WatchSignatures(sigs.Stats)
	}
	// The audit sink is open before the policy is put in force: the policy
	// record that startup writes is what later records chain to.
	sink, err := openAudit(o.auditLog, &o.audit, log)
	if err != nil {
		return err
	}
	defer sink.Close()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	// The decider, its policy watch and what else a reload (SIGHUP)
	// changes; see reload.go.
	reloader := newConfigReloader(ctx, o, policy, log, m, daemon, sigs, sink)
	log.Info().Str("policy", policy.Source).Str("hash", policy.Hash).Int("rules", len(policy.Rules)).Int("roles", len(policy.Roles())).Bool("custom_model", policy.CustomModel).Str("policy_watch", o.policyWatch.String()).Strs("keys", policy.Keys.Names()).Bool("verifies_signatures", policy.VerifiesSignatures).Msg("policy loaded")

	srv := proxy.New(proxy.Config{
		Observer:      observer,
		Conns:         proxy.ConnLimits{Max: o.maxConns, PerCaller: o.maxConnsPerCaller},
		Limits:        settings.Limits,
		HeaderTimeout: settings.HeaderTimeout,
		IdleTimeout:   settings.IdleTimeout,
		Upstream:      up,
		ExitCodes:     daemon,
		Images:        daemon,
		Router:        authz.NewRouter(),
		Decider:       reloader.decider,
		Audit:         sink,
		Log:           log,
	})
	reloader.srv = srv
	go newMemoryReturner(srv.Requests).run(ctx)
	m.WatchConns(srv.AdmittedConns)
	// The metrics listener opens before the API sockets: whoever sees the
	// API socket accept (a test, a readiness probe) finds /healthz there too.
	if m != nil {
		l, err := metrics.Listen(o.metricsListen, o.listen, up)
		if err != nil {
			return fmt.Errorf("--metrics-listen %s: %w", o.metricsListen, err)
		}
		ms := &http.Server{Handler: m.Handler(up.URL, daemon), ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(l)
		defer ms.Close()
		log.Info().Str("metrics_listen", o.metricsListen).Msg("serving /metrics, /healthz and /readyz")
	}
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	// Under dockgate.socket, systemd made the sockets (with their mode and
	// group) and passes them; --listen is then not used.
	activated, err := activatedListeners()
	if err != nil {
		return err
	}
	listenURLs := o.listen
	if len(activated) > 0 {
		listenURLs = nil
		for _, l := range activated {
			listeners = append(listeners, l)
		}
		log.Info().Int("sockets", len(activated)).Msg("socket-activated: serving the sockets systemd passed instead of --listen")
	}
	for _, addr := range listenURLs {
		network, path, err := proxy.ParseListenURL(addr)
		if err != nil {
			return err
		}
		if network == "tcp" {
			l, err := listenTLS(o, path)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", addr, err)
			}
			listeners = append(listeners, l)
			continue
		}
		l, err := proxy.ListenUnix(path, os.FileMode(mode), o.socketGroup)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", addr, err)
		}
		listeners = append(listeners, l)
	}

	// Before anything is served: which host paths are Docker sockets, and
	// which socket a container's bind of dockerd's is given instead, are
	// known once the listeners are.
	reloader.decider.Extract = authz.NewExtractor(dockerSockets(up, listeners))
	reloader.watchSIGHUP(ctx)
	// dockerd's destroy events keep the client's owner cache true once
	// dockgate serves; while they do not arrive, owner lookups all go to dockerd.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		daemon.WatchEvents(ctx, func(up bool, err error) {
			if up {
				log.Info().Msg("owner cache: following dockerd's events")
				return
			}
			log.Warn().Err(err).Msg("owner cache: dockerd's events not arriving; owner lookups go to dockerd until they do")
		})
	}()
	defer func() {
		stop()
		<-watched
		daemon.Close()
	}()
	if o.gcInterval > 0 {
		defer tenancy.StartExpiry(ctx, daemon, o.gcInterval, log)()
	}
	log.Info().Str("config", o.config).Strs("listen", listenURLs).Int("activated_sockets", len(activated)).Str("upstream", up.URL).Str("mode", o.mode).Str("version", version).Msg("dockgate serving")
	if err := serveUntilStopped(ctx, srv, listeners, o.shutdownGrace, log); err != nil {
		return err
	}
	log.Info().Msg("dockgate stopped")
	return nil
}
