package proxy

import (
	"context"
	"net"

	"github.com/dockgate/dockgate/authz"
)

// ImageTagger gives an image a name (*dockerd.Client implements it).
type ImageTagger interface {
	TagImage(ctx context.Context, image, repo, tag string) error
}

// pullTag follows the progress of a pull dockgate forwarded by the digest
// it verified instead of the tag the client asked for (authz.ImageTag):
// when dockerd's pull succeeded, the image gets the tag before the client
// sees the stream end, as a pull by tag would have given it; when tagging
// fails, the stream ends with dockgate's error.
type pullTag struct {
	tag    *authz.ImageTag
	tagger ImageTagger
	caller string

	lines  lineSplitter
	failed bool // dockerd reported an error: nothing was pulled to tag
}

func (p *pullTag) attach(net.Conn) {}
func (p *pullTag) stop()           {}

func (p *pullTag) pass(b []byte) []byte {
	lines := p.lines.whole(b)
	if !p.failed && hasErrorMessage(lines) {
		p.failed = true
	}
	return lines
}

func (p *pullTag) finish(ctx context.Context, copyErr error) ([]byte, string, bool) {
	if copyErr != nil {
		return nil, "", false
	}
	rest := p.lines.rest()
	if p.failed || hasErrorMessage(rest) {
		return rest, "", false
	}
	what := "pulled as " + p.tag.Image + ", the digest verified"
	if p.tagger == nil {
		msg := "dockgate: " + what + ", but dockgate cannot tag it " + p.tag.Repo + ":" + p.tag.Tag + " (no dockerd client)"
		return append(rest, errorMessage(msg)...), msg, false
	}
	if err := p.tagger.TagImage(ctx, p.tag.Image, p.tag.Repo, p.tag.Tag); err != nil {
		msg := "dockgate: " + what + ", but tagging it " + p.tag.Repo + ":" + p.tag.Tag + " failed: " + err.Error()
		return append(rest, errorMessage(msg)...), msg, false
	}
	return rest, what + ", then tagged " + p.tag.Repo + ":" + p.tag.Tag + " for " + p.caller, false
}
