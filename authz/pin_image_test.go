package authz

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// checkerInspector is a fakeInspector that also answers the check of a
// created container: the image each container was created from, and the
// containers removed.
type checkerInspector struct {
	*fakeInspector
	created    map[string]string // container ID → image ID
	inspectErr error
	removed    []string
}

func (c *checkerInspector) ContainerImage(_ context.Context, id string) (string, bool, error) {
	if c.inspectErr != nil {
		return "", false, c.inspectErr
	}
	im, ok := c.created[id]
	return im, ok, nil
}

func (c *checkerInspector) RemoveContainer(_ context.Context, id string) error {
	c.removed = append(c.removed, id)
	delete(c.created, id)
	return nil
}

const pinContainerID = "c0ffee0000000000000000000000000000000000000000000000000000000001"

func pinDecider(t *testing.T, in Inspector) *PolicyDecider {
	t.Helper()
	p := loadTestPolicy(t, map[string]string{"t.csv": "p, *, *, **, allow\n"})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = in
	return d
}

func pinDecide(t *testing.T, d *PolicyDecider, target, body string) Decision {
	t.Helper()
	req := testRequest(http.MethodPost, target, "uid:1001", "*")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Body = []byte(body)
	}
	m, err := NewRouter().Route(req.Method, req.URL)
	if err != nil {
		t.Fatal(err)
	}
	return d.Decide(context.Background(), m, req)
}

// TestTagSourcePinnedToJudgedImage: the image a tag names is forwarded
// as the ID it resolved to when judged, so that a re-tag of the source
// name in between cannot change what gets the new name.
func TestTagSourcePinnedToJudgedImage(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		status       int
		forwarded    string
	}{
		{name: "tag by name forwarded as the judged ID", target: "/v1.41/images/reg.example.com/approved/app:1/tag?repo=ci.local/x&tag=2",
			forwarded: "/v1.41/images/" + idApp + "/tag?repo=ci.local/x&tag=2"},
		{name: "tag by short ID forwarded as the full ID", target: "/v1.41/images/111111111111/tag?repo=ci.local/x",
			forwarded: "/v1.41/images/" + idApp + "/tag?repo=ci.local/x"},
		{name: "tag without version prefix keeps it off", target: "/images/evil/tag?repo=ci.local/x",
			forwarded: "/images/" + idEvil + "/tag?repo=ci.local/x"},
		{name: "tag of a name no image has is answered like dockerd, never forwarded", target: "/v1.41/images/nothing:here/tag?repo=ci.local/x",
			status: http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := pinDecide(t, pinDecider(t, newFakeInspector()), tc.target, "")
			if tc.status != 0 {
				// Allowed by the policy, refused before it is forwarded.
				var re *RouteError
				if !dec.Allow || dec.Prepare == nil || !errors.As(dec.Prepare(context.Background()), &re) || re.Status != tc.status {
					t.Fatalf("want a %d before forwarding, got allow=%v %d %q", tc.status, dec.Allow, dec.Status, dec.Reason)
				}
				if dec.Target != "" {
					t.Errorf("a tag of nothing pinned to %q", dec.Target)
				}
				return
			}
			if dec.Prepare != nil {
				t.Errorf("a pinned tag has something to prepare")
			}
			if !dec.Allow {
				t.Fatalf("refused: %d %s", dec.Status, dec.Reason)
			}
			if dec.Target != tc.forwarded {
				t.Errorf("forwarded target %q, want %q", dec.Target, tc.forwarded)
			}
		})
	}
	t.Run("dockerd not answering the lookup refuses the tag", func(t *testing.T) {
		in := newFakeInspector()
		in.err = errors.New("connection refused")
		dec := pinDecide(t, pinDecider(t, in), "/v1.41/images/evil/tag?repo=ci.local/x", "")
		if dec.Allow || dec.Status != http.StatusBadGateway {
			t.Fatalf("want 502, got allow=%v %d %q", dec.Allow, dec.Status, dec.Reason)
		}
	})
}

// TestCreateJudgedAgainAtTheAct: a create carries a Verify that checks
// the image dockerd created the container from against the one judged,
// removes a container from another image, and never lets an unchecked
// container through.
func TestCreateJudgedAgainAtTheAct(t *testing.T) {
	const created = `{"Id":"` + pinContainerID + `","Warnings":[]}`
	for _, tc := range []struct {
		name       string
		image      string // the create's Image
		status     int    // dockerd's answer
		body       string
		got        string // the image the container was created from
		inspectErr error
		noChecker  bool
		wantStatus int // of the Verify error, 0 for none
		removed    bool
		msg        string
	}{
		{name: "container from the judged image passes", image: "reg.example.com/approved/app:1", status: 201, body: created, got: idApp},
		{name: "name re-tagged to another image between decision and create", image: "reg.example.com/approved/app:1", status: 201, body: created, got: idEvil,
			wantStatus: http.StatusConflict, removed: true, msg: "changed between the decision and the create"},
		{name: "short ID judged, same image created", image: "2222", status: 201, body: created, got: idEvil},
		{name: "name that had no image when judged got one before the create", image: "new/thing:1", status: 201, body: created, got: idEvil,
			wantStatus: http.StatusConflict, removed: true, msg: "it was no image when judged"},
		{name: "dockerd cannot say the container's image: removed, not answered 201", image: "reg.example.com/approved/app:1", status: 201, body: created,
			inspectErr: errors.New("i/o timeout"), wantStatus: http.StatusBadGateway, removed: true, msg: "cannot check the image"},
		{name: "answer without a container ID is not passed on", image: "reg.example.com/approved/app:1", status: 201, body: `{"Warnings":[]}`,
			wantStatus: http.StatusBadGateway, msg: "names no container"},
		{name: "answer that is no JSON is not passed on", image: "reg.example.com/approved/app:1", status: 201, body: `<html>`,
			wantStatus: http.StatusBadGateway, msg: "names no container"},
		{name: "no way to ask dockerd fails closed", image: "reg.example.com/approved/app:1", status: 201, body: created, noChecker: true,
			wantStatus: http.StatusInternalServerError},
		{name: "create dockerd refused needs no check", image: "reg.example.com/approved/app:1", status: 404, body: `{"message":"No such image"}`,
			inspectErr: errors.New("must not be asked")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci := &checkerInspector{fakeInspector: newFakeInspector(), created: map[string]string{pinContainerID: tc.got}, inspectErr: tc.inspectErr}
			var in Inspector = ci
			if tc.noChecker {
				in = ci.fakeInspector
			}
			dec := pinDecide(t, pinDecider(t, in), createTarget, `{"Image":"`+tc.image+`"}`)
			if !dec.Allow {
				t.Fatalf("refused: %d %s", dec.Status, dec.Reason)
			}
			if dec.Verify == nil {
				t.Fatal("an allowed create has no Verify")
			}
			err := dec.Verify(context.Background(), tc.status, []byte(tc.body))
			if tc.wantStatus == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
			} else {
				var re *RouteError
				if !errors.As(err, &re) || re.Status != tc.wantStatus {
					t.Fatalf("Verify: %v, want a %d", err, tc.wantStatus)
				}
				if !strings.Contains(re.Message, tc.msg) {
					t.Errorf("message %q does not say %q", re.Message, tc.msg)
				}
			}
			if removed := slices.Contains(ci.removed, pinContainerID); removed != tc.removed {
				t.Errorf("container removed %v, want %v (removed %v)", removed, tc.removed, ci.removed)
			}
		})
	}
}

// TestVerifyOnlyWhereSet: requests other than a create carry no Verify,
// and a decision never keeps the Verify of a request decided before.
func TestVerifyOnlyWhereSet(t *testing.T) {
	ci := &checkerInspector{fakeInspector: newFakeInspector()}
	d := pinDecider(t, ci)
	req := testRequest(http.MethodPost, createTarget, "uid:1001", "*")
	req.Header.Set("Content-Type", "application/json")
	req.Body = []byte(`{"Image":"evil"}`)
	m, err := NewRouter().Route(req.Method, req.URL)
	if err != nil {
		t.Fatal(err)
	}
	if dec := d.Decide(context.Background(), m, req); dec.Verify == nil {
		t.Fatal("create without Verify")
	}
	// The same Request reused for a start (as a caller could not, but a
	// careless caller of Decide could).
	req.URL = parseTarget(t, "/v1.41/containers/x/start")
	req.Body = nil
	m, err = NewRouter().Route(req.Method, req.URL)
	if err != nil {
		t.Fatal(err)
	}
	if dec := d.Decide(context.Background(), m, req); dec.Verify != nil {
		t.Fatal("start carries the create's Verify")
	}
}
