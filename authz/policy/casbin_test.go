package policy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPolicyIndexAgreesWithCasbin is the differential test of the compiled
// index against casbin's own Enforce on the default model: random
// policies (subjects, nested roles, kind and value patterns, allow and
// deny) and random facts; both must give the same decision and name the
// same rule. For one subject the casbin side is exactly casbin's answer;
// for several it is casbin per subject, combined as BRIEF §3 says.
func TestPolicyIndexAgreesWithCasbin(t *testing.T) {
	identities := []string{"*", "uid:0", "uid:1000", "user:alice", "group:ci", "gid:100", "unit:ci.service", "container:builder", "cert:ci"}
	roles := []string{"role:a", "role:b", "role:c", "role:d", "role:e"}
	kinds := []string{"endpoint", "image", "bind", "capability", "namespace", "sysctl", "future-kind"}
	kindPatterns := []string{"endpoint", "image", "bind", "capability", "namespace", "sysctl", "*", "**", "b*", "?ind", "*-*"}
	values := []string{
		"container.create", "container.archive.get", "plugin.install", "system.ping",
		"docker.io/library/busybox:latest", "registry.example.com/approved/app:1", "registry.example.com/approved",
		"/srv/cache", "/srv/cache/a/b", "/srv/cache-evil", "/", "/var/run/docker.sock",
		"SYS_ADMIN", "NET_BIND_SERVICE", "network=host", "pid=container", "kernel.shm_rmid_forced=1", "", "é/x",
	}
	valuePatterns := []string{
		"*", "**", "container.*", "*.create", "plugin.*", "system.ping",
		"docker.io/library/*", "registry.example.com/approved/**", "registry.example.com/*/**",
		"/srv/cache/**", "/srv/cache*", "/srv/**", "/**", "/var/run/docker.sock", "**.sock",
		"SYS_*", "NET_BIND_SERVICE", "*=host", "pid=?*", "kernel.*=*", "?/x", "**/**",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }

	for round := 0; round < 150; round++ {
		var b strings.Builder
		// Roles link only to later roles: no cycles.
		for i := 0; i < rng.IntN(8); i++ {
			if rng.IntN(2) == 0 {
				fmt.Fprintf(&b, "g, %s, %s\n", pick(identities), pick(roles))
			} else {
				j := rng.IntN(len(roles) - 1)
				fmt.Fprintf(&b, "g, %s, %s\n", roles[j], roles[j+1+rng.IntN(len(roles)-j-1)])
			}
		}
		for i := 0; i < 1+rng.IntN(40); i++ {
			sub := pick(identities)
			if rng.IntN(3) == 0 {
				sub = pick(roles)
			}
			eft := "allow"
			if rng.IntN(4) == 0 {
				eft = "deny"
			}
			fmt.Fprintf(&b, "p, %s, %s, %s, %s\n", sub, pick(kindPatterns), pick(valuePatterns), eft)
		}
		policyText := b.String()
		p := loadTestPolicy(t, map[string]string{"r.csv": policyText})
		if p.index == nil {
			t.Fatal("default model without an index")
		}
		for q := 0; q < 60; q++ {
			var subjects []string
			for i := 0; i < 1+rng.IntN(4); i++ {
				subjects = append(subjects, pick(identities))
			}
			if q%3 == 0 {
				subjects = subjects[:1] // casbin's answer as it stands
			}
			f := Fact{Kind: pick(kinds), Value: pick(values)}
			got, want := p.DecideFact(subjects, f), p.EnforceFact(subjects, f)
			if got.Allow != want.Allow || got.Rule != want.Rule {
				t.Fatalf("policy:\n%s\nfact %v for %v: index says allow %v by %q, casbin says allow %v by %q",
					policyText, f, subjects, got.Allow, got.RuleText(), want.Allow, want.RuleText())
			}
			if len(subjects) == 1 {
				ok, explain, err := p.Enforcer().EnforceEx(subjects[0], f.Kind, f.Value)
				if err != nil {
					t.Fatal(err)
				}
				if ok != got.Allow {
					t.Fatalf("policy:\n%s\nfact %v for %s: index %v, casbin Enforce %v %v", policyText, f, subjects[0], got.Allow, ok, explain)
				}
			}
		}
	}
}
