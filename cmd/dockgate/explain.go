package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
)

const explainUsage = "usage: dockgate explain [--policy DIR] (--as SUBJECT [--as SUBJECT]... | --container NAME [--upstream URL]) [--image REF=REPO@DIGEST]... [--config FILE] [--signature-* ...] METHOD PATH [BODY_FILE|-]"

// explain is "dockgate explain": it routes one request as serve would,
// reads its facts, decides each for the given subjects with the policy
// (the embedded default without --policy), and prints every fact with its
// decision and rule, then the verdict. Exit status: 0 allowed, 1 refused,
// 2 usage or unreadable input.
func explain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return explainWith(authz.DefaultExtractor(), args, stdin, stdout, stderr)
}

// explainInput is what explain was asked.
type explainInput struct {
	as       []string // --as, in order
	subjects []string // as, with * added
	method   string
	target   string
	u        *url.URL
	body     []byte
	p        *policy.Policy
	// container is how --container's caller is judged, nil for --as;
	// daemon is the dockerd that said so, asked again by the decision.
	container *authz.ContainerCaller
	daemon    *dockerd.Client
	// images are the images --image says dockerd has.
	images []authz.OfflineImage
	// signatures is the registry access of a policy that verifies
	// signatures (nil for one that does not: explain then asks no
	// registry).
	signatures *explainSignatures
}

// explainWith is explain reading facts with extract (tests give their own).
func explainWith(extract authz.Extractor, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	in, code := parseExplain(args, stdin, stderr)
	if in == nil {
		return code
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	printExplainCaller(w, in)

	// The request path of the proxy (proxy/conn.go): route, read what the
	// route reads, judge.
	d := authz.NewPolicyDecider(in.p)
	d.Extract = extract
	d.Inspector = &authz.OfflineDaemon{Images: in.images, Undeclared: func(what string) string {
		return "explain does not ask dockerd: cannot judge " + what
	}}
	if in.signatures != nil {
		d.Signatures = in.signatures
		defer in.signatures.v.Close()
	}
	req := &authz.Request{Method: in.method, URL: in.u, Caller: in.as[0], Subjects: in.subjects, Cred: authz.CredOf(in.subjects)}
	if in.container != nil {
		d.Containers, req.ContainerID = in.daemon, in.container.ID
	}
	res, err := authz.JudgeOffline(context.Background(), d, req, in.body)
	if err != nil {
		fmt.Fprintf(stderr, "dockgate explain: %v\n", err)
		return 2
	}
	if res.Match == nil {
		// The proxy refuses these before any policy is consulted.
		fmt.Fprintf(w, "action:\tnone\n")
		w.Flush()
		fmt.Fprintf(stdout, "\nrefused (%d): dockgate: %s\n", res.Decision.Status, res.Decision.Reason)
		return 1
	}
	action := res.Match.Action
	if res.Match.APIVersion != "" {
		action += " (API " + res.Match.APIVersion + ")"
	}
	fmt.Fprintf(w, "action:\t%s\n", action)
	if res.BodyIgnored {
		fmt.Fprintf(w, "note:\tdockgate does not read the body of %s; it is forwarded as is\n", res.Match.Action)
	}
	if in.signatures != nil {
		for _, line := range in.signatures.lines() {
			fmt.Fprintf(w, "signature:\t%s\n", line)
		}
	}
	dec := res.Decision
	w.Flush()
	return printExplainVerdict(stdout, in.method, dec)
}

// parseExplain reads explain's flags, request and body, and loads the
// policy; a nil input means stop with the exit code.
func parseExplain(args []string, stdin io.Reader, stderr io.Writer) (*explainInput, int) {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("policy", "", "policy directory (default: the embedded default policy)")
	var as listFlag
	fs.Var(&as, "as", "a subject of the caller: uid:N, user:NAME, gid:N, group:NAME, unit:NAME, container:NAME, image:REPO, label:KEY=VALUE, cert:NAME, cert-dns:NAME, cert-uri:URI (repeatable; * is always added)")
	container := fs.String("container", "", "judge a caller running in this container (name or ID) of dockerd, as serve would: asks dockerd (--upstream) who it is")
	upstream := fs.String("upstream", "unix:///var/run/docker.sock", "dockerd's socket, for --container: unix:///path or tcp://host:port")
	var images listFlag
	fs.Var(&images, "image", "an image dockerd has, REF=REPO@DIGEST[,REPO@DIGEST]... (the name as a request uses it, and the registry digests it was pulled as): a create of REF is judged by them, as serve judges an image that is there (repeatable)")
	// The registry access for signatures is serve's: the config file's
	// signatures: section, or the same flags.
	fs.String("config", defaultConfigPath, "config file whose signatures: section gives the registry access for signature lookups (default: "+defaultConfigPath+" if it exists)")
	var sigFlags signatureOptions
	sigFlags.flags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, explainUsage)
		fs.PrintDefaults()
	}
	// Flags may come before, between or after the positional arguments.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0
			}
			return nil, 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if (len(as) == 0) == (*container == "") || len(pos) < 2 || len(pos) > 3 {
		fmt.Fprintln(stderr, explainUsage)
		return nil, 2
	}
	method, target := pos[0], pos[1]
	u, err := url.ParseRequestURI(target)
	if err != nil {
		fmt.Fprintf(stderr, "dockgate explain: %s: %v\n", target, err)
		return nil, 2
	}
	var body []byte
	if len(pos) == 3 {
		if pos[2] == "-" {
			body, err = io.ReadAll(stdin)
		} else {
			body, err = os.ReadFile(pos[2])
		}
		if err != nil {
			fmt.Fprintf(stderr, "dockgate explain: reading the body: %v\n", err)
			return nil, 2
		}
	}
	p, err := loadPolicy(*dir)
	if err != nil {
		printPolicyError(stderr, "explain", err)
		return nil, 2
	}

	in := &explainInput{as: as, method: method, target: target, u: u, body: body, p: p}
	for _, spec := range images {
		im, err := parseExplainImage(spec)
		if err != nil {
			fmt.Fprintf(stderr, "dockgate explain: --image %s: %v\n", spec, err)
			return nil, 2
		}
		in.images = append(in.images, im)
	}
	if p.VerifiesSignatures {
		o, err := parseServe(serveArgsOf(fs, "config", "signature-docker-config", "signature-ca-file", "signature-timeout", "signature-insecure-registry", "signature-cache-size"), io.Discard)
		if err != nil {
			fmt.Fprintf(stderr, "dockgate explain: %v\n", err)
			return nil, 2
		}
		v, err := o.signatures.newVerifier()
		if err != nil {
			fmt.Fprintf(stderr, "dockgate explain: %v\n", err)
			return nil, 2
		}
		in.signatures = &explainSignatures{v: v}
	}
	if *container != "" {
		if err := in.judgeContainer(*upstream, *container); err != nil {
			fmt.Fprintf(stderr, "dockgate explain: --container %s: %v\n", *container, err)
			return nil, 2
		}
		return in, 0
	}
	in.subjects = append([]string(nil), as...)
	if !contains(in.subjects, "*") {
		in.subjects = append(in.subjects, "*")
	}
	return in, 0
}

// judgeContainer asks dockerd at upstream who the container name is and
// judges a caller in it as serve would.
func (in *explainInput) judgeContainer(upstream, name string) error {
	daemon, err := dockerd.New(upstream)
	if err != nil {
		return err
	}
	ctx := context.Background()
	id, _, found, err := daemon.ObjectOwner(ctx, dockerd.ObjectContainer, name)
	if err != nil {
		return fmt.Errorf("asking dockerd: %w", err)
	}
	if !found {
		return fmt.Errorf("dockerd has no such container")
	}
	c, found, err := daemon.CallerContainer(ctx, id)
	if err != nil {
		return fmt.Errorf("asking dockerd: %w", err)
	}
	in.container = authz.JudgeContainer(in.p, id, c, found)
	in.daemon, in.subjects, in.as = daemon, in.container.Subjects, []string{in.container.String()}
	return nil
}

// printExplainCaller prints who asks what under which policy.
func printExplainCaller(w io.Writer, in *explainInput) {
	p, as, subjects := in.p, in.as, in.subjects
	fmt.Fprintf(w, "request:\t%s %s\n", in.method, in.target)
	fmt.Fprintf(w, "caller:\t%s (subjects: %s)\n", as[0], strings.Join(subjects, ", "))
	if c := in.container; c != nil {
		printExplainContainer(w, c)
	}
	fmt.Fprintf(w, "policy:\t%s (%s)\n", p.Source, p.Describe())
	if owner, err := p.Owner(subjects); err != nil {
		fmt.Fprintf(w, "tenant:\t%v\n", err)
	} else if owner != "" {
		tenant := "owner " + owner
		if ttl := p.TTL(subjects); ttl > 0 {
			tenant += ", objects expire after " + ttl.String()
		}
		fmt.Fprintf(w, "tenant:\t%s\n", tenant)
	}
	for _, s := range as {
		if in.container == nil && s != "*" && !isCallerSubject(s) {
			fmt.Fprintf(w, "note:\t%s is not a caller subject (uid:, user:, gid:, group:, unit:, container:, cert:, cert-dns:, cert-uri:); it stands for a caller who has it as a role\n", s)
		}
	}
}

// printExplainVerdict prints each fact with its decision and rule, then
// the verdict, and returns explain's exit status.
func printExplainVerdict(stdout io.Writer, method string, dec authz.Decision) int {
	if len(dec.Facts) > 0 {
		fmt.Fprintln(stdout, "\nfacts:")
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for _, f := range dec.Facts {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Decision, f.Kind, f.Value, f.Rule)
		}
		tw.Flush()
	}
	fmt.Fprintln(stdout)
	if dec.Allow {
		fmt.Fprintln(stdout, "allowed")
		// What a tenant's request becomes on its way to dockerd.
		if dec.Target != "" {
			fmt.Fprintf(stdout, "forwarded as: %s %s\n", method, dec.Target)
		}
		if dec.Body != nil {
			fmt.Fprintf(stdout, "forwarded body: %s\n", dec.Body)
		}
		for _, rw := range dec.Rewrites {
			fmt.Fprintf(stdout, "delegated: %s (the container gets dockgate's socket, never dockerd's)\n", strings.Replace(rw, " -> ", " becomes ", 1))
		}
		if dec.FilterResponse != nil {
			fmt.Fprintln(stdout, "the answer is filtered to the caller's own objects")
		}
		for _, step := range dec.PrepareSays {
			fmt.Fprintln(stdout, step)
		}
		if dec.Verify != nil {
			fmt.Fprintln(stdout, "the created container's image is checked against the image judged before the answer reaches the client")
		}
		return 0
	}
	fmt.Fprintf(stdout, "refused (%d): dockgate: %s\n", dec.Status, dec.Reason)
	return 1
}

// printExplainContainer prints why a container caller has its subjects:
// whose container it is, who made it, what rows gave it a host identity.
func printExplainContainer(w io.Writer, c *authz.ContainerCaller) {
	fmt.Fprintf(w, "container:\t%s\n", c.ID)
	switch {
	case !c.Known:
		fmt.Fprintln(w, "note:\tdockerd has no such container: its callers are judged as * alone")
	case c.Tenant != "":
		fmt.Fprintf(w, "acts for:\t%s, the tenant that created it; its name, image and labels give it nothing\n", c.Tenant)
	default:
		fmt.Fprintln(w, "note:\tno tenant created it: judged by its name, image and labels, never by its uid's host identity")
	}
	for _, r := range c.Granted {
		fmt.Fprintf(w, "host identity:\t%s, granted by %s\n", r.Pattern, r)
	}
	for _, set := range c.Creators {
		fmt.Fprintf(w, "capped by:\ta recorded creator, every fact must be allowed to it too: %s\n", strings.Join(set, ", "))
	}
}

func isCallerSubject(s string) bool {
	for _, pre := range []string{"uid:", "user:", "gid:", "group:", "unit:", "container:", "image:", "label:", "cert:", "cert-dns:", "cert-uri:"} {
		if strings.HasPrefix(s, pre) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
