package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// writePolicy writes files (name → content) into a new directory.
func writePolicy(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadTestPolicy(t testing.TB, files map[string]string) *Policy {
	t.Helper()
	p, err := LoadDir(writePolicy(t, files))
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	return p
}

func TestPolicyLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		// want are substrings of the error, in order; the first names
		// the file and line.
		want []string
	}{
		{"unknown kind is a check error with file and line",
			map[string]string{"ci.csv": "# CI\n\np, role:ci, capabilty, SYS_ADMIN, allow\n"},
			[]string{`ci.csv:3: unknown fact kind "capabilty"`}},
		{"kind pattern that matches no kind",
			map[string]string{"a.csv": "p, *, volume*x, **, allow\n"},
			[]string{`a.csv:1: kind pattern "volume*x" matches no fact kind`}},
		{"a host identity is granted to containers, not to everyone",
			map[string]string{"a.csv": "p, *, host-identity, uid:0, allow\n"},
			[]string{`a.csv:1: host-identity: the subject must be a container subject`}},
		{"a host identity is not granted to a host caller",
			map[string]string{"a.csv": "p, user:alice, host-identity, uid:0, allow\n"},
			[]string{`a.csv:1: host-identity: the subject must be a container subject`}},
		{"a host identity grant names a host identity",
			map[string]string{"a.csv": "p, container:x, host-identity, container:y, allow\n"},
			[]string{`a.csv:1: host-identity: the value must be one host identity subject`}},
		{"a host identity grant is literal",
			map[string]string{"a.csv": "p, container:x, host-identity, uid:*, allow\n"},
			[]string{`a.csv:1: host-identity: the value "uid:*" must be literal`}},
		{"a role named like a container subject",
			map[string]string{"a.csv": "g, user:alice, label:role=infra\n"},
			[]string{`a.csv:1: role "label:role=infra" names a caller`}},
		{"unknown effect",
			map[string]string{"a.csv": "p, *, endpoint, *, permit\n"},
			[]string{`a.csv:1: unknown effect "permit"`}},
		{"effect is case-sensitive as in casbin",
			map[string]string{"a.csv": "p, *, endpoint, *, Allow\n"},
			[]string{`a.csv:1: unknown effect "Allow"`}},
		{"a comment after a row is not a comment",
			map[string]string{"a.csv": "p, *, endpoint, *, allow # everything\n"},
			[]string{"a.csv:1: unknown effect", "comments must be on a line of their own"}},
		{"bad pattern",
			map[string]string{"a.csv": "p, *, endpoint, *, allow\np, *, bind, /srv/***, allow\n"},
			[]string{"a.csv:2:", "three or more"}},
		{"empty pattern",
			map[string]string{"a.csv": "p, *, bind, , allow\n"},
			[]string{"a.csv:1: empty pattern"}},
		{"p row with too few fields",
			map[string]string{"a.csv": "p, *, endpoint, allow\n"},
			[]string{"a.csv:1: p row has 4 fields, want 5"}},
		{"p row with too many fields",
			map[string]string{"a.csv": "p, *, endpoint, *, allow, extra\n"},
			[]string{"a.csv:1: p row has 6 fields, want 5"}},
		{"g row with a domain",
			map[string]string{"a.csv": "g, user:a, role:x, dom\n"},
			[]string{"a.csv:1: g row has 4 fields, want 3"}},
		{"unknown row type",
			map[string]string{"a.csv": "p2, *, endpoint, *, allow\n"},
			[]string{`a.csv:1: unknown row type "p2"`}},
		{"unbalanced quote",
			map[string]string{"a.csv": "p, *, bind, \"/srv, allow\n"},
			[]string{"a.csv:1: not a CSV row"}},
		{"role cycle",
			map[string]string{"a.csv": "g, role:a, role:b\ng, role:b, role:c\ng, role:c, role:a\n"},
			[]string{"a.csv:3: role cycle: role:a → role:b → role:c → role:a"}},
		{"role that is a member of itself",
			map[string]string{"a.csv": "g, role:a, role:a\n"},
			[]string{"a.csv:1: role cycle: role:a → role:a"}},
		{"role chain deeper than casbin follows",
			map[string]string{"a.csv": roleChain(12)},
			[]string{"a.csv:1: role chain from \"user:u\" is 12 links long"}},
		{"a role named like a caller would hand out that caller's rights",
			map[string]string{"a.csv": "g, user:mallory, uid:0\n"},
			[]string{`a.csv:1: role "uid:0" names a caller`}},
		{"everyone is not a role",
			map[string]string{"a.csv": "g, user:a, *\n"},
			[]string{`a.csv:1: role "*" names a caller`}},
		{"subjects are names, not patterns",
			map[string]string{"a.csv": "p, user:*, endpoint, *, allow\n"},
			[]string{`a.csv:1: subject "user:*": subjects are names`}},
		{"uid with leading zeros never matches a caller",
			map[string]string{"a.csv": "p, uid:007, endpoint, *, allow\n"},
			[]string{`a.csv:1: subject "uid:007"`}},
		{"gid that is not a number",
			map[string]string{"a.csv": "g, gid:docker, role:x\n"},
			[]string{`a.csv:1: subject "gid:docker"`}},
		{"directory without csv files",
			map[string]string{"README": "nothing here\n"},
			[]string{"no *.csv policy files"}},
		{"every problem is reported, files in lexical order",
			map[string]string{
				"20-b.csv": "p, *, endpoint, *, alow\n",
				"10-a.csv": "p, *, endpont, *, allow\n",
			},
			[]string{"10-a.csv:1: unknown fact kind", "20-b.csv:1: unknown effect"}},
		{"model without an effect column",
			map[string]string{
				"model.conf": "[request_definition]\nr = sub, kind, value\n[policy_definition]\np = sub, kind, pattern\n[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = r.sub == p.sub\n",
				"a.csv":      "p, *, endpoint, *, allow\n",
			},
			[]string{"model.conf: policy_definition p must have four values"}},
		{"g rows need a role definition in a custom model",
			map[string]string{
				"model.conf": "[request_definition]\nr = sub, kind, value\n[policy_definition]\np = sub, kind, pattern, eft\n[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = r.sub == p.sub && patternMatch(r.kind, p.kind) && patternMatch(r.value, p.pattern)\n",
				"a.csv":      "g, user:a, role:x\n",
			},
			[]string{"a.csv:1: g row, but model.conf has no role_definition g"}},
		{"matcher that does not evaluate",
			map[string]string{
				"model.conf": "[request_definition]\nr = sub, kind, value\n[policy_definition]\np = sub, kind, pattern, eft\n[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = nosuchFunction(r.sub, p.sub)\n",
				"a.csv":      "p, *, endpoint, *, allow\n",
			},
			[]string{"model.conf: matchers:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writePolicy(t, tt.files)
			p, err := LoadDir(dir)
			if err == nil {
				t.Fatalf("loaded a policy with %d rules, want an error", len(p.Rules))
			}
			msg := err.Error()
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q does not contain %q (in order)", msg, w)
				}
				rest = rest[i+len(w):]
			}
			if !strings.HasPrefix(msg, dir) {
				t.Errorf("error %q does not start with the policy directory", msg)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Errorf("error is not a *Error")
			}
		})
	}
}

// roleChain writes g rows user:u → role:1 → … → role:n.
func roleChain(n int) string {
	var b strings.Builder
	prev := "user:u"
	for i := 1; i <= n; i++ {
		role := "role:" + string(rune('a'+i))
		b.WriteString("g, " + prev + ", " + role + "\n")
		prev = role
	}
	b.WriteString("p, " + prev + ", endpoint, *, allow\n")
	return b.String()
}

func TestPolicyRoleChainOfTenLoads(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"a.csv": roleChain(maxRoleDepth)})
	if v := p.DecideFact([]string{"user:u"}, Fact{"endpoint", "system.ping"}); !v.Allow {
		t.Fatalf("ten links deep: refused (%s)", v.RuleText())
	}
	if v := p.EnforceFact([]string{"user:u"}, Fact{"endpoint", "system.ping"}); !v.Allow {
		t.Fatalf("casbin: ten links deep refused")
	}
}

func TestPolicyDecisions(t *testing.T) {
	files := map[string]string{
		"10-base.csv": `# base rules
p, uid:0, *, **, allow

g, user:alice, role:dev
g, group:ci, role:ci
g, role:ci, role:builder
g, *, role:everyone

p, role:everyone, endpoint, system.ping, allow
p, role:dev, endpoint, container.*, allow
p, role:builder, endpoint, build.run, allow
p, user:alice, bind, /srv/cache/**, allow
p, group:ci, bind, /srv/cache/secret/**, deny
p, role:ci, capability, NET_ADMIN, deny
p, user:alice, capability, NET_ADMIN, allow
p, *, image, docker.io/library/*, allow
p, *, image, docker.io/library/busybox:*, allow
p, user:bob, image, docker.io/library/**, deny
p, user:bob, image, docker.io/library/alpine:*, deny
p, user:carol, *, **, allow
p, user:carol, *, *.sock, deny
p, user:alice, endpoint, image.pull, allow
p, user:alice, endpoint, image.pull, allow
`,
		"20-more.csv": `p, user:dave, volume-option, type=tmpfs, allow
p, user:dave, v*, **, allow
`,
	}
	p := loadTestPolicy(t, files)
	tests := []struct {
		name     string
		subjects []string
		fact     Fact
		allow    bool
		rule     string // substring of the deciding rule's text
	}{
		{"root may do everything", []string{"uid:0", "*"}, Fact{"privileged", "container"}, true, "10-base.csv:2: p, uid:0, *, **, allow"},
		{"no rule allows it", []string{"uid:1000", "*"}, Fact{"privileged", "container"}, false, NoRuleAllows},
		{"role of everyone", []string{"uid:1000", "*"}, Fact{"endpoint", "system.ping"}, true, "10-base.csv:9:"},
		{"role of a subject", []string{"user:alice", "*"}, Fact{"endpoint", "container.create"}, true, "p, role:dev, endpoint, container.*, allow"},
		{"role of a role", []string{"group:ci", "*"}, Fact{"endpoint", "build.run"}, true, "p, role:builder, endpoint, build.run, allow"},
		{"a role's rows are not its members' rows", []string{"role:builder"}, Fact{"bind", "/srv/cache"}, false, NoRuleAllows},
		{"trailing /** matches the dir itself", []string{"user:alice"}, Fact{"bind", "/srv/cache"}, true, "p, user:alice, bind, /srv/cache/**, allow"},
		{"trailing /** does not match a sibling with the same prefix", []string{"user:alice"}, Fact{"bind", "/srv/cache-evil"}, false, NoRuleAllows},
		{"subjects apply at once", []string{"user:alice", "group:ci"}, Fact{"endpoint", "build.run"}, true, "role:builder"},
		{"deny wins over allow of another subject", []string{"user:alice", "group:ci", "*"}, Fact{"bind", "/srv/cache/secret/key"}, false, "p, group:ci, bind, /srv/cache/secret/**, deny"},
		{"deny of another subject does not touch other values", []string{"user:alice", "group:ci", "*"}, Fact{"bind", "/srv/cache/public"}, true, "user:alice"},
		{"deny of a role wins over the subject's own allow", []string{"user:alice", "group:ci"}, Fact{"capability", "NET_ADMIN"}, false, "p, role:ci, capability, NET_ADMIN, deny"},
		{"without the denying role the allow stands", []string{"user:alice"}, Fact{"capability", "NET_ADMIN"}, true, "p, user:alice, capability, NET_ADMIN, allow"},
		{"the first allow row is named", []string{"*"}, Fact{"image", "docker.io/library/busybox:latest"}, true, "p, *, image, docker.io/library/*, allow"},
		{"the first deny row is named, even after a later allow", []string{"user:bob", "*"}, Fact{"image", "docker.io/library/alpine:3"}, false, "p, user:bob, image, docker.io/library/**, deny"},
		{"star does not cross a slash", []string{"*"}, Fact{"image", "docker.io/library/team/app:1"}, false, NoRuleAllows},
		{"kind * covers every kind", []string{"user:carol"}, Fact{"device", "/dev/fuse"}, true, "p, user:carol, *, **, allow"},
		{"deny with kind * refuses every kind", []string{"user:carol"}, Fact{"bind", "docker.sock"}, false, "p, user:carol, *, *.sock, deny"},
		{"kind * covers kinds no list knows", []string{"user:carol"}, Fact{"future-kind", "x"}, true, "p, user:carol, *, **, allow"},
		{"a literal kind does not cover other kinds", []string{"*"}, Fact{"future-kind", "docker.io/library/busybox:latest"}, false, NoRuleAllows},
		{"kind patterns", []string{"user:dave"}, Fact{"volume-driver", "nfs"}, true, "20-more.csv:2: p, user:dave, v*, **, allow"},
		{"files are read in lexical order", []string{"user:dave"}, Fact{"volume-option", "type=tmpfs"}, true, "20-more.csv:1:"},
		{"a duplicate row is named by its first line", []string{"user:alice"}, Fact{"endpoint", "image.pull"}, true, "10-base.csv:22:"},
		{"no subjects, no rights", nil, Fact{"endpoint", "system.ping"}, false, NoRuleAllows},
		{"a caller is not its role by name", []string{"role:everyone"}, Fact{"endpoint", "system.ping"}, true, "role:everyone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"index", "casbin"} {
				var v Verdict
				if path == "index" {
					v = p.DecideFact(tt.subjects, tt.fact)
				} else {
					v = p.EnforceFact(tt.subjects, tt.fact)
				}
				if v.Allow != tt.allow || !strings.Contains(v.RuleText(), tt.rule) {
					t.Errorf("%s: %v for %v = allow %v by %q, want allow %v by %q", path, tt.fact, tt.subjects, v.Allow, v.RuleText(), tt.allow, tt.rule)
				}
			}
		})
	}
	if got, want := len(p.Rules), 17; got != want {
		t.Errorf("%d rules, want %d (the duplicate dropped)", got, want)
	}
	if got, want := strings.Join(p.Roles(), ","), "role:builder,role:ci,role:dev,role:everyone"; got != want {
		t.Errorf("roles %s, want %s", got, want)
	}
}

func TestPolicyCSVSpelling(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"a.csv": "\ufeff  # indented comment\r\n" +
		"p,*,endpoint,system.ping,allow\r\n" +
		"   p ,  *  , bind , \"/srv/a,b/**\", allow   \r\n"})
	if len(p.Rules) != 2 {
		t.Fatalf("%d rules, want 2", len(p.Rules))
	}
	if got, want := p.Rules[1].String(), `a.csv:3: p, *, bind, "/srv/a,b/**", allow`; got != want {
		t.Errorf("rule text %q, want %q", got, want)
	}
	if v := p.DecideFact([]string{"*"}, Fact{"bind", "/srv/a,b/c"}); !v.Allow {
		t.Errorf("quoted pattern with a comma does not match")
	}
}

const customModelAllowOverride = `[request_definition]
r = sub, kind, value
[policy_definition]
p = sub, kind, pattern, eft
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub) && patternMatch(r.kind, p.kind) && keyMatch(r.value, p.pattern)
`

func TestPolicyCustomModelIsDecidedByCasbin(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{
		"model.conf": customModelAllowOverride,
		"a.csv": `g, user:a, role:x
p, role:x, bind, /srv/*, allow
p, user:a, bind, /srv/secret, deny
`,
	})
	if !p.CustomModel {
		t.Fatal("a model with another effect and matcher is not custom")
	}
	// keyMatch's * crosses slashes, and this effect ignores deny rows.
	for _, v := range []string{"/srv/a/b", "/srv/secret"} {
		if d := p.DecideFact([]string{"user:a"}, Fact{"bind", v}); !d.Allow || !strings.Contains(d.RuleText(), "a.csv:2:") {
			t.Errorf("%s: allow %v by %q, want allowed by a.csv:2", v, d.Allow, d.RuleText())
		}
	}
	if d := p.DecideFact([]string{"user:b"}, Fact{"bind", "/srv/a"}); d.Allow {
		t.Errorf("user:b allowed by %q", d.RuleText())
	}
	if !strings.Contains(p.Describe(), "custom model.conf") {
		t.Errorf("Describe() = %q does not say the model is custom", p.Describe())
	}
}

func TestPolicyDefaultModelSpelledDifferentlyIsNotCustom(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{
		"model.conf": `# the default model, reformatted
[request_definition]
r = sub,kind,value
[policy_definition]
p = sub,  kind, pattern, eft
[role_definition]
g = _,_
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
[matchers]
m = g(r.sub, p.sub)&&patternMatch(r.kind, p.kind) && patternMatch(r.value, p.pattern)
`,
		"a.csv": "p, *, endpoint, *, allow\n",
	})
	if p.CustomModel {
		t.Fatal("the default model with other spacing is treated as custom: the fast path is lost")
	}
}

func TestPolicyHash(t *testing.T) {
	files := map[string]string{"a.csv": "p, *, endpoint, *, allow\n", "b.csv": "p, *, image, **, allow\n"}
	p1 := loadTestPolicy(t, files)
	p2 := loadTestPolicy(t, files)
	if p1.Hash != p2.Hash || !strings.HasPrefix(p1.Hash, "sha256:") || len(p1.Hash) != len("sha256:")+64 {
		t.Fatalf("same files, hashes %s and %s", p1.Hash, p2.Hash)
	}
	files["b.csv"] = "p, *, image, **, allow\n\n"
	if p3 := loadTestPolicy(t, files); p3.Hash == p1.Hash {
		t.Fatal("a changed file keeps the hash")
	}
	renamed := map[string]string{"a.csv": files["a.csv"], "c.csv": files["b.csv"]}
	if p4 := loadTestPolicy(t, renamed); p4.Hash == p1.Hash {
		t.Fatal("a renamed file keeps the hash")
	}
	files["model.conf"] = customModelAllowOverride
	if p5 := loadTestPolicy(t, files); p5.Hash == p1.Hash {
		t.Fatal("a model.conf keeps the hash")
	}
}

func TestPolicyIgnoresOtherFiles(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		"a.csv":       "p, *, endpoint, *, allow\n",
		".a.csv.swp":  "garbage",
		"README.md":   "garbage",
		"notes.csv~":  "garbage",
		".hidden.csv": "garbage",
	})
	if err := os.Mkdir(filepath.Join(dir, "sub.csv"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Files, ",") != "a.csv" {
		t.Fatalf("files read: %v", p.Files)
	}
}

func TestDefaultPolicyLoads(t *testing.T) {
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if p.CustomModel || p.Source != "embedded:default" || len(p.Rules) == 0 {
		t.Fatalf("default policy: %s from %s", p.Describe(), p.Source)
	}
}

func TestLoadPolicyDirThatIsNotADirectory(t *testing.T) {
	if _, err := LoadDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing directory loads")
	}
	f := filepath.Join(t.TempDir(), "file.csv")
	os.WriteFile(f, []byte("p, *, endpoint, *, allow\n"), 0o644)
	if _, err := LoadDir(f); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("a file as policy directory: %v", err)
	}
}

func TestPolicyCustomModelIsSafeForConcurrentDecisions(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{
		"model.conf": customModelAllowOverride,
		"a.csv":      "g, user:a, role:x\np, role:x, bind, /srv/*, allow\np, *, endpoint, *, allow\n",
	})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if !p.DecideFact([]string{"user:a", "*"}, Fact{"bind", "/srv/x"}).Allow {
					t.Error("refused")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestHostIdentitiesAreGrantedByRowsOnly: a container's host identity
// comes from host-identity rows of its subjects or its roles, less denied
// ones, and from nothing else (a p row of kind * grants none).
func TestHostIdentitiesAreGrantedByRowsOnly(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"a.csv": `
g, image:docker.io/library/backup, role:backup
p, role:backup, host-identity, user:backup, allow
p, role:backup, host-identity, group:backup, allow
p, label:env=prod, host-identity, group:backup, deny
p, container:admin, *, **, allow
`})
	for _, tc := range []struct {
		subjects []string
		want     []string
	}{
		{[]string{"container:nightly", "image:docker.io/library/backup", "*"}, []string{"user:backup", "group:backup"}},
		{[]string{"container:nightly", "image:docker.io/library/backup", "label:env=prod", "*"}, []string{"user:backup"}},
		{[]string{"container:admin", "*"}, nil},
		{[]string{"*"}, nil},
	} {
		got, rows := p.HostIdentities(tc.subjects)
		if !slices.Equal(got, tc.want) || len(rows) != len(tc.want) {
			t.Errorf("%q: granted %q by %v, want %q", tc.subjects, got, rows, tc.want)
		}
	}
}
