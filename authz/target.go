package authz

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The request target a tenant's request is forwarded with: the
// object it names pinned to the full ID dockgate resolved and judged, so
// that a rename or a new ID prefix between dockgate's lookup and dockerd's
// cannot redirect it, and the owner filter merged into a list's query.
// Every change goes through these helpers into Request.Target; a request
// nothing changed keeps the bytes it was received with.

// target returns the escaped path and raw query to forward: as received,
// or as changed so far.
func (x *extraction) target() (path, rawQuery string) {
	if x.req.Target != "" {
		path, rawQuery, _ = strings.Cut(x.req.Target, "?")
		return path, rawQuery
	}
	u := x.req.URL
	path = u.RawPath
	if path == "" {
		path = u.EscapedPath()
	}
	return path, u.RawQuery
}

func (x *extraction) setTarget(path, rawQuery string) {
	if rawQuery != "" {
		path += "?" + rawQuery
	}
	x.req.Target = path
}

// pinPathVar forwards the request with its path variable name (the first
// variable of the route, such as a container's {name}) replaced by value,
// a full object ID. The rest of the path is kept as dockerd decodes it.
func (x *extraction) pinPathVar(name, value string) error {
	// Two lookups of the same name (the host paths judged again at start,
	// then the owner) must have found the same object, or the request is
	// not one thing.
	if prev, ok := x.pinned[name]; ok && prev != value {
		return &RouteError{Status: http.StatusConflict, Message: fmt.Sprintf("%s %q changed while its request was judged (%s, then %s); try again", name, x.m.Vars[name], prev, value)}
	}
	if x.pinned == nil {
		x.pinned = make(map[string]string)
	}
	x.pinned[name] = value
	tmpl := x.m.Path
	open := strings.IndexByte(tmpl, '{')
	if open < 0 || !(strings.HasPrefix(tmpl[open:], "{"+name+"}") || strings.HasPrefix(tmpl[open:], "{"+name+":")) {
		return badTarget("internal error: %s has no leading {%s}", x.m.Action, name)
	}
	prefix := ""
	if x.m.APIVersion != "" {
		prefix = "/v" + x.m.APIVersion
	}
	head := prefix + tmpl[:open] + x.m.Vars[name]
	dec := x.req.URL.Path
	if !strings.HasPrefix(dec, head) {
		return badTarget("internal error: the path of %s does not start with %q", x.m.Action, head)
	}
	pinned := (&url.URL{Path: prefix + tmpl[:open] + value + dec[len(head):]}).EscapedPath()
	_, q := x.target()
	x.setTarget(pinned, q)
	return nil
}

// setFirstQueryValue forwards the request with the first value of the
// query parameter name replaced by value (added when there is none): the
// value dockerd reads with r.Form.Get. Other values and parameters keep
// their bytes. A form body that sets the parameter would come first in
// dockerd's r.Form, so it is refused.
func (x *extraction) setFirstQueryValue(name, value string) error {
	if isFormBody(x.req) {
		body, err := url.ParseQuery(string(x.req.Body))
		if err != nil {
			return badBody("malformed form body: %v", err)
		}
		if _, ok := body[name]; ok {
			return badBody("%s in a form body cannot be limited to the caller's objects; send it in the query", name)
		}
	}
	path, q := x.target()
	if _, err := url.ParseQuery(q); err != nil {
		return badBody("malformed query: %v", err)
	}
	set := url.QueryEscape(name) + "=" + url.QueryEscape(value)
	parts := strings.Split(q, "&")
	for i, part := range parts {
		k, _, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return badBody("malformed query: %v", err)
		}
		if key == name {
			parts[i] = set
			x.setTarget(path, strings.Join(parts, "&"))
			return nil
		}
	}
	if q != "" {
		q += "&"
	}
	x.setTarget(path, q+set)
	return nil
}
