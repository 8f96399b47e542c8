package dockerd

import (
	"sync"
)

// The owner cache: a tenant's every request on an existing object asks
// dockerd whose it is, and under load those questions
// queued behind dockerd's own work until they timed out as 502s. What is
// cached is what cannot change:
//
//   - a container's and a network's labels, by full ID: labels are fixed at
//     create, and a full ID is 256 random bits that dockerd never gives
//     again, so an entry for an ID can only become stale by the object
//     going away, and then dockerd answers the forwarded request with 404;
//   - an exec's container ID, by exec ID (fixed when the exec is created);
//   - what a caller's container is judged by (callers.go), by full ID: its
//     labels, image and name. The name is the one part that changes, so
//     the entry is also dropped on the container's rename event.
//
// A container name → full ID mapping is cached too, but with rules of its
// own, because names move (rename, remove and create again): see
// name_cache.go. What is never cached: an ID prefix → ID mapping (a new
// container's ID may share it); a network's name (dockerd lets two
// networks share one); volumes, whose name is their only ID, so that a volume
// removed and created again by someone else under the same name would be
// read from a stale entry in the moment before its destroy event arrives;
// and images, whose names are tags that move.
//
// Entries are dropped on dockerd's destroy events (events.go) and
// when dockerd answers 404 for an ID. The cache is only trusted while the
// event stream is up: when it breaks, everything is dropped and every
// lookup goes to dockerd until the stream is back. A lookup that began
// before a destroy or a break does not store its answer afterwards
// (tombstones and the generation below).

// ownerCacheSize bounds the entries (objects and execs together); a full
// cache drops an arbitrary entry, which costs one more lookup later.
const ownerCacheSize = 16384

// ownerTombstones is how many destroyed IDs are remembered, so that a
// lookup in flight while its object was destroyed does not store it.
const ownerTombstones = 4096

type ownerCache struct {
	mu      sync.Mutex
	trusted bool
	// gen changes whenever trust is given or taken: an answer is stored
	// only under the generation its lookup began in.
	gen     uint64
	max     int
	objects map[string]map[string]string // cacheKey(kind, full ID) → labels
	execs   map[string]string            // exec ID → its container's full ID
	callers map[string]CallerContainer   // full container ID → what its callers are judged by
	// renames counts rename events: a caller container's name is the one
	// cached thing that changes, and a lookup that saw a rename begin
	// while it asked does not store what it read.
	renames uint64
	gone    map[string]bool // tombstones, by cacheKey
	ring    []string        // the tombstones in the order they came
	next    int
	// names are container names → full IDs (name_cache.go).
	names containerNames
}

func newOwnerCache() *ownerCache {
	return &ownerCache{
		max:     ownerCacheSize,
		objects: make(map[string]map[string]string),
		execs:   make(map[string]string),
		callers: make(map[string]CallerContainer),
		gone:    make(map[string]bool),
		names:   newContainerNames(),
		ring:    make([]string, ownerTombstones),
	}
}

func cacheKey(kind, id string) string { return kind + "/" + id }

// cacheable says whether lookups of kind by nameOrID may be answered from
// the cache: only a full ID (64 lower-case hex digits) of a kind whose
// labels never change. dockerd resolves a full container or network ID to
// that object before trying names, and looks exec IDs up exactly.
func cacheable(kind, nameOrID string) bool {
	switch kind {
	case ObjectContainer, ObjectNetwork, ObjectExec:
		return isFullID(nameOrID)
	}
	return false
}

func isFullID(s string) bool { return len(s) == 64 && isHex(s) }

// generation is the generation a lookup begins in.
func (c *ownerCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// callerGeneration is the generation and rename count a caller lookup
// begins in.
func (c *ownerCache) callerGeneration() (uint64, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, c.renames
}

// caller returns the cached caller container of a full ID.
func (c *ownerCache) caller(id string) (CallerContainer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted {
		return CallerContainer{}, false
	}
	cc, ok := c.callers[id]
	return cc, ok
}

// putCaller stores a caller container read in a lookup that began in
// generation gen with renames renames seen.
func (c *ownerCache) putCaller(gen, renames uint64, cc CallerContainer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted || gen != c.gen || renames != c.renames || c.gone[cacheKey(ObjectContainer, cc.ID)] {
		return
	}
	c.makeRoom()
	c.callers[cc.ID] = cc
}

// renamed drops a container whose name changed.
func (c *ownerCache) renamed(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.renames++
	delete(c.callers, id)
}

// forgetCaller drops a caller container dockerd no longer knows.
func (c *ownerCache) forgetCaller(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.callers, id)
}

// labels returns the cached labels of a container or network.
func (c *ownerCache) labels(kind, id string) (map[string]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted {
		return nil, false
	}
	l, ok := c.objects[cacheKey(kind, id)]
	return l, ok
}

// execContainer returns the cached container ID of an exec.
func (c *ownerCache) execContainer(execID string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted {
		return "", false
	}
	id, ok := c.execs[execID]
	return id, ok
}

// putObject stores what dockerd answered for a container or network in a
// lookup that began in generation gen.
func (c *ownerCache) putObject(gen uint64, kind, id string, labels map[string]string) {
	if !cacheable(kind, id) || kind == ObjectExec {
		return
	}
	key := cacheKey(kind, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted || gen != c.gen || c.gone[key] {
		return
	}
	c.makeRoom()
	if labels == nil {
		labels = map[string]string{}
	}
	c.objects[key] = labels
}

// putExec stores an exec's container.
func (c *ownerCache) putExec(gen uint64, execID, containerID string) {
	if !isFullID(execID) || !isFullID(containerID) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted || gen != c.gen || c.gone[cacheKey(ObjectContainer, containerID)] {
		return
	}
	c.makeRoom()
	c.execs[execID] = containerID
}

// makeRoom drops an arbitrary entry when the cache is full. c.mu is held.
func (c *ownerCache) makeRoom() {
	if len(c.objects)+len(c.execs)+len(c.callers) < c.max {
		return
	}
	for k := range c.callers {
		delete(c.callers, k)
		return
	}
	for k := range c.execs {
		delete(c.execs, k)
		return
	}
	for k := range c.objects {
		delete(c.objects, k)
		return
	}
}

// destroyed drops an object dockerd removed, and the execs of a removed
// container, and remembers the ID so that a lookup still in flight does not
// store it again.
func (c *ownerCache) destroyed(kind, id string) {
	key := cacheKey(kind, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.objects, key)
	if kind == ObjectContainer {
		delete(c.callers, id)
		for e, cid := range c.execs {
			if cid == id {
				delete(c.execs, e)
			}
		}
	}
	if c.gone[key] {
		return
	}
	if old := c.ring[c.next]; old != "" {
		delete(c.gone, old)
	}
	c.ring[c.next] = key
	c.next = (c.next + 1) % len(c.ring)
	c.gone[key] = true
}

// forget drops an entry dockerd no longer knows (it answered 404).
func (c *ownerCache) forget(kind, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if kind == ObjectExec {
		delete(c.execs, id)
		return
	}
	delete(c.objects, cacheKey(kind, id))
	if kind == ObjectContainer {
		// Whatever name meant it means something else now, or nothing.
		c.dropNameOf(id)
	}
}

// distrust drops everything and answers nothing until trust: the events
// that would keep the cache true are not arriving.
func (c *ownerCache) distrust() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trusted = false
	c.gen++
	clear(c.objects)
	clear(c.execs)
	clear(c.callers)
	clear(c.names.byName)
	clear(c.names.byID)
}

// trust starts answering from the cache: the event stream is up.
func (c *ownerCache) trust() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trusted = true
	c.gen++
}
