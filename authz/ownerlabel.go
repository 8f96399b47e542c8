package authz

import (
	"encoding/json"
	"github.com/dockgate/dockgate/internal/dockerd"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// OwnerLabel is the label dockgate records an object's owner in (BRIEF §3).
// A client may never set it itself: every body, query or
// Dockerfile instruction that would set it is refused before the facts are
// judged, in enforce and in audit mode alike.
const OwnerLabel = dockerd.OwnerRecordLabel

// ExpiresLabel is the label dockgate records when a tenant's object may be
// removed by `dockgate gc --expired` (RFC 3339, UTC): creation time plus
// the time-to-live the policy gives the tenant (a `tenant-ttl` row).
const ExpiresLabel = "io.dockgate.expires"

// CreatorLabel is the label dockgate records who created a container in
// (docs/containers.md): the JSON encoding of Request.Creator, the subject
// sets the creator was judged by, its own first. A container it labels is
// never judged beyond those.
const CreatorLabel = dockerd.CreatorRecordLabel

// reservedLabelPrefix is the label namespace dockgate keeps its own
// records in (OwnerLabel, ExpiresLabel, and any it adds later): a client
// may set none of it.
const reservedLabelPrefix = "io.dockgate."

// forgedOwner is the refusal of a request that sets a label of dockgate's
// namespace. The label key is a map key: dockerd (Go encoding/json into
// map[string]string) compares it exactly, so the prefix is compared
// exactly too.
func forgedOwner(where, key string) *RouteError {
	return &RouteError{Status: http.StatusForbidden, Message: "the label " + key + " is dockgate's own record of an object's owner (" + OwnerLabel + " and every io.dockgate.* label); a client may not set it (" + where + ")"}
}

// checkOwnerLabels refuses labels that set a label of dockgate's
// namespace.
func checkOwnerLabels(where string, labels map[string]string) error {
	for k := range labels {
		if strings.HasPrefix(k, reservedLabelPrefix) {
			return forgedOwner(where, k)
		}
	}
	return nil
}

// checkOwnerLabelsJSON refuses a JSON object of labels (the build's labels
// query) that sets the owner label, decoded as dockerd decodes it.
func checkOwnerLabelsJSON(where, raw string) error {
	if raw == "" {
		return nil
	}
	var labels map[string]string
	if err := json.Unmarshal([]byte(raw), &labels); err != nil {
		return badBody("invalid %s: %v", where, err)
	}
	return checkOwnerLabels(where, labels)
}

// checkOwnerChanges refuses Dockerfile instructions (commit's and import's
// changes query, joined by newlines as dockerd's BuildFromConfig joins
// them) whose LABEL sets the owner label.
func checkOwnerChanges(where string, changes []string) error {
	if len(changes) == 0 {
		return nil
	}
	res, err := parser.Parse(strings.NewReader(strings.Join(changes, "\n")))
	if err != nil {
		// dockerd refuses what it cannot parse; nothing to judge.
		return nil
	}
	return checkOwnerDockerfile(where, res)
}

// checkOwnerDockerfile refuses a parsed Dockerfile whose LABEL sets the
// owner label. dockerd expands variables in label keys with the build's
// (or the container's) environment, which dockgate does not know: a key
// with a variable is refused too.
func checkOwnerDockerfile(where string, res *parser.Result) error {
	lex := shell.NewLex(res.EscapeToken)
	for _, n := range res.AST.Children {
		if !strings.EqualFold(n.Value, "label") {
			continue
		}
		// Each pair is three nodes: key, value, separator ("=" or "").
		for k := n.Next; k != nil; {
			if strings.Contains(k.Value, "$") {
				return badBody("%s: a LABEL key with a variable (%q) cannot be judged", where, k.Value)
			}
			key, _, err := lex.ProcessWord(k.Value, envOf(nil))
			if err != nil {
				return badBody("%s: LABEL %s: %v", where, k.Value, err)
			}
			if strings.HasPrefix(key, reservedLabelPrefix) {
				return forgedOwner(where+" LABEL", key)
			}
			k = k.Next
			for i := 0; i < 2 && k != nil; i++ {
				k = k.Next
			}
		}
	}
	return nil
}

// setOwnerLabels records a tenant's ownership (Request.Owner) in the
// labels of what it creates, and its expiry when the policy gives it a
// time to live (Request.TTL). The caller re-encodes the judged value
// (reencode) so that the labels reach dockerd.
func (x *extraction) setOwnerLabels(labels *map[string]string) {
	if *labels == nil {
		*labels = map[string]string{}
	}
	for k, v := range x.req.ownerLabels() {
		(*labels)[k] = v
	}
}

// ownerLabels are the labels a tenant's creates get.
func (r *Request) ownerLabels() map[string]string {
	l := map[string]string{OwnerLabel: r.Owner}
	if r.TTL > 0 {
		// Rounded up to the second RFC 3339 keeps: never earlier than the
		// TTL says.
		l[ExpiresLabel] = r.now().Add(r.TTL + time.Second - 1).Truncate(time.Second).UTC().Format(time.RFC3339)
	}
	return l
}

// reencode makes the typed value v a body was judged as the body that is
// forwarded (Request.OwnedBody), after dockgate changed it: the owner and
// creator labels added, container references pinned to full IDs, a Docker
// socket's bind given dockgate's socket. What dockerd
// decodes is then exactly what was judged plus those changes. The
// client's body is kept where dockgate changed nothing (patchJSON); the
// typed encoding of v is the fallback. A body neither way decodes back to
// v is refused rather than forwarded changed.
func (x *extraction) reencode(v any) error {
	if b, ok := x.patchedBody(v); ok {
		x.req.OwnedBody, x.req.ownerRecorded = b, true
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return &RouteError{Status: http.StatusInternalServerError, Message: "cannot re-encode the body of " + x.m.Action + ": " + err.Error()}
	}
	if !decodesTo(b, v) {
		return badBody("%s: dockgate cannot record the owner or creator, or delegate a Docker socket, without changing the rest of the body; send empty lists and objects as null or leave them out", x.m.Action)
	}
	x.req.OwnedBody = b
	x.req.ownerRecorded = true
	return nil
}

// patchedBody is the client's body with what dockgate changed in v
// patched in, when it decodes to v.
func (x *extraction) patchedBody(v any) ([]byte, bool) {
	raw := x.req.Body
	if len(raw) == 0 {
		return nil, false
	}
	orig := reflect.New(reflect.TypeOf(v).Elem())
	if err := json.Unmarshal(raw, orig.Interface()); err != nil {
		return nil, false
	}
	b, err := patchJSON(raw, orig, reflect.ValueOf(v))
	if err != nil || !decodesTo(b, v) {
		return nil, false
	}
	return b, true
}

// decodesTo says whether b decodes, as dockerd decodes it, to v.
func decodesTo(b []byte, v any) bool {
	back := reflect.New(reflect.TypeOf(v).Elem())
	return json.Unmarshal(b, back.Interface()) == nil && reflect.DeepEqual(back.Elem().Interface(), reflect.ValueOf(v).Elem().Interface())
}

// labelBuild gives the image a tenant's build makes the owner labels,
// merged into the first labels value (the one dockerd reads), whose
// client labels were checked by buildFacts.
func (x *extraction) labelBuild(raw string) error {
	if x.req.Owner == "" {
		return nil
	}
	labels := map[string]string{}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &labels); err != nil {
			return badBody("invalid build labels: %v", err)
		}
	}
	x.setOwnerLabels(&labels)
	b, err := json.Marshal(labels)
	if err != nil {
		return &RouteError{Status: http.StatusInternalServerError, Message: "cannot encode the build labels: " + err.Error()}
	}
	if err := x.setFirstQueryValue("labels", string(b)); err != nil {
		return err
	}
	x.req.ownerRecorded = true
	return nil
}

// labelByChanges gives the image a tenant's commit or import makes the
// owner labels: one more changes value, a LABEL instruction (dockerd
// reads every changes value, body first, joined by newlines into one
// Dockerfile, so this one comes last). The values are single-quoted, where
// the Dockerfile lexer expands nothing; a quote in a value, or a newline,
// could end the quoting, and is refused. The joined Dockerfile is parsed
// with and without it: a client line that would swallow it (a trailing
// line continuation) is refused rather than forwarded with another
// meaning.
func (x *extraction) labelByChanges() error {
	if x.req.Owner == "" {
		return nil
	}
	labels := x.req.ownerLabels()
	keys := sortedKeys(labels)
	instr := "LABEL"
	for _, k := range keys {
		v := labels[k]
		if strings.ContainsAny(v, "'\n\r\\") {
			return &RouteError{Status: http.StatusForbidden, Message: "the owner " + strconv.Quote(v) + " cannot be written into a LABEL instruction"}
		}
		instr += " " + k + "='" + v + "'"
	}
	form, err := x.form()
	if err != nil {
		return err
	}
	if err := appendsInstruction(form["changes"], instr); err != nil {
		return err
	}
	path, q := x.target()
	if q != "" {
		q += "&"
	}
	x.setTarget(path, q+"changes="+url.QueryEscape(instr))
	x.req.ownerRecorded = true
	return nil
}

// appendsInstruction checks that the changes with instr after them parse
// as the changes' own instructions, unchanged, and then instr.
func appendsInstruction(changes []string, instr string) error {
	refuse := badBody("the changes cannot be combined with the owner's LABEL instruction (a trailing line continuation?)")
	after, err := parser.Parse(strings.NewReader(strings.Join(append(append([]string(nil), changes...), instr), "\n")))
	if err != nil {
		return refuse
	}
	n := len(after.AST.Children)
	if n == 0 || after.AST.Children[n-1].Original != instr {
		return refuse
	}
	if len(changes) == 0 {
		return nil
	}
	before, err := parser.Parse(strings.NewReader(strings.Join(changes, "\n")))
	if err != nil {
		// dockerd refuses these changes whatever dockgate adds.
		return nil
	}
	if len(before.AST.Children) != n-1 {
		return refuse
	}
	for i, c := range before.AST.Children {
		if c.Original != after.AST.Children[i].Original {
			return refuse
		}
	}
	return nil
}

// addOwnerLabel labels a tenant's create body and re-encodes it.
func (x *extraction) addOwnerLabel(v any, labels *map[string]string) error {
	if x.req.Owner == "" {
		return nil
	}
	x.setOwnerLabels(labels)
	return x.reencode(v)
}
