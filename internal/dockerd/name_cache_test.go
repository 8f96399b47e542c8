package dockerd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// containerEvent sends a container event with attributes, as dockerd
// sends it: the name without its "/", oldName (on a rename) with it.
func (f *ownerFake) containerEvent(action, id string, attrs map[string]string) {
	msg, err := json.Marshal(map[string]any{"Type": "container", "Action": action, "Actor": map[string]any{"ID": id, "Attributes": attrs}, "time": time.Now().Unix()})
	if err != nil {
		panic(err)
	}
	f.events <- string(msg)
}

// name gives the container id the name, as its only one (dockerd's
// containers have one name each). f.mu is held.
func (f *ownerFake) name(name, id string) {
	for n, i := range f.names {
		if i == id {
			delete(f.names, n)
		}
	}
	f.names[name] = id
}

// nameGen is the client's names generation, to see an event applied.
func nameGen(in *Client) uint64 { return in.cache.begin().names }

// waitNameGen waits until the names generation moved past gen: the event
// sent after reading gen was applied.
func waitNameGen(t *testing.T, in *Client, gen uint64) {
	t.Helper()
	waitFor(t, "the event to be applied", func() bool { return nameGen(in) > gen })
}

func TestNameCache(t *testing.T) {
	nameAsked := func(f *ownerFake, name string) int { return f.count("/containers/" + name + "/json") }

	t.Run("a tenant's repeated requests by name ask dockerd once", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		for range 3 {
			ownerOK(t, in, ObjectContainer, "job-a", idA, "user:alice")
		}
		// dockerd reads "/job-a" as the same name.
		ownerOK(t, in, ObjectContainer, "/job-a", idA, "user:alice")
		if n := nameAsked(f, "job-a"); n != 1 {
			t.Fatalf("asked dockerd for the name %d times, want 1", n)
		}
		if n := nameAsked(f, "/job-a"); n != 0 {
			t.Fatalf("asked dockerd for /job-a %d times, want 0", n)
		}
	})
	t.Run("an answer found through an ID prefix is never cached", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		for range 2 {
			ownerOK(t, in, ObjectContainer, idA[:12], idA, "user:alice")
		}
		if n := nameAsked(f, idA[:12]); n != 2 {
			t.Fatalf("asked for the prefix %d times, want 2 (every time)", n)
		}
		// Now a container takes that prefix as its name: dockerd tries
		// names before prefixes, and the lookup must see it.
		f.set(func(f *ownerFake) { f.name(idA[:12], idB) })
		ownerOK(t, in, ObjectContainer, idA[:12], idB, "user:bob")
	})
	t.Run("a rename event drops the old name", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		ownerOK(t, in, ObjectContainer, "job-a", idA, "user:alice")
		f.set(func(f *ownerFake) {
			delete(f.names, "job-a")
			f.name("job-z", idA)
		})
		gen := nameGen(in)
		f.containerEvent("rename", idA, map[string]string{"name": "job-z", "oldName": "/job-a"})
		waitNameGen(t, in, gen)
		if _, _, found, err := in.ObjectOwner(context.Background(), ObjectContainer, "job-a"); found || err != nil {
			t.Fatalf("the old name after its rename event: found=%v err=%v, want dockerd's 404", found, err)
		}
	})
	t.Run("a rename event whose oldName a label forged still drops the name by ID", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		ownerOK(t, in, ObjectContainer, "job-a", idA, "user:alice")
		f.set(func(f *ownerFake) {
			delete(f.names, "job-a")
			f.name("job-z", idA)
			f.name("job-a", idB)
		})
		gen := nameGen(in)
		// dockerd copies the container's labels over its attributes, so a
		// label oldName=/victim replaces the real old name.
		f.containerEvent("rename", idA, map[string]string{"name": "job-z", "oldName": "/victim"})
		waitNameGen(t, in, gen)
		ownerOK(t, in, ObjectContainer, "job-a", idB, "user:bob")
	})
	t.Run("a create event drops the name it takes", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		ownerOK(t, in, ObjectContainer, "job-a", idA, "user:alice")
		// The name changes hands with no event but the create's (the
		// cache never saw the old one go).
		f.set(func(f *ownerFake) { f.name("job-a", idB) })
		gen := nameGen(in)
		f.containerEvent("create", idB, map[string]string{"name": "job-a"})
		waitNameGen(t, in, gen)
		ownerOK(t, in, ObjectContainer, "job-a", idB, "user:bob")
	})
	t.Run("a destroy event drops the container's name", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		ownerOK(t, in, ObjectContainer, "job-a", idA, "user:alice")
		f.set(func(f *ownerFake) { f.name("job-a", idB) })
		gen := nameGen(in)
		// Without a name attribute: the ID is enough.
		f.destroy("container", idA)
		waitNameGen(t, in, gen)
		ownerOK(t, in, ObjectContainer, "job-a", idB, "user:bob")
	})
	t.Run("a rename event between the lookup's start and its store keeps it from being stored", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		asked, release := make(chan struct{}), make(chan struct{})
		f.set(func(f *ownerFake) {
			f.misbehave = func(path string, n int, w http.ResponseWriter, r *http.Request) bool {
				if path != "/containers/job-a/json" || n != 1 {
					return false
				}
				// dockerd has resolved the name to alice's container;
				// its answer is still on the way when the rename
				// happens.
				close(asked)
				<-release
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"Id": idA, "Name": "/job-a", "Image": "sha256:" + idNet, "Config": map[string]any{"Labels": map[string]string{ownerLabel: "user:alice"}}})
				return true
			}
		})
		type answer struct {
			id    string
			found bool
			err   error
		}
		done := make(chan answer, 1)
		go func() {
			id, _, found, err := in.ObjectOwner(context.Background(), ObjectContainer, "job-a")
			done <- answer{id, found, err}
		}()
		<-asked
		f.set(func(f *ownerFake) {
			delete(f.names, "job-a")
			f.name("job-z", idA)
			f.name("job-a", idB)
		})
		gen := nameGen(in)
		f.containerEvent("rename", idA, map[string]string{"name": "job-z", "oldName": "/job-a"})
		waitNameGen(t, in, gen)
		close(release)
		// The answer from before the rename is alice's container: what
		// was judged then, and what its request is pinned to.
		if a := <-done; a.id != idA || !a.found || a.err != nil {
			t.Fatalf("the lookup across the rename: %+v, want %s", a, idA)
		}
		ownerOK(t, in, ObjectContainer, "job-a", idB, "user:bob")
		if n := nameAsked(f, "job-a"); n != 2 {
			t.Fatalf("asked for the name %d times, want 2 (the answer from before the rename was not stored)", n)
		}
	})
	t.Run("a lost event stream drops every name and bypasses the cache until back", func(t *testing.T) {
		f := newOwnerFake()
		in, states := watchedClient(t, f)
		ownerOK(t, in, ObjectContainer, "job-a", idA, "user:alice")
		f.drop <- struct{}{}
		waitState(t, states, false)
		// While down, the name moves and no event says so.
		f.set(func(f *ownerFake) { f.name("job-a", idB) })
		ownerOK(t, in, ObjectContainer, "job-a", idB, "user:bob")
		ownerOK(t, in, ObjectContainer, "job-a", idB, "user:bob")
		if n := nameAsked(f, "job-a"); n != 3 {
			t.Fatalf("while down: asked %d times in all, want 3 (every lookup)", n)
		}
		waitState(t, states, true)
		// alice's container's labels are cached again: a name kept from
		// before the break would answer with it.
		ownerOK(t, in, ObjectContainer, idA, idA, "user:alice")
		ownerOK(t, in, ObjectContainer, "job-a", idB, "user:bob")
		ownerOK(t, in, ObjectContainer, "job-a", idB, "user:bob")
		if n := nameAsked(f, "job-a"); n != 4 {
			t.Fatalf("back up: asked %d times in all, want 4", n)
		}
	})
	t.Run("a rename forwarded through dockgate drops the name without any event", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		ownerOK(t, in, ObjectContainer, "job-a", idA, "user:alice")
		// docker rename job-a job-z, then a new job-a: dockerd has done
		// both, and its events have not arrived.
		f.set(func(f *ownerFake) {
			delete(f.names, "job-a")
			f.name("job-z", idA)
			f.name("job-a", idB)
		})
		in.ForgetContainerNames("job-a", "job-z")
		ownerOK(t, in, ObjectContainer, "job-a", idB, "user:bob")
	})
	t.Run("a remove by ID prefix forwarded through dockgate drops that container's name", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		ownerOK(t, in, ObjectContainer, "job-a", idA, "user:alice")
		f.set(func(f *ownerFake) { f.name("job-a", idB) })
		in.ForgetContainerNames(idA[:12])
		ownerOK(t, in, ObjectContainer, "job-a", idB, "user:bob")
	})
}

func TestNameCacheEntries(t *testing.T) {
	labels := map[string]string{ownerLabel: "user:alice"}
	store := func(c *ownerCache, name, resolved, id string) {
		at := c.begin()
		c.putObject(at.gen, ObjectContainer, id, labels)
		c.putName(at, name, resolved, id)
	}
	// labelsAgain caches the container's labels anew, so that what the
	// cache says of a name is its name entry alone.
	labelsAgain := func(c *ownerCache, id string) {
		c.putObject(c.generation(), ObjectContainer, id, labels)
	}
	named := func(c *ownerCache, name string) string {
		id, _, _ := c.named(name)
		return id
	}
	for _, tc := range []struct {
		name string
		flow func(c *ownerCache)
		// want is what "web" means to the cache afterwards ("" none).
		want string
	}{
		{"a name dockerd resolved by name is stored", func(c *ownerCache) {
			store(c, "web", "/web", idA)
		}, idA},
		{"a name asked with its leading slash is the same name", func(c *ownerCache) {
			store(c, "/web", "/web", idA)
		}, idA},
		{"an answer found through an ID prefix is not stored", func(c *ownerCache) {
			store(c, "web", "/other", idA)
		}, ""},
		{"nothing is stored while the event stream is down", func(c *ownerCache) {
			c.distrust()
			store(c, "web", "/web", idA)
			c.trust()
			labelsAgain(c, idA)
		}, ""},
		{"a lookup begun before the stream was lost is not stored", func(c *ownerCache) {
			at := c.begin()
			c.putObject(at.gen, ObjectContainer, idA, labels)
			c.distrust()
			c.trust()
			labelsAgain(c, idA)
			c.putName(at, "web", "/web", idA)
		}, ""},
		{"a lookup begun before a name changed is not stored", func(c *ownerCache) {
			at := c.begin()
			c.putObject(at.gen, ObjectContainer, idA, labels)
			c.forgetNames("unrelated")
			c.putName(at, "web", "/web", idA)
		}, ""},
		{"a 404 for the cached ID drops its name", func(c *ownerCache) {
			store(c, "web", "/web", idA)
			c.forget(ObjectContainer, idA)
			labelsAgain(c, idA)
		}, ""},
		{"a name without its container's labels answers nothing", func(c *ownerCache) {
			store(c, "web", "/web", idA)
			delete(c.objects, cacheKey(ObjectContainer, idA))
		}, ""},
		{"a container stored under a new name loses the old one", func(c *ownerCache) {
			store(c, "web", "/web", idA)
			store(c, "api", "/api", idA)
		}, ""},
		{"a name stored again for another container is that one's", func(c *ownerCache) {
			store(c, "web", "/web", idA)
			store(c, "web", "/web", idB)
		}, idB},
		{"forgetting the container's ID drops its name", func(c *ownerCache) {
			store(c, "web", "/web", idA)
			c.forgetNames(idA)
		}, ""},
		{"forgetting an ID prefix drops the names of the IDs it starts", func(c *ownerCache) {
			store(c, "web", "/web", idA)
			c.forgetNames(idA[:5])
		}, ""},
		{"forgetting another container's prefix keeps the name", func(c *ownerCache) {
			store(c, "web", "/web", idA)
			c.forgetNames(idB[:5], "api")
		}, idA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newOwnerCache()
			c.trust()
			tc.flow(c)
			if got := named(c, "web"); got != tc.want {
				t.Fatalf("web means %q, want %q", got, tc.want)
			}
			if len(c.names.byName) != len(c.names.byID) {
				t.Fatalf("%d names but %d IDs: %v %v", len(c.names.byName), len(c.names.byID), c.names.byName, c.names.byID)
			}
		})
	}

	t.Run("a destroyed container's name is not stored", func(t *testing.T) {
		c := newOwnerCache()
		c.trust()
		at := c.begin()
		// Its destroy event came while dockerd's answer was on the way;
		// nothing else moved the generations.
		c.destroyed(ObjectContainer, idA)
		c.putName(at, "web", "/web", idA)
		if id, ok := c.names.byName["web"]; ok {
			t.Fatalf("web stored for %s, destroyed before the store", id)
		}
	})
	t.Run("names are bounded", func(t *testing.T) {
		c := newOwnerCache()
		c.names.max = 4
		c.trust()
		for i := range 10 {
			store(c, fmt.Sprintf("job-%d", i), fmt.Sprintf("/job-%d", i), fmt.Sprintf("%064x", i))
		}
		if len(c.names.byName) != 4 || len(c.names.byID) != 4 {
			t.Fatalf("%d names, %d IDs in a cache of 4", len(c.names.byName), len(c.names.byID))
		}
	})
}
