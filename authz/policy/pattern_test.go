package policy

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		yes, no []string
	}{
		{"literal is exact and case-sensitive", "SYS_ADMIN",
			[]string{"SYS_ADMIN"}, []string{"sys_admin", "SYS_ADMIN ", "SYS_ADMINX", "XSYS_ADMIN", ""}},
		{"star stops at a slash", "docker.io/library/*",
			[]string{"docker.io/library/busybox:latest", "docker.io/library/"}, []string{"docker.io/library/a/b", "docker.io/librarx/busybox"}},
		{"star alone matches any action but no path", "*",
			[]string{"container.create", "", "a b"}, []string{"/", "/srv", "a/b"}},
		{"double star crosses slashes", "registry.example.com/approved/**",
			[]string{"registry.example.com/approved/app:1", "registry.example.com/approved/team/app@sha256:0123", "registry.example.com/approved/", "registry.example.com/approved"},
			[]string{"registry.example.com/approvedx/app", "registry.example.com:5000/approved/app"}},
		{"trailing /** matches the dir itself", "/srv/cache/**",
			[]string{"/srv/cache", "/srv/cache/", "/srv/cache/a", "/srv/cache/a/b"}, []string{"/srv/cache-evil", "/srv/cach", "/srv/cachea/b", "/srv"}},
		{"double star alone matches everything", "**",
			[]string{"", "/", "/a/b/c", "anything at all"}, nil},
		{"root /** matches every absolute path", "/**",
			[]string{"/", "/etc/shadow", ""}, []string{"etc"}},
		{"question mark is one character but not a slash", "/dev/tty?",
			[]string{"/dev/tty1", "/dev/ttyS"}, []string{"/dev/tty", "/dev/tty10", "/dev/tty/"}},
		{"question mark is one character, not one byte", "/data/?",
			[]string{"/data/é", "/data/x"}, []string{"/data/é1", "/data/"}},
		{"star in the middle of a segment", "net.ipv4.*_port_range=*",
			[]string{"net.ipv4.ip_local_port_range=1024 65000"}, []string{"net.ipv4.ip_local_port_range=1/2", "net.ipv6.ip_local_port_range=1"}},
		{"double star in the middle", "/srv/**/cache",
			[]string{"/srv/a/cache", "/srv/a/b/cache", "/srv//cache"}, []string{"/srv/cache", "/srv/a/cache/x"}},
		{"double star suffix", "**.sock",
			[]string{"/run/docker.sock", "docker.sock", ".sock"}, []string{"/run/docker.sock/x", "/run/docker.socket"}},
		{"prefix star", "container.*",
			[]string{"container.create", "container.archive.get", "container."}, []string{"container", "containers.list"}},
		{"star then double star", "*/approved/**",
			[]string{"registry.example.com/approved/app", "x/approved"}, []string{"a/b/approved/app"}},
		{"many stars do not backtrack", "*a*a*a*a*a*a*a*a*b",
			[]string{"aaaaaaaaab", "xaxaxaxaxaxaxaxab"}, []string{strings.Repeat("a", 5000), "aaaaaaaa/b"}},
		{"trailing /** after wildcards", "/home/*/cache/**",
			[]string{"/home/ci/cache", "/home/ci/cache/x/y"}, []string{"/home/ci/cachex", "/home/a/b/cache"}},
		{"glob characters of other languages are literal", "[ab]+{c,d}.$^\\",
			[]string{"[ab]+{c,d}.$^\\"}, []string{"a", "ac"}},
		{"invalid UTF-8 in a value is a character no literal matches", "/x/\ufffd",
			[]string{"/x/\ufffd"}, []string{"/x/\xff"}},
		{"invalid UTF-8 in a value still counts for ? and *", "/x/?*",
			[]string{"/x/\xff", "/x/\xff\xfe"}, []string{"/x/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CompilePattern(tt.pattern)
			if err != nil {
				t.Fatalf("CompilePattern(%q): %v", tt.pattern, err)
			}
			for _, v := range tt.yes {
				if !p.Match(v) {
					t.Errorf("%q does not match %q, want a match", tt.pattern, v)
				}
				if !referenceMatch(tt.pattern, v) && len(v) < 100 {
					t.Errorf("reference: %q does not match %q", tt.pattern, v)
				}
			}
			for _, v := range tt.no {
				if p.Match(v) {
					t.Errorf("%q matches %q, want no match", tt.pattern, v)
				}
			}
		})
	}
}

func TestPatternErrors(t *testing.T) {
	tests := []struct {
		name, pattern, want string
	}{
		{"empty pattern", "", "empty pattern"},
		{"three stars", "/srv/***", "three or more"},
		{"four stars", "****", "three or more"},
		{"control character", "/srv/\nx", "control character"},
		{"invalid UTF-8", "/srv/\xff", "UTF-8"},
		{"too long", strings.Repeat("a", MaxPatternLen+1), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompilePattern(tt.pattern)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CompilePattern(%q) = %v, want an error with %q", tt.pattern, err, tt.want)
			}
		})
	}
	if _, err := CompilePattern(strings.Repeat("a*", MaxPatternLen/2)); err != nil {
		t.Fatalf("pattern of MaxPatternLen characters: %v", err)
	}
}

func TestPatternLongGeneralShape(t *testing.T) {
	// More states than one word of the NFA's set.
	pat := strings.Repeat("ab*", 100) + "?"
	p := MustCompilePattern(pat)
	v := strings.Repeat("abxx", 100) + "z"
	if !p.Match(v) {
		t.Fatalf("long pattern does not match")
	}
	if p.Match(v[:len(v)-1] + "/") {
		t.Fatalf("long pattern matches a slash for its last ?")
	}
}

// referenceMatch is BRIEF §3's pattern rules transcribed as directly as
// possible, with backtracking: the fuzz target's oracle.
func referenceMatch(pattern, v string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok {
		// "the path itself", or the path, a slash and anything.
		if referenceCore(prefix, v) {
			return true
		}
		for i := 0; i < len(v); i++ {
			if v[i] == '/' && referenceCore(prefix, v[:i]) {
				return true
			}
		}
		return false
	}
	return referenceCore(pattern, v)
}

func referenceCore(p, v string) bool {
	switch {
	case p == "":
		return v == ""
	case strings.HasPrefix(p, "**"):
		for i := 0; ; {
			if referenceCore(p[2:], v[i:]) {
				return true
			}
			if i == len(v) {
				return false
			}
			_, w := utf8.DecodeRuneInString(v[i:])
			i += w
		}
	case p[0] == '*':
		for i := 0; ; {
			if referenceCore(p[1:], v[i:]) {
				return true
			}
			if i == len(v) || v[i] == '/' {
				return false
			}
			_, w := utf8.DecodeRuneInString(v[i:])
			i += w
		}
	case p[0] == '?':
		if v == "" || v[0] == '/' {
			return false
		}
		_, w := utf8.DecodeRuneInString(v)
		return referenceCore(p[1:], v[w:])
	}
	pr, pw := utf8.DecodeRuneInString(p)
	vr, vw := utf8.DecodeRuneInString(v)
	if v == "" || vr != pr || (vr == utf8.RuneError && vw == 1) {
		return false
	}
	return referenceCore(p[pw:], v[vw:])
}

func FuzzPattern(f *testing.F) {
	seeds := [][2]string{
		{"/srv/cache/**", "/srv/cache"},
		{"/srv/cache/**", "/srv/cache-evil"},
		{"*", "a/b"},
		{"**/**", "/x"},
		{"/**", ""},
		{"a?*b**c/**", "axyb/q/c/d"},
		{"registry.example.com/approved/**", "registry.example.com/approved/app:1"},
		{"*.*", "container.create"},
		{"?é*", "xé/"},
		{"**x", "\xffx"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, v string) {
		p, err := CompilePattern(pattern)
		if err != nil {
			return
		}
		if strings.Count(pattern, "*") > 8 || len(v) > 64 {
			return // keep the backtracking reference fast
		}
		if got, want := p.Match(v), referenceMatch(pattern, v); got != want {
			t.Fatalf("CompilePattern(%q).Match(%q) = %v, reference says %v", pattern, v, got, want)
		}
	})
}

func BenchmarkPatternMatch(b *testing.B) {
	for _, bc := range []struct{ name, pattern, v string }{
		{"literal", "container.create", "container.create"},
		{"dir", "/srv/ci-cache/**", "/srv/ci-cache/job/123"},
		{"general", "registry.example.com/*/app-?*:**", "registry.example.com/team/app-x1:v1.2.3"},
	} {
		p := MustCompilePattern(bc.pattern)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Match(bc.v)
			}
		})
	}
}
