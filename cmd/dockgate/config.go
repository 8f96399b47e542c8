package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/dockgate/dockgate/proxy"
)

// defaultConfigPath is read by "dockgate serve" and "dockgate check" when
// --config is not given, and only if it exists.
var defaultConfigPath = "/etc/dockgate/dockgate.yaml"

// fileConfig is the YAML config file. Every key is a serve flag; each value
// is kept as its YAML node so that a bad one can be reported with its line.
// Decoding with KnownFields(true) makes a misspelt key an error instead of
// a setting that silently does nothing.
type fileConfig struct {
	Listen        yaml.Node `yaml:"listen"`
	SocketMode    yaml.Node `yaml:"socket_mode"`
	SocketGroup   yaml.Node `yaml:"socket_group"`
	Upstream      yaml.Node `yaml:"upstream"`
	Policy        yaml.Node `yaml:"policy"`
	PolicyWatch   yaml.Node `yaml:"policy_watch"`
	Mode          yaml.Node `yaml:"mode"`
	MetricsListen yaml.Node `yaml:"metrics_listen"`
	ShutdownGrace yaml.Node `yaml:"shutdown_grace"`
	GCInterval    yaml.Node `yaml:"gc_interval"`
	Audit         struct {
		Log      yaml.Node `yaml:"log"`
		Fail     yaml.Node `yaml:"fail"`
		HMACKey  yaml.Node `yaml:"hmac_key"`
		MaxSize  yaml.Node `yaml:"max_size"`
		MaxAge   yaml.Node `yaml:"max_age"`
		Compress yaml.Node `yaml:"compress"`
		Syslog   yaml.Node `yaml:"syslog"`
		Journald yaml.Node `yaml:"journald"`
	} `yaml:"audit"`
	Limits struct {
		MaxConnections yaml.Node `yaml:"max_connections"`
		MaxPerCaller   yaml.Node `yaml:"max_connections_per_caller"`
		MaxBody        yaml.Node `yaml:"max_body"`
		MaxSpool       yaml.Node `yaml:"max_spool"`
		SpoolDir       yaml.Node `yaml:"spool_dir"`
		MaxHeader      yaml.Node `yaml:"max_header"`
		HeaderTimeout  yaml.Node `yaml:"header_timeout"`
		IdleTimeout    yaml.Node `yaml:"idle_timeout"`
	} `yaml:"limits"`
	TLS struct {
		Cert     yaml.Node `yaml:"cert"`
		Key      yaml.Node `yaml:"key"`
		ClientCA yaml.Node `yaml:"client_ca"`
	} `yaml:"tls"`
	Signatures struct {
		DockerConfig       yaml.Node `yaml:"docker_config"`
		CAFiles            yaml.Node `yaml:"ca_files"`
		Timeout            yaml.Node `yaml:"timeout"`
		InsecureRegistries yaml.Node `yaml:"insecure_registries"`
		CacheSize          yaml.Node `yaml:"cache_size"`
	} `yaml:"signatures"`
}

// configKey ties a config key to its flag and says how its value is checked.
type configKey struct {
	key, flag string
	node      *yaml.Node
	list      bool                 // a sequence (or one scalar)
	path      bool                 // a file or directory: relative to the config file
	check     func(v string) error // besides the flag's own parsing
}

func (c *fileConfig) keys() []configKey {
	return []configKey{
		{key: "listen", flag: "listen", node: &c.Listen, list: true},
		{key: "socket_mode", flag: "socket-mode", node: &c.SocketMode, check: checkOctalMode},
		{key: "socket_group", flag: "socket-group", node: &c.SocketGroup},
		{key: "upstream", flag: "upstream", node: &c.Upstream, check: checkUpstream},
		{key: "policy", flag: "policy", node: &c.Policy, path: true},
		{key: "policy_watch", flag: "policy-watch", node: &c.PolicyWatch, check: checkDuration},
		{key: "mode", flag: "mode", node: &c.Mode, check: oneOf("enforce", "audit")},
		{key: "metrics_listen", flag: "metrics-listen", node: &c.MetricsListen},
		{key: "shutdown_grace", flag: "shutdown-grace", node: &c.ShutdownGrace, check: checkDuration},
		{key: "gc_interval", flag: "gc-interval", node: &c.GCInterval, check: checkDuration},
		{key: "audit.log", flag: "audit-log", node: &c.Audit.Log, path: true},
		{key: "audit.fail", flag: "audit-fail", node: &c.Audit.Fail, check: oneOf("closed", "open")},
		{key: "audit.hmac_key", flag: "audit-hmac-key", node: &c.Audit.HMACKey, path: true},
		{key: "audit.max_size", flag: "audit-max-size", node: &c.Audit.MaxSize, check: checkSize},
		{key: "audit.max_age", flag: "audit-max-age", node: &c.Audit.MaxAge, check: checkDuration},
		{key: "audit.compress", flag: "audit-compress", node: &c.Audit.Compress, check: checkBool},
		{key: "audit.syslog", flag: "audit-syslog", node: &c.Audit.Syslog},
		{key: "audit.journald", flag: "audit-journald", node: &c.Audit.Journald, check: checkBool},
		{key: "limits.max_connections", flag: "max-connections", node: &c.Limits.MaxConnections, check: checkPositiveInt},
		{key: "limits.max_connections_per_caller", flag: "max-connections-per-caller", node: &c.Limits.MaxPerCaller, check: checkPositiveInt},
		{key: "limits.max_body", flag: "max-body", node: &c.Limits.MaxBody, check: checkSize},
		{key: "limits.max_spool", flag: "max-spool", node: &c.Limits.MaxSpool, check: checkSize},
		{key: "limits.spool_dir", flag: "spool-dir", node: &c.Limits.SpoolDir, path: true},
		{key: "limits.max_header", flag: "max-header", node: &c.Limits.MaxHeader, check: checkSize},
		{key: "limits.header_timeout", flag: "header-timeout", node: &c.Limits.HeaderTimeout, check: checkDuration},
		{key: "limits.idle_timeout", flag: "idle-timeout", node: &c.Limits.IdleTimeout, check: checkDuration},
		{key: "tls.cert", flag: "tls-cert", node: &c.TLS.Cert, path: true},
		{key: "tls.key", flag: "tls-key", node: &c.TLS.Key, path: true},
		{key: "tls.client_ca", flag: "tls-client-ca", node: &c.TLS.ClientCA, path: true},
		{key: "signatures.docker_config", flag: "signature-docker-config", node: &c.Signatures.DockerConfig, path: true},
		{key: "signatures.ca_files", flag: "signature-ca-file", node: &c.Signatures.CAFiles, list: true, path: true},
		{key: "signatures.timeout", flag: "signature-timeout", node: &c.Signatures.Timeout, check: checkPositiveDuration},
		{key: "signatures.insecure_registries", flag: "signature-insecure-registry", node: &c.Signatures.InsecureRegistries, list: true},
		{key: "signatures.cache_size", flag: "signature-cache-size", node: &c.Signatures.CacheSize, check: checkNonNegativeInt},
	}
}

// resolveConfigPath says which config file to read: the one given, or the
// default one if it exists, or none ("").
func resolveConfigPath(given string, set bool) (string, error) {
	if set {
		if given == "" {
			return "", nil // --config "": no config file at all
		}
		if _, err := os.Stat(given); err != nil {
			return "", fmt.Errorf("--config: %w", err)
		}
		return given, nil
	}
	if _, err := os.Stat(defaultConfigPath); err == nil {
		return defaultConfigPath, nil
	}
	return "", nil
}

// applyConfigFile reads the config file and sets, through fs, every flag
// that the command line did not set: flags given on the command line win.
func applyConfigFile(file string, fs *flag.FlagSet) error {
	setOnCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setOnCommandLine[f.Name] = true })
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var c fileConfig
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return yamlError(file, err)
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		return fmt.Errorf("%s:%d: a second YAML document; the config is one document", file, second.Line)
	}
	var problems []string
	for _, k := range c.keys() {
		n := k.node
		if n.Kind == 0 {
			continue
		}
		values, err := scalars(n, k.list)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %s: %v", file, n.Line, k.key, err))
			continue
		}
		for _, v := range values {
			if k.path && v != "" && v != "-" && !filepath.IsAbs(v) {
				v = filepath.Join(filepath.Dir(file), v)
			}
			// A bad value is an error even when a flag overrides it: the
			// file is wrong, and would be the moment the flag is dropped.
			if k.check != nil {
				if err := k.check(v); err != nil {
					problems = append(problems, fmt.Sprintf("%s:%d: %s: %q: %v", file, n.Line, k.key, v, err))
					continue
				}
			}
			if setOnCommandLine[k.flag] {
				continue
			}
			if err := fs.Set(k.flag, v); err != nil {
				problems = append(problems, fmt.Sprintf("%s:%d: %s: %q: %v", file, n.Line, k.key, v, err))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// scalars reads a node that must be a scalar, or for a list a sequence of
// scalars (or a single scalar).
func scalars(n *yaml.Node, list bool) ([]string, error) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil, errors.New("no value")
	case n.Kind == yaml.ScalarNode:
		return []string{n.Value}, nil
	case n.Kind == yaml.SequenceNode && list:
		var out []string
		for _, e := range n.Content {
			if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
				return nil, fmt.Errorf("line %d: want a string", e.Line)
			}
			out = append(out, e.Value)
		}
		return out, nil
	case list:
		return nil, errors.New("want a string or a list of strings")
	}
	return nil, errors.New("want a single value")
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
var yamlUnknown = regexp.MustCompile(`^field (\S+) not found in type .*$`)

// yamlError turns yaml.v3's "line N: …" into "FILE:N: …", one problem a line.
func yamlError(file string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		m = strings.TrimSpace(m)
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			msg := sm[2]
			if um := yamlUnknown.FindStringSubmatch(msg); um != nil {
				msg = fmt.Sprintf("unknown key %q", um[1])
			}
			out = append(out, fmt.Sprintf("%s:%s: %s", file, sm[1], msg))
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s", file, strings.TrimPrefix(m, "yaml: ")))
	}
	return errors.New(strings.Join(out, "\n"))
}

func checkOctalMode(v string) error {
	if m, err := strconv.ParseUint(v, 8, 32); err != nil || m > 0o777 {
		return errors.New("want an octal mode such as 0660")
	}
	return nil
}

func checkUpstream(v string) error {
	if !strings.HasPrefix(v, "unix://") && !strings.HasPrefix(v, "tcp://") {
		return errors.New("want unix:///path or tcp://host:port")
	}
	return nil
}

func checkDuration(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return errors.New("want a duration such as 30s or 24h")
	}
	return nil
}

func checkPositiveDuration(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return errors.New("want a positive duration such as 10s")
	}
	return nil
}

func checkNonNegativeInt(v string) error {
	if n, err := strconv.Atoi(v); err != nil || n < 0 {
		return errors.New("want a whole number of 0 or more")
	}
	return nil
}

func checkSize(v string) error {
	if n, err := units.RAMInBytes(v); err != nil || n < 1 {
		return errors.New("want a size such as 1MiB or 65536")
	}
	return nil
}

func checkBool(v string) error {
	if v != "true" && v != "false" {
		return errors.New("want true or false")
	}
	return nil
}

func checkPositiveInt(v string) error {
	if n, err := strconv.Atoi(v); err != nil || n < 1 {
		return errors.New("want a whole number of 1 or more")
	}
	return nil
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("want %s", strings.Join(allowed, " or "))
	}
}

// loadConfigFlags applies the config file --config names (or the default
// one, if it exists) to the flags the command line left unset, and records
// in o.config which file was read.
func loadConfigFlags(fs *flag.FlagSet, o *serveOptions) error {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "config" })
	file, err := resolveConfigPath(o.config, given)
	if err != nil {
		return err
	}
	o.config = file
	if file == "" {
		return nil
	}
	return applyConfigFile(file, fs)
}

// validateServe checks what runServe would check before it starts serving,
// without listening or connecting: for "dockgate check".
func validateServe(o *serveOptions) error {
	if _, err := proxy.ParseUpstream(o.upstream); err != nil {
		return err
	}
	if err := checkOctalMode(o.socketMode); err != nil {
		return fmt.Errorf("--socket-mode %q: %v", o.socketMode, err)
	}
	for _, l := range o.listen {
		network, _, err := proxy.ParseListenURL(l)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", l, err)
		}
		if network == "tcp" {
			if o.tlsCert == "" || o.tlsKey == "" || o.tlsClientCA == "" {
				return fmt.Errorf("--listen %s: a tcp:// listener needs --tls-cert, --tls-key and --tls-client-ca", l)
			}
			if _, err := proxy.TLSConfig(o.tlsCert, o.tlsKey, o.tlsClientCA); err != nil {
				return fmt.Errorf("--listen %s: %w", l, err)
			}
		}
	}
	if err := checkSize(o.maxBody); err != nil {
		return fmt.Errorf("--max-body %q: %v", o.maxBody, err)
	}
	if err := checkSize(o.maxSpool); err != nil {
		return fmt.Errorf("--max-spool %q: %v", o.maxSpool, err)
	}
	if _, err := auditOptions(o.auditLog, &o.audit, zerolog.Nop()); err != nil {
		return err
	}
	// The docker config and CA files are read as serve reads them.
	v, err := o.signatures.newVerifier()
	if err != nil {
		return err
	}
	v.Close()
	return nil
}
