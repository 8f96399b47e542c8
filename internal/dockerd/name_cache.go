package dockerd

import "strings"

// The name cache: CI scripts name their containers, and a tenant's every
// request by name (`docker exec web ...`) cost one inspect of dockerd to
// learn which container the name means, where the same request by full ID
// is answered from the owner cache alone. This remembers what dockerd
// resolved a container name to, and is part of the owner cache: the same
// lock, the same trust (only while dockerd's event stream is up, emptied
// when it breaks) and the same generation.
//
// It cannot let a caller act on anything it was not judged for: the
// request is forwarded with the full ID that was judged (authz pins it),
// and that ID's owner labels never change. What a stale entry can do is
// send a request to the container the name meant a moment ago rather than
// to the one it means now. So:
//
//   - only an answer dockerd found BY NAME is stored: its Name is the name
//     asked for. dockerd resolves a full ID, then an exact name, then a
//     unique ID prefix; an answer found through a prefix is never stored,
//     and neither full IDs nor prefixes are looked up here. A name keeps
//     its meaning against new IDs: dockerd tries names before prefixes.
//   - dockerd's container create, rename and destroy events drop the names
//     they touch (the event's name and oldName, and every name of its
//     container's ID: oldName comes from a map a label of the same key
//     overwrites, so the ID is what is relied on) and move the names
//     generation on, so that a lookup in flight across the event does not
//     store what it read before it.
//   - a container create, rename or remove forwarded through dockgate drops
//     the names it touches, whatever dockerd answered, before the client
//     has the answer (authz's hook, ForgetContainerNames), so that
//     `docker rename foo bar && docker exec foo` or `docker rm -f foo &&
//     docker run --name foo ... && docker exec foo` through dockgate
//     reaches the container the script means without waiting for an
//     event.
//   - a 404 for a cached full ID drops that ID's name too.
//
// What is left is the event window: a container dockerd removes on its
// own (--rm, auto-remove, a prune) or one renamed, removed or created by
// someone on dockerd's socket directly is seen when its event arrives; in
// between, a request by the old name goes to the container the name
// meant (judged by that container's owner), or gets dockerd's 404 if it
// is gone.

// ForgetContainerNames drops the cached names a request forwarded through
// dockgate may have changed the meaning of (a container create, rename or
// remove), so that the next request by name is resolved by dockerd and
// does not wait for the event. Each ref is a container name, a full ID or
// an ID prefix, as the request named it. A lookup in flight does not
// store what it read.
func (d *Client) ForgetContainerNames(refs ...string) { d.cache.forgetNames(refs...) }

// nameCacheSize bounds the names; a full cache drops an arbitrary one,
// which costs one more lookup later.
const nameCacheSize = 16384

// containerNames maps container names to the full IDs dockerd resolved
// them to, and back, so that a container's name can be dropped by its ID.
// Its maps and gen are guarded by the owner cache's lock.
type containerNames struct {
	byName map[string]string // name (without "/") → full ID
	byID   map[string]string // full ID → its name
	// gen moves on whenever what a name means may have changed: a name is
	// stored only if no such change came while it was looked up.
	gen uint64
	max int
}

func newContainerNames() containerNames {
	return containerNames{byName: make(map[string]string), byID: make(map[string]string), max: nameCacheSize}
}

// lookupStart is when a lookup began: the owner cache's generation (trust)
// and the names generation.
type lookupStart struct {
	gen, names uint64
}

// begin is taken before asking dockerd: an answer is stored only if
// nothing it depends on changed in between.
func (c *ownerCache) begin() lookupStart {
	c.mu.Lock()
	defer c.mu.Unlock()
	return lookupStart{gen: c.gen, names: c.names.gen}
}

// nameKey is a container name as dockerd's name index holds it, without
// its leading "/": dockerd reads "web" and "/web" as the same name.
func nameKey(name string) string { return strings.TrimPrefix(name, "/") }

// named returns the full ID a container name means and that container's
// labels, when both are cached.
func (c *ownerCache) named(name string) (string, map[string]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted {
		return "", nil, false
	}
	id, ok := c.names.byName[nameKey(name)]
	if !ok {
		return "", nil, false
	}
	labels, ok := c.objects[cacheKey(ObjectContainer, id)]
	if !ok {
		return "", nil, false
	}
	return id, labels, true
}

// putName stores that dockerd answered the lookup of name, begun at at,
// with the container id named resolved (its inspect's Name, "/web"): only
// when it found that container by that name.
func (c *ownerCache) putName(at lookupStart, name, resolved, id string) {
	if isFullID(name) || "/"+nameKey(name) != resolved || !isFullID(id) {
		return
	}
	key := nameKey(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted || at.gen != c.gen || at.names != c.names.gen || c.gone[cacheKey(ObjectContainer, id)] {
		return
	}
	n := &c.names
	if old, ok := n.byName[key]; ok {
		delete(n.byID, old)
	}
	if old, ok := n.byID[id]; ok {
		// A container has one name: the one it was stored under before
		// is no longer its.
		delete(n.byName, old)
	}
	if len(n.byName) >= n.max {
		for k, v := range n.byName {
			delete(n.byName, k)
			delete(n.byID, v)
			break
		}
	}
	n.byName[key] = id
	n.byID[id] = key
}

// forgetNames drops every name refs may touch and moves the names
// generation on. Each ref is a container name, a full ID (its container's
// name goes) or an ID prefix (the names of every ID it starts).
func (c *ownerCache) forgetNames(refs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names.gen++
	for _, ref := range refs {
		if ref == "" {
			continue
		}
		c.dropName(nameKey(ref))
		switch {
		case isFullID(ref):
			c.dropNameOf(ref)
		case isHex(ref):
			for id := range c.names.byID {
				if strings.HasPrefix(id, ref) {
					c.dropNameOf(id)
				}
			}
		}
	}
}

// forgetName drops a name dockerd answered 404 for. Nothing changed what
// names mean (it may be a guess): the generation stays.
func (c *ownerCache) forgetName(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropName(nameKey(name))
}

// dropName drops the name key. c.mu is held.
func (c *ownerCache) dropName(key string) {
	if id, ok := c.names.byName[key]; ok {
		delete(c.names.byName, key)
		delete(c.names.byID, id)
	}
}

// dropNameOf drops the name of the container id. c.mu is held.
func (c *ownerCache) dropNameOf(id string) {
	if key, ok := c.names.byID[id]; ok {
		delete(c.names.byID, id)
		delete(c.names.byName, key)
	}
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}
