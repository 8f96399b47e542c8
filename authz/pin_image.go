package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Image references pinned to what was judged (BRIEF §7
// item 11). A name is judged by what dockerd resolves it to when the facts
// are read; a re-tag between that answer and dockerd's act would make the
// act use content nobody judged. So what a name resolved to is noted
// (noteImage), and the request either goes to dockerd with the name
// replaced by that image ID (a tag's source: nothing shows the name it was
// given) or is judged again at the act (a container create, whose
// Config.Image docker ps and inspect show as the caller wrote it): dockerd
// creates the container from the name, and the proxy checks the image
// it got before the client hears of it (Request.Verify).

// ContainerChecker is what the check of a created container asks dockerd:
// the ID of the image a container was created from, and to remove a
// container created from the wrong one. *dockerd.Client implements it.
type ContainerChecker interface {
	// ContainerImage returns the image ID of the container id; found is
	// false when there is no such container.
	ContainerImage(ctx context.Context, id string) (imageID string, found bool, err error)
	// RemoveContainer removes the container id, running or not, with its
	// anonymous volumes.
	RemoveContainer(ctx context.Context, id string) error
}

// noteImage records what the reference ref resolved to while its facts
// were read: the image ID, or none.
func (x *extraction) noteImage(ref, id string, found bool) {
	if x.images == nil {
		x.images = map[string]string{}
	}
	if !found {
		id = ""
	}
	x.images[ref] = id
}

// resolveImage returns the image ID ref resolves to, as noted while the
// facts were read or else asked of dockerd now; "" when no image has that
// name.
func (x *extraction) resolveImage(ref string) (string, error) {
	if id, ok := x.images[ref]; ok {
		return id, nil
	}
	in, err := x.inspector()
	if err != nil {
		return "", err
	}
	id, _, _, found, err := in.ImageProvenance(x.ctx, ref)
	if err != nil {
		return "", upstreamError("image "+ref, err)
	}
	x.noteImage(ref, id, found)
	return x.images[ref], nil
}

// pinImagePathVar forwards the request with the image its path variable
// name names replaced by the ID that reference resolves to now, the one
// judged: dockerd resolves an ID to that image whatever is tagged with the
// name by the time it acts. A name that resolves to nothing is answered as
// dockerd would answer it (404) once the request is allowed, never
// forwarded: dockerd would find whatever got the name in between. (So
// the policy's answer comes first, and explain, which never forwards,
// shows the facts.)
func (x *extraction) pinImagePathVar(name string) error {
	ref := x.m.Vars[name]
	id, err := x.resolveImage(ref)
	if err != nil {
		return err
	}
	if id == "" {
		x.prepareAlso(func(context.Context) error {
			return &RouteError{Status: http.StatusNotFound, Message: "No such image: " + ref}
		})
		return nil
	}
	return x.pinPathVar(name, id)
}

// prepareAlso adds f to what the proxy runs before forwarding
// (Request.Prepare), after what is there already.
func (x *extraction) prepareAlso(f func(context.Context) error) {
	x.req.PrepareSays = append(x.req.PrepareSays, "dockgate forwards it only if the image it names exists (pinned to its ID)")
	before := x.req.Prepare
	if before == nil {
		x.req.Prepare = f
		return
	}
	x.req.Prepare = func(ctx context.Context) error {
		if err := before(ctx); err != nil {
			return err
		}
		return f(ctx)
	}
}

// verifyCreatedImage has the proxy check, once dockerd created the
// container, that its image is the one ref resolved to when the create
// was judged; a container created from another image (the name re-tagged
// in between, or given to an image when there was none) is removed and
// the client gets a 409 instead of the 201.
func (x *extraction) verifyCreatedImage(ref string) {
	want, in := x.images[ref], x.in
	x.req.Verify = func(ctx context.Context, status int, body []byte) error {
		if status != http.StatusCreated {
			return nil
		}
		return checkCreatedImage(ctx, in, ref, want, body)
	}
}

// checkCreatedImage is the check of verifyCreatedImage on dockerd's answer
// body. Anything that keeps it from being sure (no container ID in the
// answer, dockerd not answering the inspect) is an error, and the
// container is removed whenever its ID is known: the client never gets a
// container that was not checked.
func checkCreatedImage(ctx context.Context, in Inspector, ref, want string, body []byte) error {
	var created struct {
		ID string `json:"Id"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		return &RouteError{Status: http.StatusBadGateway, Message: "dockerd's answer to the create names no container, so the image it was created from cannot be checked"}
	}
	id := created.ID
	cc, ok := in.(ContainerChecker)
	if !ok {
		return &RouteError{Status: http.StatusInternalServerError, Message: fmt.Sprintf("cannot check the image of the created container %.12s (no way to ask dockerd); it is left as created, never started", id)}
	}
	// The check and the removal run to their end even when the client
	// has gone: a container from an image nobody judged must not stay.
	ctx = context.WithoutCancel(ctx)
	got, found, err := cc.ContainerImage(ctx, id)
	switch {
	case err != nil:
		msg := fmt.Sprintf("cannot check the image of the created container %.12s: %v", id, err)
		return &RouteError{Status: http.StatusBadGateway, Message: msg + removed(ctx, cc, id)}
	case !found:
		return &RouteError{Status: http.StatusBadGateway, Message: fmt.Sprintf("the created container %.12s was gone before its image could be checked", id)}
	case got == want:
		return nil
	}
	judged := want
	if judged == "" {
		judged = "no image"
	}
	msg := fmt.Sprintf("the image %s changed between the decision and the create: it was %s when judged, the container got %s", ref, judged, got)
	return &RouteError{Status: http.StatusConflict, Message: msg + removed(ctx, cc, id)}
}

// removed removes the container id and says so, for the end of a message.
func removed(ctx context.Context, cc ContainerChecker, id string) string {
	if err := cc.RemoveContainer(ctx, id); err != nil {
		return fmt.Sprintf("; removing the container %.12s failed: %v", id, err)
	}
	return fmt.Sprintf("; the container %.12s was removed", id)
}
