package dockerd

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func callerOK(t *testing.T, in *Client, id, wantName string) {
	t.Helper()
	c, found, err := in.CallerContainer(context.Background(), id)
	if err != nil || !found || c.ID != id || c.Name != wantName || c.Image != "app:1" || !c.ImageKnown || c.ImageLabels["from"] != "image" {
		t.Fatalf("caller container %s: got %+v found=%v err=%v, want it named %q", id, c, found, err, wantName)
	}
}

// TestCallerContainerCache: what a caller's container is judged by is
// asked once while the event stream is up, and asked again after the
// container is renamed (its name is a subject) or the stream breaks; a
// destroyed container is no container.
func TestCallerContainerCache(t *testing.T) {
	f := newOwnerFake()
	in, states := watchedClient(t, f)
	for range 3 {
		callerOK(t, in, idA, "job-a")
	}
	if n := f.count("/containers/" + idA + "/json"); n != 1 {
		t.Fatalf("asked dockerd %d times, want once", n)
	}

	f.set(func(f *ownerFake) { delete(f.names, "job-a"); f.names["traefik"] = idA })
	f.events <- fmt.Sprintf(`{"Type":"container","Action":"rename","Actor":{"ID":%q,"Attributes":{"name":"traefik","oldName":"/job-a"}},"time":%d}`, idA, time.Now().Unix())
	waitFor(t, "the rename to reach the cache", func() bool {
		c, _, err := in.CallerContainer(context.Background(), idA)
		return err == nil && c.Name == "traefik"
	})

	f.destroy("container", idA)
	waitFor(t, "the destroy to reach the cache", func() bool {
		_, found, err := in.CallerContainer(context.Background(), idA)
		return err == nil && !found
	})

	callerOK(t, in, idB, "job-b")
	before := f.count("/containers/" + idB + "/json")
	f.drop <- struct{}{}
	waitState(t, states, false)
	// Not trusted while the stream is down: every lookup asks. The
	// stream may come back meanwhile, so only the first ask is sure.
	callerOK(t, in, idB, "job-b")
	if n := f.count("/containers/" + idB + "/json"); n <= before {
		t.Errorf("with the stream down, the cache answered (asked %d times, %d before)", n, before)
	}

	if _, _, err := in.CallerContainer(context.Background(), "job-b"); err == nil {
		t.Error("a caller container looked up by name")
	}
}
