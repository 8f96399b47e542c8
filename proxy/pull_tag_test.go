package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/authz"
)

type fakeTagger struct {
	calls []string
	err   error
}

func (f *fakeTagger) TagImage(_ context.Context, image, repo, tag string) error {
	f.calls = append(f.calls, image+" "+repo+":"+tag)
	return f.err
}

func TestPinnedPullIsTaggedAsAsked(t *testing.T) {
	const (
		progress = `{"status":"Pulling from team/app","id":"sha256:aa"}` + "\r\n"
		done     = `{"status":"Status: Downloaded newer image for 127.0.0.1:5000/team/app@sha256:aa"}` + "\r\n"
		failed   = `{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}` + "\r\n"
	)
	tag := &authz.ImageTag{Image: "127.0.0.1:5000/team/app@sha256:aa", Repo: "127.0.0.1:5000/team/app", Tag: "1"}
	cases := []struct {
		name    string
		pieces  []string
		copyErr error
		tagErr  error
		wantTag bool
		wantErr string // the error the client shows, "" for none
		wantWhy string
	}{
		{name: "a pull that succeeds is tagged before the stream ends", pieces: []string{progress, done[:9], done[9:]}, wantTag: true, wantWhy: "pulled as 127.0.0.1:5000/team/app@sha256:aa, the digest verified, then tagged 127.0.0.1:5000/team/app:1 for uid:1000"},
		{name: "a pull dockerd failed is not tagged", pieces: []string{progress, failed}, wantErr: "manifest unknown"},
		{name: "dockerd's error without a newline is still seen", pieces: []string{progress, strings.TrimSuffix(failed, "\r\n")}, wantErr: "manifest unknown"},
		{name: "a pull cut off is not tagged", pieces: []string{progress}, copyErr: errors.New("unexpected EOF")},
		{name: "a tag dockerd refuses ends the stream with dockgate's error", pieces: []string{progress, done}, tagErr: errors.New("no such image"), wantTag: true,
			wantErr: "dockgate: pulled as 127.0.0.1:5000/team/app@sha256:aa, the digest verified, but tagging it 127.0.0.1:5000/team/app:1 failed: no such image"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := &fakeTagger{err: tc.tagErr}
			p := &pullTag{tag: tag, tagger: tg, caller: "uid:1000"}
			var out []byte
			for _, piece := range tc.pieces {
				buf := []byte(piece)
				out = append(out, p.pass(buf)...)
				for i := range buf {
					buf[i] = 'x'
				}
			}
			tail, why, absorbed := p.finish(context.Background(), tc.copyErr)
			out = append(out, tail...)
			if absorbed {
				t.Error("a pull's copy error is never dockgate's")
			}
			if got := len(tg.calls) == 1; got != tc.wantTag {
				t.Errorf("tagged: %v (%v), want %v", got, tg.calls, tc.wantTag)
			}
			if tc.wantTag && tg.calls[0] != "127.0.0.1:5000/team/app@sha256:aa 127.0.0.1:5000/team/app:1" {
				t.Errorf("tagged %q", tg.calls[0])
			}
			if tc.copyErr != nil {
				return
			}
			if got := clientError(t, out); got != tc.wantErr {
				t.Errorf("the client shows %q, want %q", got, tc.wantErr)
			}
			if tc.wantWhy != "" && why != tc.wantWhy {
				t.Errorf("the record says %q, want %q", why, tc.wantWhy)
			}
		})
	}
}
