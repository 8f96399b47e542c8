package dockerd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockerd/dockerdtest"
)

// ownerFake is a dockerd for the owner cache: containers, execs, networks
// and volumes with owner labels, /info, and an /events stream the test
// drives. It counts the inspect requests it answers, by path.
type ownerFake struct {
	mu    sync.Mutex
	asked map[string]int
	// names maps a container name to its full ID (dockerd's resolution).
	names map[string]string
	// labels of the objects by "containers/ID", "networks/ID",
	// "volumes/NAME"; execs map an exec ID to its container.
	labels map[string]map[string]string
	execs  map[string]string
	// imageLabels are the labels of the one image every container runs
	// (nil: {"from": "image"}).
	imageLabels map[string]string
	// events are the JSON messages sent to the subscriber; drop ends the
	// current subscription; subscribed says one began.
	events     chan string
	drop       chan struct{}
	subscribed chan struct{}
	// misbehave, when set, may answer a request instead (n counts the
	// requests for that path so far, from 1); it returns whether it did.
	misbehave func(path string, n int, w http.ResponseWriter, r *http.Request) bool
}

// ownerLabel is the label dockgate reads owners from; the client only
// passes labels on.
const ownerLabel = "io.dockgate.owner"

const (
	idA    = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	idB    = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	idExec = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	idNet  = "1111111111111111111111111111111111111111111111111111111111111111"
)

func newOwnerFake() *ownerFake {
	return &ownerFake{
		asked: map[string]int{},
		names: map[string]string{"job-a": idA, "job-b": idB},
		labels: map[string]map[string]string{
			"containers/" + idA: {ownerLabel: "user:alice"},
			"containers/" + idB: {ownerLabel: "user:bob"},
			"networks/" + idNet: {ownerLabel: "user:alice"},
			"volumes/cache":     {ownerLabel: "user:alice"},
		},
		execs:      map[string]string{idExec: idA},
		events:     make(chan string, 16),
		drop:       make(chan struct{}, 1),
		subscribed: make(chan struct{}, 16),
	}
}

func (f *ownerFake) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[path]
}

func (f *ownerFake) set(change func(f *ownerFake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

func (f *ownerFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := dockerdtest.VersionPrefix.ReplaceAllString(r.URL.Path, "")
	w.Header().Set("Api-Version", "1.41")
	switch p {
	case "/_ping":
		// A fresh connection for every request after it, so that Go's
		// transport never retries on a reused one behind the test's back.
		w.Header().Set("Connection", "close")
		_, _ = w.Write([]byte("OK"))
		return
	case "/info":
		_ = json.NewEncoder(w).Encode(map[string]string{"SystemTime": time.Now().Format(time.RFC3339Nano)})
		return
	case "/events":
		f.serveEvents(w, r)
		return
	}
	f.mu.Lock()
	f.asked[p]++
	n := f.asked[p]
	misbehave := f.misbehave
	f.mu.Unlock()
	if misbehave != nil && misbehave(p, n, w, r) {
		return
	}
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(parts) >= 2 {
		kind, ref := parts[0], parts[1]
		if kind == "containers" {
			ref = f.resolveContainer(ref)
		}
		switch kind {
		case "containers":
			if l, ok := f.labels["containers/"+ref]; ok {
				name := ""
				for n, id := range f.names {
					if id == ref {
						name = "/" + n
					}
				}
				reply(200, map[string]any{"Id": ref, "Name": name, "Image": "sha256:" + idNet, "Config": map[string]any{"Labels": l, "Image": "app:1"}})
				return
			}
		case "images":
			if ref == "sha256:"+idNet {
				labels := f.imageLabels
				if labels == nil {
					labels = map[string]string{"from": "image"}
				}
				reply(200, map[string]any{"Id": ref, "Config": map[string]any{"Labels": labels}})
				return
			}
		case "exec":
			if cid, ok := f.execs[ref]; ok {
				reply(200, map[string]any{"ID": ref, "ContainerID": cid})
				return
			}
		case "networks":
			if l, ok := f.labels["networks/"+ref]; ok {
				reply(200, map[string]any{"Id": ref, "Labels": l})
				return
			}
		case "volumes":
			if l, ok := f.labels["volumes/"+ref]; ok {
				reply(200, map[string]any{"Name": ref, "Labels": l})
				return
			}
		}
	}
	reply(404, map[string]string{"message": "No such object: " + p})
}

// resolveContainer resolves a container reference as dockerd's
// GetContainer does: a full ID, then an exact name (with or without its
// leading "/"), then a unique ID prefix. f.mu is held.
func (f *ownerFake) resolveContainer(ref string) string {
	if f.labels["containers/"+ref] != nil {
		return ref
	}
	if id, ok := f.names[strings.TrimPrefix(ref, "/")]; ok {
		return id
	}
	found := ""
	for key := range f.labels {
		if id, ok := strings.CutPrefix(key, "containers/"); ok && strings.HasPrefix(id, ref) {
			if found != "" {
				return ref
			}
			found = id
		}
	}
	if found == "" {
		return ref
	}
	return found
}

func (f *ownerFake) serveEvents(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	w.(http.Flusher).Flush()
	f.subscribed <- struct{}{}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-f.drop:
			return
		case e := <-f.events:
			_, _ = fmt.Fprintln(w, e)
			w.(http.Flusher).Flush()
		}
	}
}

// destroy removes an object from the fake and sends its destroy event.
func (f *ownerFake) destroy(kind, id string) {
	f.set(func(f *ownerFake) { delete(f.labels, kind+"s/"+id) })
	f.events <- fmt.Sprintf(`{"Type":%q,"Action":"destroy","Actor":{"ID":%q},"time":%d}`, kind, id, time.Now().Unix())
}

// watchedClient is a client of f whose owner cache follows f's
// events; it returns once the first subscription is trusted.
func watchedClient(t *testing.T, f *ownerFake) (*Client, <-chan bool) {
	t.Helper()
	in, err := New(dockerdtest.Serve(t, f))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	states := make(chan bool, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		in.WatchEvents(ctx, func(up bool, _ error) { states <- up })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		in.Close()
	})
	waitState(t, states, true)
	return in, states
}

func waitState(t *testing.T, states <-chan bool, want bool) {
	t.Helper()
	select {
	case up := <-states:
		if up != want {
			t.Fatalf("event stream up=%v, want %v", up, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("event stream never became up=%v", want)
	}
}

func ownerOK(t *testing.T, in *Client, kind, ref, wantID, wantOwner string) {
	t.Helper()
	id, labels, found, err := in.ObjectOwner(context.Background(), kind, ref)
	if err != nil || !found || id != wantID || labels[ownerLabel] != wantOwner {
		t.Fatalf("%s %s: got %q %v found=%v err=%v, want %s owned by %s", kind, ref, id, labels, found, err, wantID, wantOwner)
	}
}

func TestOwnerCache(t *testing.T) {
	t.Run("a container named by full ID is asked once", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		for range 3 {
			ownerOK(t, in, ObjectContainer, idA, idA, "user:alice")
		}
		if n := f.count("/containers/" + idA + "/json"); n != 1 {
			t.Fatalf("asked dockerd %d times, want 1", n)
		}
	})
	t.Run("what a name resolved to is cached by full ID", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		ownerOK(t, in, ObjectContainer, "job-a", idA, "user:alice")
		ownerOK(t, in, ObjectContainer, idA, idA, "user:alice")
		if n := f.count("/containers/" + idA + "/json"); n != 0 {
			t.Fatalf("asked for the ID %d times, want 0 (cached from the name's answer)", n)
		}
	})
	t.Run("an ID prefix is never answered from the cache", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		ownerOK(t, in, ObjectContainer, idA, idA, "user:alice")
		_, _, _, _ = in.ObjectOwner(context.Background(), ObjectContainer, idA[:12])
		if n := f.count("/containers/" + idA[:12] + "/json"); n != 1 {
			t.Fatalf("asked for the prefix %d times, want 1", n)
		}
	})
	t.Run("a destroy event evicts", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		ownerOK(t, in, ObjectContainer, idA, idA, "user:alice")
		f.destroy("container", idA)
		// Until the event is applied the entry may answer: dockerd then
		// answers the forwarded request with 404 itself.
		waitFor(t, "the destroyed container to be looked up again", func() bool {
			_, _, found, err := in.ObjectOwner(context.Background(), ObjectContainer, idA)
			return err == nil && !found
		})
	})
	t.Run("a destroyed network and a destroyed exec's container evict", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		ownerOK(t, in, ObjectNetwork, idNet, idNet, "user:alice")
		ownerOK(t, in, ObjectExec, idExec, idExec, "user:alice")
		ownerOK(t, in, ObjectExec, idExec, idExec, "user:alice")
		if n := f.count("/exec/" + idExec + "/json"); n != 1 {
			t.Fatalf("asked for the exec %d times, want 1", n)
		}
		f.destroy("network", idNet)
		f.set(func(f *ownerFake) { delete(f.execs, idExec) })
		f.destroy("container", idA)
		waitFor(t, "the network to be gone", func() bool {
			_, _, found, err := in.ObjectOwner(context.Background(), ObjectNetwork, idNet)
			return err == nil && !found
		})
		waitFor(t, "the exec to be gone", func() bool {
			_, _, found, err := in.ObjectOwner(context.Background(), ObjectExec, idExec)
			return err == nil && !found
		})
	})
	t.Run("volumes are never cached: a name is their only ID", func(t *testing.T) {
		f := newOwnerFake()
		in, _ := watchedClient(t, f)
		ownerOK(t, in, ObjectVolume, "cache", "cache", "user:alice")
		f.set(func(f *ownerFake) { f.labels["volumes/cache"] = map[string]string{ownerLabel: "user:bob"} })
		ownerOK(t, in, ObjectVolume, "cache", "cache", "user:bob")
	})
	t.Run("a lost event stream empties the cache and bypasses it until back", func(t *testing.T) {
		f := newOwnerFake()
		in, states := watchedClient(t, f)
		ownerOK(t, in, ObjectContainer, idA, idA, "user:alice")
		f.drop <- struct{}{}
		waitState(t, states, false)
		// While down, with a destroy the cache would not hear of.
		f.set(func(f *ownerFake) { delete(f.labels, "containers/"+idA) })
		if _, _, found, err := in.ObjectOwner(context.Background(), ObjectContainer, idA); err != nil || found {
			t.Fatalf("while down: found=%v err=%v, want dockerd's 404", found, err)
		}
		ownerOK(t, in, ObjectContainer, idB, idB, "user:bob")
		ownerOK(t, in, ObjectContainer, idB, idB, "user:bob")
		if n := f.count("/containers/" + idB + "/json"); n != 2 {
			t.Fatalf("while down: asked %d times, want 2 (every lookup)", n)
		}
		waitState(t, states, true)
		ownerOK(t, in, ObjectContainer, idB, idB, "user:bob")
		ownerOK(t, in, ObjectContainer, idB, idB, "user:bob")
		if n := f.count("/containers/" + idB + "/json"); n != 3 {
			t.Fatalf("back up: asked %d times in all, want 3", n)
		}
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOwnerCacheEntries(t *testing.T) {
	c := newOwnerCache()
	labels := map[string]string{ownerLabel: "user:alice"}
	gen := c.generation()
	c.putObject(gen, ObjectContainer, idA, labels)
	if _, ok := c.labels(ObjectContainer, idA); ok {
		t.Fatal("untrusted cache stored an answer")
	}
	c.trust()
	c.putObject(gen, ObjectContainer, idA, labels)
	if _, ok := c.labels(ObjectContainer, idA); ok {
		t.Fatal("an answer from before the cache was trusted was stored")
	}
	gen = c.generation()
	c.putObject(gen, ObjectContainer, idA, labels)
	c.putObject(gen, ObjectVolume, "cache", labels)
	c.putObject(gen, ObjectContainer, "job-a", labels)
	c.putExec(gen, idExec, idA)
	if _, ok := c.labels(ObjectContainer, idA); !ok {
		t.Fatal("no hit after a store")
	}
	if _, ok := c.labels(ObjectVolume, "cache"); ok {
		t.Fatal("a volume was cached")
	}
	if _, ok := c.labels(ObjectContainer, "job-a"); ok {
		t.Fatal("a name was cached")
	}
	c.destroyed(ObjectContainer, idA)
	if _, ok := c.labels(ObjectContainer, idA); ok {
		t.Fatal("hit after destroy")
	}
	if _, ok := c.execContainer(idExec); ok {
		t.Fatal("the destroyed container's exec is still cached")
	}
	// A lookup that began before the destroy answers after it.
	c.putObject(gen, ObjectContainer, idA, labels)
	c.putExec(gen, idExec, idA)
	if _, ok := c.labels(ObjectContainer, idA); ok {
		t.Fatal("a destroyed container was stored again")
	}
	if _, ok := c.execContainer(idExec); ok {
		t.Fatal("an exec of a destroyed container was stored")
	}
	c.putObject(gen, ObjectContainer, idB, labels)
	c.distrust()
	c.trust()
	if _, ok := c.labels(ObjectContainer, idB); ok {
		t.Fatal("an entry survived losing the event stream")
	}
	c.putObject(gen, ObjectContainer, idB, labels)
	if _, ok := c.labels(ObjectContainer, idB); ok {
		t.Fatal("an answer from before the stream was lost was stored")
	}

	small := newOwnerCache()
	small.max = 4
	small.trust()
	for i := range 10 {
		small.putObject(small.generation(), ObjectContainer, fmt.Sprintf("%064x", i), labels)
	}
	if n := len(small.objects) + len(small.execs); n != 4 {
		t.Fatalf("%d entries in a cache of 4", n)
	}
}

// TestImageLabelsAreNoOwner: a container takes its image's labels, and an
// image's author may have put dockgate's owner label in it: a container
// whose owner label is its image's has no owner; one whose owner label
// dockgate set over the image's has dockgate's.
func TestImageLabelsAreNoOwner(t *testing.T) {
	f := newOwnerFake()
	f.imageLabels = map[string]string{ownerLabel: "user:alice", "from": "image"}
	in, err := New(dockerdtest.Serve(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	_, labels, found, err := in.ObjectOwner(context.Background(), ObjectContainer, idA)
	if err != nil || !found || labels[ownerLabel] != "" {
		t.Errorf("a container whose owner label is its image's: labels %v found=%v err=%v, want no owner", labels, found, err)
	}
	_, labels, found, err = in.ObjectOwner(context.Background(), ObjectContainer, idB)
	if err != nil || !found || labels[ownerLabel] != "user:bob" {
		t.Errorf("dockgate's owner label over the image's: labels %v found=%v err=%v, want user:bob", labels, found, err)
	}
	// The image's own owner, vouched for by a record of dockgate's: a
	// tenant's container of the tenant's own image.
	f.set(func(f *ownerFake) {
		f.labels["containers/"+idA] = map[string]string{ownerLabel: "user:alice", "io.dockgate.creator": `{"id":"0123456789abcdef","owner":"user:alice","creators":[["user:alice"]]}`}
	})
	in2, err := New(dockerdtest.Serve(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer in2.Close()
	_, labels, found, err = in2.ObjectOwner(context.Background(), ObjectContainer, idA)
	if err != nil || !found || labels[ownerLabel] != "user:alice" {
		t.Errorf("an owner label its image has too, vouched for by dockgate's record: labels %v found=%v err=%v, want user:alice", labels, found, err)
	}
}
