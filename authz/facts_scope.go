package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/docker/docker/api/types/filters"
)

// Filtered lists and events: what a tenant lists, follows
// or prunes is limited to its own objects. Where dockerd can filter by
// label, the owner label filter is merged into the request (dockerd ANDs
// label filters, so the client's own still apply); where a tenant must also
// see objects nobody owns (shared base images), the response is filtered.
// Callers who are not tenants keep their request and response bytes.
//
// What the label filter cannot reach: volume and network events carry no
// labels in their attributes (only container events, and image events of
// images that still exist, carry the object's labels), so a tenant's event
// stream shows its containers and its labelled images only.

// scopeFacts limits a tenant's list, event stream or prune to its own
// objects (Request.Target, Request.FilterResponse). It adds no fact: what
// is limited is the answer, not whether the request may be made.
func scopeFacts(x *extraction) error {
	if x.m.scope == nil || x.req.Owner == "" {
		return nil
	}
	return x.m.scope(x)
}

// scopeByOwnerFilter forwards the request with the owner label filter
// merged into the filters value dockerd reads (the first one). Appending a
// second filters parameter would be ignored by dockerd. The routes it
// scopes each read r.Form.Get("filters") with filters.FromJSON and accept
// the label filter (moby 20.10: acceptedPsFilterTags, volume
// acceptedListFilterTags and acceptedPruneFilters, network acceptedFilters
// and networksAcceptedFilters, containersAcceptedFilters,
// imagesAcceptedFilters; events match labels against the actor's
// attributes). A label filter would hide dockerd's own networks and the
// unlabelled base images every tenant may use, so those lists are filtered
// in the answer instead (scopeNetworkList, scopeImageList); system df takes
// no filters (API 1.41); the build cache records no owner (refuseBuildPrune).
func scopeByOwnerFilter(x *extraction) error {
	raw, err := x.formValue("filters")
	if err != nil {
		return err
	}
	merged, err := mergeOwnerFilter(raw, x.req.Owner)
	if err != nil {
		return badBody("%s: invalid filters %q: %v", x.m.Action, raw, err)
	}
	return x.setFirstQueryValue("filters", merged)
}

// ownerFilterKey is the filter key dockerd matches labels with.
const ownerFilterKey = "label"

// mergeOwnerFilter returns the filters value that means what raw means to
// dockerd plus the label filter io.dockgate.owner=owner. raw is read with
// dockerd's own filters.FromJSON (the map form and the legacy list form);
// the result is in the map form, which every dockerd since API 1.22 reads.
func mergeOwnerFilter(raw, owner string) (string, error) {
	args, err := filters.FromJSON(raw)
	if err != nil {
		return "", err
	}
	// Args keeps its map private; its JSON is the way in. Add is not used:
	// it panics on a key whose set decoded as null ({"label":null}).
	canon, err := json.Marshal(args)
	if err != nil {
		return "", fmt.Errorf("re-encoding the filters: %w", err)
	}
	fields := map[string]map[string]bool{}
	if err := json.Unmarshal(canon, &fields); err != nil {
		return "", fmt.Errorf("re-reading the filters: %w", err)
	}
	if fields[ownerFilterKey] == nil {
		fields[ownerFilterKey] = map[string]bool{}
	}
	fields[ownerFilterKey][OwnerLabel+"="+owner] = true
	out, err := json.Marshal(fields)
	if err != nil {
		return "", fmt.Errorf("encoding the filters: %w", err)
	}
	// Fail closed: forward only what dockerd reads back as exactly the
	// merged filters.
	back, err := filters.FromJSON(string(out))
	if err != nil {
		return "", fmt.Errorf("the merged filters do not decode: %w", err)
	}
	again, err := json.Marshal(back)
	if err != nil || !bytes.Equal(again, out) {
		return "", errors.New("the merged filters do not decode to what was merged")
	}
	return string(out), nil
}

// scopeImageList hides other tenants' images from a tenant's image list.
// Images nobody owns (pulled, loaded or built outside dockgate) stay
// visible: they are what tenants run and build on.
func scopeImageList(x *extraction) error {
	owner := x.req.Owner
	x.req.FilterResponse = func(body []byte) ([]byte, error) {
		out, err := filterLabelledList(body, visibleImage(owner))
		if err != nil {
			return nil, fmt.Errorf("image list: %w", err)
		}
		// dockerd's JSON encoder ends its answer with a newline.
		return append(out, '\n'), nil
	}
	return nil
}

// scopeNetworkList limits a tenant's network list to its own networks and
// dockerd's predefined ones (unlabelled, under their reserved names), so
// that a client looking for "bridge" (testcontainers' default network)
// finds it instead of creating a network of its own per tenant.
func scopeNetworkList(x *extraction) error {
	owner := x.req.Owner
	x.req.FilterResponse = func(body []byte) ([]byte, error) {
		out, err := filterList(body, func(e listElement) bool {
			switch ownerOf(owner, e.Labels) {
			case "self":
				return true
			case "none":
				return predefinedNetworks[e.Name]
			}
			return false
		})
		if err != nil {
			return nil, fmt.Errorf("network list: %w", err)
		}
		return append(out, '\n'), nil
	}
	return nil
}

// scopeDiskUsage limits a tenant's disk usage report to its own
// containers and volumes and the images it may list. The build cache
// cannot be attributed to anyone, so a tenant sees none of it. Every other
// field is passed on as dockerd sent it.
func scopeDiskUsage(x *extraction) error {
	owner := x.req.Owner
	own := func(labels map[string]string) bool { return ownerOf(owner, labels) == "self" }
	x.req.FilterResponse = func(body []byte) ([]byte, error) {
		out, err := rewriteObject(body, func(key string, v json.RawMessage) (json.RawMessage, error) {
			// The client matches keys case-insensitively: so does this.
			switch {
			case strings.EqualFold(key, "Images"):
				return filterLabelledList(v, visibleImage(owner))
			case strings.EqualFold(key, "Containers"), strings.EqualFold(key, "Volumes"):
				return filterLabelledList(v, own)
			case strings.EqualFold(key, "BuildCache"):
				return filterLabelledList(v, func(map[string]string) bool { return false })
			}
			return v, nil
		})
		if err != nil {
			return nil, fmt.Errorf("disk usage: %w", err)
		}
		return out, nil
	}
	return nil
}

func visibleImage(owner string) func(map[string]string) bool {
	return func(labels map[string]string) bool { return ownerOf(owner, labels) != "other" }
}

// refuseBuildPrune refuses a tenant's build cache prune: the cache records
// no owner, so it could only prune everyone's.
func refuseBuildPrune(x *extraction) error {
	return &RouteError{Status: http.StatusForbidden, Message: x.req.Caller + " may not call " + x.m.Action + ": the build cache records no owner, so pruning it cannot be limited to the caller's objects"}
}

// filterLabelledList keeps the elements of a JSON list whose Labels keep
// accepts; each kept element keeps its bytes. A null list stays null.
func filterLabelledList(list json.RawMessage, keep func(labels map[string]string) bool) (json.RawMessage, error) {
	return filterList(list, func(e listElement) bool { return keep(e.Labels) })
}

// listElement is what a list filter reads of each element.
type listElement struct {
	Name   string
	Labels map[string]string
}

// filterList keeps the elements of a JSON list keep accepts; each kept
// element keeps its bytes. A null list stays null.
func filterList(list json.RawMessage, keep func(listElement) bool) (json.RawMessage, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(list, &items); err != nil {
		return nil, fmt.Errorf("decoding a list: %w", err)
	}
	if items == nil {
		return json.RawMessage("null"), nil
	}
	var b bytes.Buffer
	b.WriteByte('[')
	n := 0
	for i, item := range items {
		var obj listElement
		if err := json.Unmarshal(item, &obj); err != nil {
			return nil, fmt.Errorf("decoding the labels of element %d: %w", i, err)
		}
		if !keep(obj) {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(item)
		n++
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// rewriteObject passes each member of a JSON object through rewrite, in
// the order dockerd sent them, and keeps the bytes of the values rewrite
// returns unchanged.
func rewriteObject(body []byte, rewrite func(key string, v json.RawMessage) (json.RawMessage, error)) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("decoding the object: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("decoding the object: got %v, want an object", tok)
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for n := 0; dec.More(); n++ {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("decoding the object: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("decoding the object: got %v, want a key", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", key, err)
		}
		if v, err = rewrite(key, v); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		k, err := json.Marshal(key)
		if err != nil {
			return nil, fmt.Errorf("encoding the key %q: %w", key, err)
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("decoding the object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("decoding the object: data after it")
	}
	// dockerd's JSON encoder ends its answer with a newline.
	b.WriteString("}\n")
	return b.Bytes(), nil
}
