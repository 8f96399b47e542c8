package proxy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dockgate/dockgate/authz"
)

func TestRefusedBuildEndsItsSession(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	type session struct {
		id, caller string
		at         time.Duration // when it opens, after the refusal when positive
	}
	cases := []struct {
		name    string
		running []session // allowed builds on a session, by their caller
		opens   []session // sessions
		refuse  session   // the refused /build's session and caller
		ended   []bool    // which of opens end
	}{
		{name: "the refused build's open session ends", opens: []session{{"s1", "uid:1000", 0}}, refuse: session{"s1", "uid:1000", 0}, ended: []bool{true}},
		{name: "a session opening after the refusal ends", opens: []session{{"s1", "uid:1000", time.Second}}, refuse: session{"s1", "uid:1000", 0}, ended: []bool{true}},
		{name: "one opening once the refusal is old stays", opens: []session{{"s1", "uid:1000", refusedSessionMemory}}, refuse: session{"s1", "uid:1000", 0}, ended: []bool{false}},
		{name: "another caller's session of the same ID stays", opens: []session{{"s1", "uid:1001", 0}, {"s1", "uid:1001", time.Second}}, refuse: session{"s1", "uid:1000", 0}, ended: []bool{false, false}},
		{name: "another session of the caller stays", opens: []session{{"s2", "uid:1000", 0}, {"s2", "uid:1000", time.Second}}, refuse: session{"s1", "uid:1000", 0}, ended: []bool{false, false}},
		{name: "a session serving an allowed build stays", running: []session{{"s1", "uid:1000", 0}}, opens: []session{{"s1", "uid:1000", 0}, {"s1", "uid:1000", time.Second}}, refuse: session{"s1", "uid:1000", 0}, ended: []bool{false, false}},
		{name: "a build without a session ends nothing", opens: []session{{"", "uid:1000", 0}}, refuse: session{"", "uid:1000", 0}, ended: []bool{false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := buildSessions{endGrace: time.Millisecond}
			for _, r := range tc.running {
				defer b.register(&authz.BuildKitSolve{Session: r.id}, &clientConn{name: r.caller}, nil)()
			}
			ctxs := make([]context.Context, len(tc.opens))
			open := func(i int) {
				o := tc.opens[i]
				ctx, end := context.WithCancelCause(context.Background())
				t.Cleanup(func() { end(nil) })
				t.Cleanup(b.opened(o.id, o.caller, end, now.Add(o.at)))
				ctxs[i] = ctx
			}
			for i, o := range tc.opens {
				if o.at <= 0 {
					open(i)
				}
			}
			b.refuseBuild(tc.refuse.id, tc.refuse.caller, now)
			for i, o := range tc.opens {
				if o.at > 0 {
					open(i)
				}
			}
			for i, ctx := range ctxs {
				// Those that must stay get ample time to end wrongly.
				wait := 200 * time.Millisecond
				if tc.ended[i] {
					wait = time.Minute
				}
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
				if ended := ctx.Err() != nil; ended != tc.ended[i] {
					t.Errorf("session %d ended: %v, want %v", i, ended, tc.ended[i])
				}
				if ctx.Err() != nil && !errors.Is(context.Cause(ctx), errRefusedBuildSession) {
					t.Errorf("session %d ended with %v", i, context.Cause(ctx))
				}
			}
		})
	}
}

func TestRefusedSessionsAreForgotten(t *testing.T) {
	var b buildSessions
	now := time.Unix(1_700_000_000, 0)
	for i := 0; i < 1000; i++ {
		b.refuseBuild(string(rune('a'+i%26))+time.Duration(i).String(), "uid:1000", now.Add(time.Duration(i)*time.Second))
	}
	if n := len(b.refused); n > int(refusedSessionMemory/time.Second)+1 {
		t.Fatalf("%d refused sessions remembered, want at most the last minute's", n)
	}
	b.opened("x", "uid:1000", func(error) {}, now)()
	if len(b.open) != 0 {
		t.Fatalf("released sessions are still known: %v", b.open)
	}
}
