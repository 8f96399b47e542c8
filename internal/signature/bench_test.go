package signature

import (
	"context"
	"testing"

	"github.com/dockgate/dockgate/test/signing"
)

// BenchmarkVerify measures one verdict against the in-process registry:
// cold (both formats read and verified, no cache) and cached.
func BenchmarkVerify(b *testing.B) {
	s := testSigners(b)
	keys := mustLoadKeys(b, s.keysDir)
	ctx := context.Background()
	reg := newTestRegistry(b, true)
	d := reg.push(b, "team/app")
	if err := signing.SignCosign(ctx, reg.ref("team/app", d), s.byName["release"]); err != nil {
		b.Fatal(err)
	}
	if err := signing.AttachBundle(ctx, reg.ref("team/app", d), s.byName["ci"]); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"cold", Options{CacheSize: -1}},
		{"cached", Options{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			v, err := New(bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			v.Verify(ctx, reg.host+"/team/app", d, keys) // the cached case's first lookup is not what it measures
			for b.Loop() {
				if r := v.Verify(ctx, reg.host+"/team/app", d, keys); r.Status != Signed || len(r.Keys) != 2 {
					b.Fatalf("Verify = %+v", r)
				}
			}
		})
	}
}
