package suggest

import (
	"cmp"
	"path"
	"slices"
	"strings"
	"unicode"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
)

// Why a row is written commented out, beyond what policy.HostRoot says.
const (
	dangerOtherTenant = "allowing it lets a tenant touch objects it did not create (another tenant's, or one created outside dockgate): the owner fact is what keeps tenants apart"
	dangerReplaceable = "no row should allow it: the caller could point the path at any host directory, dockerd's socket included, between the decision and dockerd's mount (docs/policy-language.md, \"Host paths the caller can change\")"
	dangerUnknownKind = "it is not a fact kind this dockgate knows (a trail of another version?)"
	dangerUnwritable  = "its value holds characters that a pattern cannot say literally (*, ?, a comma, a quote, a control character): write the row by hand"
)

// kindOrder is the order of a principal's rows by kind: what it may call,
// then what it may run, then what it may take from the host.
var kindOrder = []string{"endpoint", policy.TenantKind, policy.OwnerKind, "image", "local-image", "image-target", policy.SignatureKind, "bind"}

func kindRank(k string) int {
	if i := slices.Index(kindOrder, k); i >= 0 {
		return i
	}
	return len(kindOrder)
}

func (l *learner) finish() *Suggestion {
	s := l.sug
	allActions := actionsByResource(l.actions)
	givesHost := authz.GivesHost()
	for _, p := range l.order {
		pr := &Principal{Subject: p.subject}
		byKind := map[string][]policy.Fact{}
		for f := range p.facts {
			byKind[f.Kind] = append(byKind[f.Kind], f)
		}
		for kind, facts := range byKind {
			values := make([]string, len(facts))
			for i, f := range facts {
				values[i] = f.Value
			}
			slices.Sort(values)
			var groups []group
			switch kind {
			case "endpoint":
				groups = endpointGroups(values, allActions, givesHost)
			case "image", "local-image", "image-target":
				groups = imageGroups(values)
			case "bind":
				groups = bindGroups(values)
			default:
				groups = exactGroups(kind, values)
			}
			for _, g := range groups {
				pr.Rows = append(pr.Rows, p.row(kind, g))
			}
		}
		if p.owner {
			pr.Tenant = l.tenantPrefix(p)
		}
		slices.SortFunc(pr.Rows, func(a, b Row) int {
			return cmp.Or(cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Pattern, b.Pattern))
		})
		if len(pr.Rows) > 0 {
			s.Principals = append(s.Principals, pr)
		}
		s.Cases = append(s.Cases, p.cases.allow...)
		s.refusals = append(s.refusals, p.cases.deny...)
	}
	s.Links = l.roleLinks()
	return s
}

// group is one row to be: its pattern, the values it covers, and why it
// is commented out ("" when it is not).
type group struct {
	pattern string
	values  []string
	danger  string
}

// row counts the requests a group covers (each once, however many of
// its values it had) and takes the first as the example.
func (p *learned) row(kind string, g group) Row {
	seen := map[int32]bool{}
	var first int32 = -1
	example := ""
	for _, v := range g.values {
		u := p.facts[policy.Fact{Kind: kind, Value: v}]
		for _, s := range u.seqs {
			seen[s] = true
		}
		if first < 0 || u.seqs[0] < first {
			first, example = u.seqs[0], u.example
		}
	}
	r := Row{Kind: kind, Pattern: g.pattern, Requests: len(seen), Example: example, Danger: g.danger}
	if _, err := policy.CompilePattern(g.pattern); r.Danger == "" && (!literal(g.values) || err != nil) {
		r.Danger = dangerUnwritable
	}
	if !slices.Contains(policy.FactKinds(), kind) || !literal([]string{kind}) {
		r.Danger = dangerUnknownKind
	}
	return r
}

// literal says whether values can stand in a row as they are: a pattern
// has no escapes, so * and ? would match more than the value, and a CSV
// row has no room for commas, quotes or line breaks.
func literal(values []string) bool {
	for _, v := range values {
		if v == "" || strings.TrimSpace(v) != v || strings.ContainsAny(v, "*?,\"") || strings.ContainsFunc(v, unicode.IsControl) {
			return false
		}
	}
	return true
}

// exactGroups are one row per value, commented out where allowing the
// value is root on the host or undoes tenancy.
func exactGroups(kind string, values []string) []group {
	out := make([]group, 0, len(values))
	for _, v := range values {
		g := group{pattern: v, values: []string{v}, danger: rootDanger(kind, v)}
		switch {
		case kind == policy.OwnerKind && v != "self":
			g.danger = dangerOtherTenant
		case kind == policy.ReplaceablePathKind:
			g.danger = dangerReplaceable
		case kind == policy.SignatureKind && strings.HasPrefix(v, "key:"):
			// The row does not load without its key.
			g.danger = "the policy needs the key it names: put keys/" + strings.TrimPrefix(v, "key:") + ".pub beside it"
		}
		out = append(out, g)
	}
	return out
}

// actionsByResource lists every action of the route table by resource
// (the part before the first dot).
func actionsByResource(actions map[string]authz.ActionTraits) map[string][]string {
	out := map[string][]string{}
	for a := range actions {
		if a == authz.ActionUnknown {
			continue
		}
		res, _, _ := strings.Cut(a, ".")
		out[res] = append(out[res], a)
	}
	return out
}

// endpointGroups: one row "RESOURCE.*" for a resource every action of
// which was used, one row per action otherwise. An action whose endpoint
// is root on the host gets a row of its own, commented out.
func endpointGroups(used []string, all map[string][]string, givesHost map[string]string) []group {
	byRes := map[string][]string{}
	var out []group
	for _, a := range used {
		if why := givesHost[a]; why != "" {
			out = append(out, group{pattern: a, values: []string{a}, danger: "allowing it is root on the host (" + why + ")"})
			continue
		}
		res, _, _ := strings.Cut(a, ".")
		byRes[res] = append(byRes[res], a)
	}
	for res, acts := range byRes {
		every := len(all[res]) > 0
		for _, a := range all[res] {
			if !slices.Contains(acts, a) {
				every = false
				break
			}
		}
		if every && len(acts) > 1 {
			out = append(out, group{pattern: res + ".*", values: acts})
			continue
		}
		for _, a := range acts {
			out = append(out, group{pattern: a, values: []string{a}})
		}
	}
	return out
}

// imageRef splits a normalized reference into its repository and whether
// it names a tag (NAME:TAG, NAME:TAG@DIGEST) or only a digest
// (NAME@DIGEST).
func imageRef(v string) (repo string, tagged, digested bool) {
	name, _, digested := strings.Cut(v, "@")
	slash := strings.LastIndexByte(name, '/')
	if i := strings.LastIndexByte(name, ':'); i > slash {
		return name[:i], true, digested
	}
	return name, false, digested
}

// namespace is the directory of a repository below its registry:
// "reg.example.com/team" for "reg.example.com/team/app"; "" when the
// repository sits at the top of its registry (its namespace would be the
// whole registry).
func namespace(repo string) string {
	dir := path.Dir(repo)
	if !strings.Contains(dir, "/") {
		return ""
	}
	return dir
}

// imageGroups generalize image names: the repository ("REPO:*" for any
// tag, "REPO@*" for any digest) of each, and the namespace
// ("NAMESPACE/**") where several repositories of one namespace were used.
func imageGroups(values []string) []group {
	byNS := map[string]map[string][]string{} // namespace → repository → values
	for _, v := range values {
		repo, _, _ := imageRef(v)
		ns := namespace(repo)
		if byNS[ns] == nil {
			byNS[ns] = map[string][]string{}
		}
		byNS[ns][repo] = append(byNS[ns][repo], v)
	}
	var out []group
	for ns, repos := range byNS {
		if ns != "" && len(repos) > 1 {
			var all []string
			for _, vs := range repos {
				all = append(all, vs...)
			}
			out = append(out, group{pattern: ns + "/**", values: all})
			continue
		}
		for repo, vs := range repos {
			var tags, digests, other []string
			for _, v := range vs {
				switch _, tagged, digested := imageRef(v); {
				case tagged:
					tags = append(tags, v)
				case digested:
					digests = append(digests, v)
				default:
					other = append(other, v)
				}
			}
			if len(tags) > 0 {
				out = append(out, group{pattern: repo + ":*", values: tags})
			}
			if len(digests) > 0 {
				out = append(out, group{pattern: repo + "@*", values: digests})
			}
			for _, v := range other {
				out = append(out, group{pattern: v, values: []string{v}})
			}
		}
	}
	return out
}

// bindGroups: binds whose allowing is root on the host get a row each,
// commented out; the others are allowed by the deepest common directory
// (DIR/**) that is not root on the host itself, split below it where the
// common directory of all of them would be.
func bindGroups(values []string) []group {
	var out, safe []string
	var groups []group
	for _, v := range values {
		if why := rootDanger("bind", v); why != "" {
			groups = append(groups, group{pattern: v, values: []string{v}, danger: why})
			continue
		}
		if !path.IsAbs(v) || path.Clean(v) != v {
			// dockgate records binds cleaned and absolute; anything
			// else has no directory to generalize to.
			groups = append(groups, group{pattern: v, values: []string{v}, danger: dangerUnwritable})
			continue
		}
		safe = append(safe, v)
	}
	out = commonDirs(safe)
	for _, dir := range out {
		var covered []string
		for _, v := range safe {
			if v == dir || strings.HasPrefix(v, strings.TrimSuffix(dir, "/")+"/") {
				covered = append(covered, v)
			}
		}
		groups = append(groups, group{pattern: strings.TrimSuffix(dir, "/") + "/**", values: covered})
	}
	return groups
}

// commonDirs returns the deepest directories that hold every path of
// paths (none of which is root on the host): their common directory when
// allowing it is not root on the host, else the common directories of
// the paths grouped by the next name below it.
func commonDirs(paths []string) []string {
	if len(paths) == 0 {
		return nil
	}
	c := commonDir(paths)
	if c != "/" && policy.HostRoot(policy.Fact{Kind: "bind", Value: c}) == "" {
		return []string{c}
	}
	byNext := map[string][]string{}
	var order []string
	for _, p := range paths {
		rest := strings.TrimPrefix(strings.TrimPrefix(p, c), "/")
		next, _, _ := strings.Cut(rest, "/")
		if byNext[next] == nil {
			order = append(order, next)
		}
		byNext[next] = append(byNext[next], p)
	}
	if len(order) == 1 {
		// Every path is c/next/…, yet their common directory is c: only
		// when one of them is c itself, which is not root on the host
		// (it is among paths) while c is. Cannot be; allow each as it is.
		return slices.Clone(paths)
	}
	var out []string
	for _, next := range order {
		out = append(out, commonDirs(byNext[next])...)
	}
	return out
}

// commonDir is the deepest directory (or path) that every path is or is
// below.
func commonDir(paths []string) string {
	c := paths[0]
	for _, p := range paths[1:] {
		for c != "/" && p != c && !strings.HasPrefix(p, strings.TrimSuffix(c, "/")+"/") {
			c = path.Dir(c)
		}
	}
	return c
}

// tenantPrefix is the subject prefix a principal whose requests had
// owner facts owns objects by: what the current policy gives it, else
// that of its own subject (a role's members own as users).
func (l *learner) tenantPrefix(p *learned) string {
	if l.opt.Current != nil && p.tenantSubjects != nil {
		if owner, err := l.opt.Current.Owner(p.tenantSubjects); err == nil && owner != "" {
			pre, _, _ := strings.Cut(owner, ":")
			return pre
		}
	}
	pre, _, _ := strings.Cut(p.subject, ":")
	switch pre {
	case "uid", "user", "unit", "container", "cert":
		return pre
	}
	return "user"
}

// rootDanger says why allowing a fact is root on the host, as a refusal's
// advice says it, "" when it is not.
func rootDanger(kind, value string) string {
	if why := policy.HostRoot(policy.Fact{Kind: kind, Value: value}); why != "" {
		return "allowing it " + why
	}
	return ""
}
