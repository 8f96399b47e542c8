package policy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"

	"github.com/dockgate/dockgate/internal/signature"
	"github.com/dockgate/dockgate/policies"
)

// identityPrefixes start the subjects that name callers (BRIEF §3); every
// other name is a role.
var identityPrefixes = []string{"uid:", "user:", "gid:", "group:", "unit:", "container:", "image:", "label:", "cert:", "cert-dns:", "cert-uri:"}

// maxRoleDepth is casbin's default role manager's limit: links beyond ten
// hops are silently not followed, so a deeper chain is refused at load.
const maxRoleDepth = 10

// modelFile is the optional casbin model of a policy directory.
const modelFile = "model.conf"

// Error is a policy that cannot be loaded, located by file and line
// (Line is 0 for a problem with a whole file or the directory).
type Error struct {
	Path string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return e.Path + ": " + e.Msg
}

// Errors are all the problems found in one policy, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Rule is one "p" row of a policy.
type Rule struct {
	// File is the file name within the policy directory, Line its line.
	File string
	Line int
	// Subject is a caller subject or a role; Kind and Pattern are patterns
	// for the fact's kind and value; Effect is "allow" or "deny".
	Subject, Kind, Pattern, Effect string

	kind, value *Pattern
	deny        bool
	text        string
}

// String names the rule in decisions and refusals:
// "ci.csv:3: p, role:ci, endpoint, *, allow".
func (r *Rule) String() string { return r.text }

// RoleLink is one "g" row of a policy: Member is a member of Role.
type RoleLink struct {
	File         string
	Line         int
	Member, Role string
}

func (l *RoleLink) String() string {
	return fmt.Sprintf("%s:%d: %s", l.File, l.Line, rowText("g", l.Member, l.Role))
}

// Policy is a loaded, validated policy. It is immutable and safe for
// concurrent use; a reload builds a new one.
type Policy struct {
	// Source is the directory it was loaded from ("embedded:default" for
	// the built-in one).
	Source string
	// Hash is "sha256:<hex>" over the model and every CSV file, names and
	// contents, so that a log line says exactly which policy is in force.
	Hash string
	// Files are the files read, model.conf first when present; FileSums
	// the same files with the SHA-256 of the bytes that were loaded.
	Files    []string
	FileSums []File
	// Rules are the p rows in policy order (files in lexical order, then
	// lines), duplicates dropped; Links the g rows.
	Rules []*Rule
	Links []*RoleLink
	// CustomModel is set when the directory's model.conf differs from the
	// default model: decisions are then made by casbin row by row.
	CustomModel bool
	// Keys are the public keys of keys/<name>.pub, which the signature
	// fact's key:<name> values name (docs/supply-chain.md).
	Keys *signature.KeySet
	// VerifiesSignatures says that a row names the signature kind: only
	// then are images' signatures looked up, and every image reference
	// that resolves to a registry digest gets signature facts.
	VerifiesSignatures bool

	enforcer  *casbin.Enforcer
	ruleByKey map[string]int
	roles     []string
	index     *ruleIndex
	lookups   lookups
}

// Roles returns the role names the policy defines (the ROLE column of its
// g rows), sorted.
func (p *Policy) Roles() []string { return append([]string(nil), p.roles...) }

// Enforcer is the casbin enforcer loaded with the policy's model and rows:
// the reference for decisions. It must not be modified.
func (p *Policy) Enforcer() *casbin.Enforcer { return p.enforcer }

// LoadDir loads the policy directory dir from one snapshot of its
// files (ReadSnapshot): no file is ever half read.
func LoadDir(dir string) (*Policy, error) {
	s, err := ReadSnapshot(dir)
	if err != nil {
		return nil, err
	}
	return s.Load()
}

// Default loads the embedded default policy (BRIEF §3).
func Default() (*Policy, error) {
	sub, err := fs.Sub(policies.FS, policies.Default)
	if err != nil {
		return nil, err
	}
	return LoadFS(sub, "embedded:"+policies.Default)
}

// LoadFS loads a policy directory from the root of fsys; source
// names it in errors. It reads model.conf when present (else the embedded
// default model) and every *.csv file in lexical order; file names starting
// with "." and subdirectories are ignored. Every problem found is reported,
// each with its file and line, as Errors. fsys is read once: for a
// directory that may change while it is read, use LoadDir.
func LoadFS(fsys fs.FS, source string) (*Policy, error) {
	s, err := readSnapshotFS(fsys, source)
	if err != nil {
		return nil, err
	}
	return s.Load()
}

// Load parses and validates the snapshot's files.
func (s *Snapshot) Load() (*Policy, error) {
	source := s.Source
	l := &loader{source: source, seen: make(map[string]bool)}
	p := &Policy{Source: source, FileSums: append([]File(nil), s.Files...)}
	h := sha256.New()
	hashFile := func(name string, data []byte) {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(data))
		h.Write(data)
	}
	modelText, custom := policies.Model, false
	var keyFiles []signature.KeyFile
	for i, f := range s.Files {
		p.Files = append(p.Files, f.Name)
		hashFile(f.Name, s.data[i])
		if f.Name == modelFile {
			modelText, custom = string(s.data[i]), true
			continue
		}
		if key, ok := strings.CutPrefix(f.Name, keysDir+"/"); ok {
			keyFiles = append(keyFiles, signature.KeyFile{Name: key, Data: s.data[i]})
			continue
		}
		l.parseCSV(f.Name, s.data[i])
	}
	keys, err := signature.ParseKeys(keyFiles)
	var ke *signature.KeyError
	switch {
	case errors.As(err, &ke):
		l.errs = append(l.errs, &Error{Path: l.pathOf(path.Join(keysDir, ke.File)), Line: ke.Line, Msg: ke.Msg})
	case err != nil:
		l.errs = append(l.errs, &Error{Path: l.pathOf(keysDir), Msg: err.Error()})
	}
	p.Keys = keys
	l.checkSignatureRows(keys)
	if !custom {
		// The default model is part of what is enforced: hash it too, so
		// that two builds with different default models differ.
		hashFile("(default "+modelFile+")", []byte(policies.Model))
	}
	p.Hash = "sha256:" + hex.EncodeToString(h.Sum(nil))
	p.Rules, p.Links = l.rules, l.links
	for _, r := range p.Rules {
		if r.Kind == SignatureKind {
			p.VerifiesSignatures = true
		}
	}
	l.checkRoles()
	if len(l.errs) > 0 {
		return nil, l.errs
	}

	m, isDefault, err := loadModel(modelText)
	if err != nil {
		return nil, Errors{{Path: l.pathOf(modelFile), Msg: err.Error()}}
	}
	p.CustomModel = custom && !isDefault
	if len(p.Links) > 0 && m["g"]["g"] == nil {
		first := p.Links[0]
		return nil, Errors{{Path: l.pathOf(first.File), Line: first.Line, Msg: "g row, but " + modelFile + " has no role_definition g"}}
	}
	e, err := newEnforcer(m, p)
	if err != nil {
		return nil, Errors{{Path: l.pathOf(modelFile), Msg: err.Error()}}
	}
	p.enforcer = e
	p.ruleByKey = make(map[string]int, len(p.Rules))
	for i, r := range p.Rules {
		p.ruleByKey[ruleKey(r.Subject, r.Kind, r.Pattern, r.Effect)] = i
	}
	roleSet := make(map[string]bool)
	for _, ln := range p.Links {
		roleSet[ln.Role] = true
	}
	for r := range roleSet {
		p.roles = append(p.roles, r)
	}
	sort.Strings(p.roles)
	if p.lookups, err = buildLookups(p); err != nil {
		return nil, Errors{{Path: source, Msg: err.Error()}}
	}
	if !p.CustomModel {
		p.index = buildIndex(p)
	}
	return p, nil
}

// checkSignatureRows refuses signature rows that can never match: a value
// other than key:<name>, unsigned and unverified, and a key:<name> with no
// keys/<name>.pub, which is a typo or a key not installed.
func (l *loader) checkSignatureRows(keys *signature.KeySet) {
	have := map[string]bool{}
	for _, n := range keys.Names() {
		have[n] = true
	}
	for _, r := range l.rules {
		if r.Kind != SignatureKind || !r.value.IsLiteral() {
			continue
		}
		switch name, isKey := strings.CutPrefix(r.Pattern, "key:"); {
		case r.Pattern == SignatureUnsigned || r.Pattern == SignatureUnverified:
		case !isKey:
			l.errorf(r.File, r.Line, "signature value %q: want key:<name>, %s or %s", r.Pattern, SignatureUnsigned, SignatureUnverified)
		case !have[name]:
			l.errorf(r.File, r.Line, "signature key:%s: there is no %s/%s.pub (keys: %s)", name, keysDir, name, strings.Join(append([]string{"none"}, keys.Names()...)[min(1, len(keys.Names())):], ", "))
		}
	}
}

// loader is casbin's file adapter, rewritten to keep the file and
// line of every row and to validate each against dockgate's vocabulary.
type loader struct {
	source string
	rules  []*Rule
	links  []*RoleLink
	seen   map[string]bool
	errs   Errors
}

func (l *loader) pathOf(name string) string {
	if name == "" {
		return l.source
	}
	return path.Join(l.source, name)
}

func (l *loader) errorf(name string, line int, format string, args ...any) {
	l.errs = append(l.errs, &Error{Path: l.pathOf(name), Line: line, Msg: fmt.Sprintf(format, args...)})
}

// parseCSV reads one policy file. Lines are CSV (fields may be quoted),
// blank lines and lines whose first non-blank character is "#" are skipped.
func (l *loader) parseCSV(name string, data []byte) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields, err := splitRow(text)
		if err != nil {
			l.errorf(name, line, "not a CSV row: %v", err)
			continue
		}
		l.row(name, line, fields)
	}
	if err := sc.Err(); err != nil {
		l.errorf(name, line+1, "%v", err)
	}
}

// splitRow reads the fields of one row, each trimmed of white space. A
// row without a quote is split at its commas, which is what encoding/csv
// reads of it (FuzzSplitRow), without a CSV reader and its buffer for
// each of a large policy's lines; a row with one is read by encoding/csv.
func splitRow(text string) ([]string, error) {
	var fields []string
	if strings.IndexByte(text, '"') < 0 {
		fields = strings.Split(text, ",")
	} else {
		r := csv.NewReader(strings.NewReader(text))
		r.TrimLeadingSpace = true
		r.FieldsPerRecord = -1
		var err error
		if fields, err = r.Read(); err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, err
		}
	}
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return fields, nil
}

func (l *loader) row(name string, line int, f []string) {
	switch f[0] {
	case "p":
		if len(f) != 5 {
			l.errorf(name, line, "p row has %d fields, want 5: p, SUBJECT, KIND, PATTERN, EFFECT", len(f))
			return
		}
		l.policyRow(name, line, f[1], f[2], f[3], f[4])
	case "g":
		if len(f) != 3 {
			l.errorf(name, line, "g row has %d fields, want 3: g, SUBJECT, ROLE", len(f))
			return
		}
		l.roleRow(name, line, f[1], f[2])
	default:
		l.errorf(name, line, "unknown row type %q: want p (a rule) or g (a role membership)", f[0])
	}
}

func (l *loader) policyRow(name string, line int, sub, kind, pattern, effect string) {
	ok := true
	if err := checkSubject(sub); err != nil {
		l.errorf(name, line, "%v", err)
		ok = false
	}
	kp, err := CompilePattern(kind)
	switch {
	case err != nil:
		l.errorf(name, line, "kind: %v", err)
		ok = false
	case kind == TenantKind:
		if err := checkTenantPattern(pattern); err != nil {
			l.errorf(name, line, "%v", err)
			ok = false
		}
	case kind == TenantTTLKind:
		if err := checkTenantTTL(pattern, effect); err != nil {
			l.errorf(name, line, "%v", err)
			ok = false
		}
	case kind == HostIdentityKind:
		if err := checkHostIdentityRow(sub, pattern); err != nil {
			l.errorf(name, line, "%v", err)
			ok = false
		}
	case kp.IsLiteral() && !isFactKind(kind):
		l.errorf(name, line, "unknown fact kind %q (known: %s)", kind, strings.Join(factKinds, ", "))
		ok = false
	case !kp.IsLiteral() && !matchesAnyKind(kp):
		l.errorf(name, line, "kind pattern %q matches no fact kind (known: %s)", kind, strings.Join(factKinds, ", "))
		ok = false
	}
	vp, err := CompilePattern(pattern)
	if err != nil {
		l.errorf(name, line, "%v", err)
		ok = false
	}
	if effect != "allow" && effect != "deny" {
		hint := ""
		if strings.Contains(effect, "#") {
			hint = " (comments must be on a line of their own)"
		}
		l.errorf(name, line, "unknown effect %q: want allow or deny%s", effect, hint)
		ok = false
	}
	if !ok {
		return
	}
	key := ruleKey("p", sub, kind, pattern, effect)
	if l.seen[key] {
		// casbin keeps the first of identical rows; so does dockgate, and
		// the first one is the one a decision names.
		return
	}
	l.seen[key] = true
	l.rules = append(l.rules, &Rule{
		File: name, Line: line,
		Subject: sub, Kind: kind, Pattern: pattern, Effect: effect,
		kind: kp, value: vp, deny: effect == "deny",
		text: fmt.Sprintf("%s:%d: %s", name, line, rowText("p", sub, kind, pattern, effect)),
	})
}

func (l *loader) roleRow(name string, line int, member, role string) {
	ok := true
	if err := checkSubject(member); err != nil {
		l.errorf(name, line, "%v", err)
		ok = false
	}
	switch {
	case role == "":
		l.errorf(name, line, "empty role")
		ok = false
	case role == "*" || identitySubject(role):
		// g, user:alice, uid:0 would hand alice everything root may do.
		l.errorf(name, line, "role %q names a caller; a role must not start with %s or be * (by convention: role:NAME)", role, strings.Join(identityPrefixes, ", "))
		ok = false
	case strings.ContainsAny(role, "*?"):
		l.errorf(name, line, "role %q: role names are literal, not patterns", role)
		ok = false
	case hasControl(role):
		l.errorf(name, line, "role %q has a control character", role)
		ok = false
	}
	if !ok {
		return
	}
	key := ruleKey("g", member, role)
	if l.seen[key] {
		return
	}
	l.seen[key] = true
	l.links = append(l.links, &RoleLink{File: name, Line: line, Member: member, Role: role})
}

// checkRoles refuses role cycles and chains deeper than casbin follows.
func (l *loader) checkRoles() {
	edges := make(map[string][]*RoleLink)
	for _, ln := range l.links {
		edges[ln.Member] = append(edges[ln.Member], ln)
	}
	const (
		unvisited = iota
		active
		done
	)
	state := make(map[string]int)
	depth := make(map[string]int) // longest chain of links from a name
	var stack []*RoleLink
	reported := false
	var visit func(n string)
	visit = func(n string) {
		state[n] = active
		for _, ln := range edges[n] {
			switch state[ln.Role] {
			case active:
				if !reported {
					// The active path is stack[0].Member, then each link's
					// Role; the cycle starts where ln.Role is on it.
					var cycle []string
					for i := range stack {
						if stack[i].Member == ln.Role {
							for _, s := range stack[i:] {
								cycle = append(cycle, s.Member)
							}
							break
						}
					}
					cycle = append(cycle, ln.Member, ln.Role)
					l.errorf(ln.File, ln.Line, "role cycle: %s", strings.Join(cycle, " → "))
					reported = true
				}
				continue
			case unvisited:
				stack = append(stack, ln)
				visit(ln.Role)
				stack = stack[:len(stack)-1]
			}
			if d := depth[ln.Role] + 1; d > depth[n] {
				depth[n] = d
			}
		}
		state[n] = done
	}
	names := make([]string, 0, len(edges))
	for _, ln := range l.links {
		if _, ok := state[ln.Member]; !ok {
			names = append(names, ln.Member)
			state[ln.Member] = unvisited
		}
	}
	for _, n := range names {
		if state[n] == unvisited {
			visit(n)
		}
	}
	if reported {
		return
	}
	for _, ln := range l.links {
		if depth[ln.Member] > maxRoleDepth {
			l.errorf(ln.File, ln.Line, "role chain from %q is %d links long; casbin follows at most %d", ln.Member, depth[ln.Member], maxRoleDepth)
			return
		}
	}
}

// checkSubject validates the SUBJECT column: a caller subject (uid:0,
// user:alice, ...), "*" (every caller) or a role name. Subjects are names,
// never patterns: "*" alone is the subject every caller has.
func checkSubject(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty subject")
	case s == "*":
		return nil
	case strings.ContainsAny(s, "*?"):
		return fmt.Errorf("subject %q: subjects are names, not patterns (* alone means every caller)", s)
	case hasControl(s):
		return fmt.Errorf("subject %q has a control character", s)
	}
	for _, pre := range identityPrefixes {
		rest, ok := strings.CutPrefix(s, pre)
		if !ok {
			continue
		}
		if rest == "" {
			return fmt.Errorf("subject %q names nobody", s)
		}
		if pre == "uid:" || pre == "gid:" {
			// uid:007 would never match: callers are uid:7.
			n, err := strconv.ParseUint(rest, 10, 32)
			if err != nil || strconv.FormatUint(n, 10) != rest {
				return fmt.Errorf("subject %q: want a decimal number without leading zeros after %s", s, pre)
			}
		}
		return nil
	}
	return nil
}

func identitySubject(s string) bool {
	for _, pre := range identityPrefixes {
		if strings.HasPrefix(s, pre) {
			return true
		}
	}
	return false
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func isFactKind(k string) bool {
	for _, fk := range factKinds {
		if fk == k {
			return true
		}
	}
	return false
}

func matchesAnyKind(p *Pattern) bool {
	for _, fk := range factKinds {
		if p.Match(fk) {
			return true
		}
	}
	return false
}

// ruleKey identifies a row by its fields (not its place).
func ruleKey(fields ...string) string { return strings.Join(fields, "\x00") }

// rowText renders a row as a policy file would spell it, quoting fields
// that CSV would otherwise split or trim.
func rowText(fields ...string) string {
	out := make([]string, len(fields))
	for i, f := range fields {
		if f == "" || strings.ContainsAny(f, ",\"") || strings.TrimSpace(f) != f {
			f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
		}
		out[i] = f
	}
	return strings.Join(out, ", ")
}

// loadModel parses a casbin model and checks that it has the shape the
// decider calls it with: a request of three values (subject, fact kind,
// value) and rules of four (subject, kind, pattern, effect as p.eft).
// isDefault reports whether it is the default model, whatever its spacing
// and comments.
func loadModel(text string) (m model.Model, isDefault bool, err error) {
	m, err = model.NewModelFromString(text)
	if err != nil {
		return nil, false, err
	}
	r, p := m["r"]["r"], m["p"]["p"]
	if r == nil || len(r.Tokens) != 3 {
		return nil, false, fmt.Errorf("request_definition r must have three values (subject, fact kind, value)")
	}
	if p == nil || len(p.Tokens) != 4 || p.Tokens[3] != "p_eft" {
		return nil, false, fmt.Errorf("policy_definition p must have four values, the last eft (p = sub, kind, pattern, eft)")
	}
	for sec, asts := range m {
		if sec == "logger" {
			continue
		}
		for key := range asts {
			if key != sec {
				return nil, false, fmt.Errorf("%s: only %s is used; dockgate's rows are p and g", key, sec)
			}
		}
	}
	def, err := model.NewModelFromString(policies.Model)
	if err != nil {
		return nil, false, fmt.Errorf("embedded default model: %v", err)
	}
	return m, modelSignature(m) == modelSignature(def), nil
}

// modelSignature is a model's meaning as text: token lists and expressions
// without blanks.
func modelSignature(m model.Model) string {
	var b strings.Builder
	for _, sec := range []string{"r", "p", "g", "e", "m"} {
		ast := m[sec][sec]
		if ast == nil {
			b.WriteString(sec + "=;")
			continue
		}
		v := ast.Value
		if sec == "r" || sec == "p" {
			v = strings.Join(ast.Tokens, ",")
		}
		b.WriteString(sec + "=" + strings.Join(strings.Fields(v), "") + ";")
	}
	return b.String()
}

// adapter hands the loaded rows to casbin (persist.Adapter), in
// policy order, so that casbin's row indexes are the policy's.
type adapter struct{ p *Policy }

func (a adapter) LoadPolicy(m model.Model) error {
	for _, r := range a.p.Rules {
		if err := m.AddPolicy("p", "p", []string{r.Subject, r.Kind, r.Pattern, r.Effect}); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
	}
	for _, ln := range a.p.Links {
		if err := m.AddPolicy("g", "g", []string{ln.Member, ln.Role}); err != nil {
			return fmt.Errorf("%s: %w", ln, err)
		}
	}
	return nil
}

var errReadOnlyAdapter = errors.New("dockgate policies are edited as files")

func (adapter) SavePolicy(model.Model) error                { return errReadOnlyAdapter }
func (adapter) AddPolicy(string, string, []string) error    { return errReadOnlyAdapter }
func (adapter) RemovePolicy(string, string, []string) error { return errReadOnlyAdapter }
func (adapter) RemoveFilteredPolicy(string, string, int, ...string) error {
	return errReadOnlyAdapter
}

// newEnforcer builds the casbin enforcer with dockgate's pattern
// function and checks, with one trial request, that the matcher evaluates.
func newEnforcer(m model.Model, p *Policy) (*casbin.Enforcer, error) {
	patterns := make(map[string]*Pattern, 2*len(p.Rules))
	for _, r := range p.Rules {
		patterns[r.Kind], patterns[r.Pattern] = r.kind, r.value
	}
	e, err := casbin.NewEnforcer()
	if err != nil {
		return nil, err
	}
	// The function map is created by InitWithModelAndAdapter, and the
	// matcher is only compiled by the first Enforce: register in between.
	if err := e.InitWithModelAndAdapter(m, adapter{p}); err != nil {
		return nil, err
	}
	e.AddFunction("patternMatch", func(args ...any) (any, error) {
		if len(args) != 2 {
			return nil, fmt.Errorf("patternMatch wants 2 arguments, got %d", len(args))
		}
		v, ok1 := args[0].(string)
		pat, ok2 := args[1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("patternMatch wants strings")
		}
		cp := patterns[pat]
		if cp == nil {
			var err error
			if cp, err = CompilePattern(pat); err != nil {
				return false, nil
			}
		}
		return cp.Match(v), nil
	})
	if _, _, err := e.EnforceEx("*", "endpoint", "system.ping"); err != nil {
		return nil, fmt.Errorf("matchers: %v", err)
	}
	return e, nil
}
