package dockermux

import "strings"

// route is one dockerd route: a template and the table rows it stands
// for (one, or several told apart by query: Row.Query).
type route struct {
	tpl  *template
	rows []int
}

// registration is one gorilla/mux route of dockerd's: a route's template
// with the version prefix, or bare.
type registration struct {
	*route
	versioned bool
}

// methodIndex is one method's registrations by the first path segment
// they can match, each list in registration order, so that a request is
// tried against a handful of templates, in the order gorilla/mux would
// try them, instead of all of them. A registration that cannot be ruled
// out by the segment (its first segment holds a variable) is in every
// list it might match in.
type methodIndex struct {
	// bare holds, by the path's first segment, the bare registrations
	// that may match a path without a version prefix; bareOther those for
	// any other first segment.
	bare      map[string][]*registration
	bareOther []*registration
	// versioned holds, by the first segment after the version prefix,
	// the registrations that may match a path with one: versioned
	// templates of that segment and bare templates whose first segment
	// could be "v1.41" (a variable, or literal text that reads as a
	// version); versionedOther those for any other segment.
	versioned      map[string][]*registration
	versionedOther []*registration
}

func newMethodIndex(regs []*registration) *methodIndex {
	ix := &methodIndex{bare: make(map[string][]*registration), versioned: make(map[string][]*registration)}
	// The keys first, so that each list can then be built in one pass in
	// registration order.
	for _, r := range regs {
		if r.tpl.wild {
			continue
		}
		if r.versioned {
			ix.versioned[r.tpl.key] = nil
		} else {
			ix.bare[r.tpl.key] = nil
		}
	}
	for _, r := range regs {
		switch {
		case r.versioned && r.tpl.wild:
			for k := range ix.versioned {
				ix.versioned[k] = append(ix.versioned[k], r)
			}
			ix.versionedOther = append(ix.versionedOther, r)
		case r.versioned:
			ix.versioned[r.tpl.key] = append(ix.versioned[r.tpl.key], r)
		case r.tpl.wild || isVersionSegment(r.tpl.key):
			// A bare template may match the whole of a versioned path.
			for k := range ix.versioned {
				ix.versioned[k] = append(ix.versioned[k], r)
			}
			ix.versionedOther = append(ix.versionedOther, r)
			if r.tpl.wild {
				for k := range ix.bare {
					ix.bare[k] = append(ix.bare[k], r)
				}
				ix.bareOther = append(ix.bareOther, r)
			} else {
				ix.bare[r.tpl.key] = append(ix.bare[r.tpl.key], r)
			}
		default:
			ix.bare[r.tpl.key] = append(ix.bare[r.tpl.key], r)
		}
	}
	return ix
}

// isVersionSegment says whether a first segment reads as dockerd's
// version prefix, "v" and a run of digits and dots.
func isVersionSegment(seg string) bool {
	return len(seg) > 1 && seg[0] == 'v' && classVersionRun.longest(seg[1:]) == len(seg)-1
}

// splitVersion splits a path with dockerd's version prefix
// ("/v1.41/containers/json") into the version and the rest
// ("/containers/json"). The prefix's [0-9.]+ cannot take a "/", so only
// the longest run of digits and dots, followed by "/", can be it.
func splitVersion(p string) (version, rest string, ok bool) {
	if len(p) < 2 || p[0] != '/' || p[1] != 'v' {
		return "", p, false
	}
	n := classVersionRun.longest(p[2:])
	if n == 0 || 2+n >= len(p) || p[2+n] != '/' {
		return "", p, false
	}
	return p[2 : 2+n], p[2+n:], true
}

// firstSegment is the text between a path's leading "/" and the next.
func firstSegment(p string) string {
	seg := p[1:]
	if i := strings.IndexByte(seg, '/'); i >= 0 {
		seg = seg[:i]
	}
	return seg
}

// find returns the first registration, in gorilla/mux's order, that
// matches the path p (version and rest when it has the version prefix),
// with its variables in vals; nil for none.
func (ix *methodIndex) find(p, version, rest string, versioned bool, vals *[maxVars]string) *registration {
	var regs []*registration
	var ok bool
	if versioned {
		if regs, ok = ix.versioned[firstSegment(rest)]; !ok {
			regs = ix.versionedOther
		}
	} else {
		if regs, ok = ix.bare[firstSegment(p)]; !ok {
			regs = ix.bareOther
		}
	}
	for _, r := range regs {
		s := p
		if r.versioned {
			s = rest
		}
		if r.tpl.match(s, vals) {
			return r
		}
	}
	return nil
}
