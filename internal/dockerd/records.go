package dockerd

import (
	"encoding/json"
	"slices"
)

// The labels in which dockgate records, on a container it creates, the
// tenant it is for and who created it (authz.OwnerLabel,
// authz.CreatorLabel).
const (
	OwnerRecordLabel   = "io.dockgate.owner"
	CreatorRecordLabel = "io.dockgate.creator"
)

// CreatorRecord is the value of CreatorRecordLabel. ID is random for each
// create, so that the record on a container is never its image's: an
// image takes a container's labels when it is committed, and its author
// may write any label, but a container created through dockgate gets a
// record no image holds. Owner is the tenant the container was created
// for ("" for none). Creators are the subject sets of the creator, its
// own first.
type CreatorRecord struct {
	ID       string     `json:"id"`
	Owner    string     `json:"owner,omitempty"`
	Creators [][]string `json:"creators"`
}

// Records says what a container's io.dockgate labels are worth. A
// container takes its image's labels (imageLabels; imageKnown false when
// the image is gone), so a label is dockgate's record only where it is
// not its image's.
type Records struct {
	// Creator is dockgate's creator record, nil when the container has
	// none that is not its image's.
	Creator *CreatorRecord
	// Owner is the owner label when the creator record names it, or when
	// there is no record and the label is not its image's (Unvouched);
	// "" when the container has none, or only its image's.
	Owner string
	// Unvouched says Owner is set but no record of dockgate's names it: a
	// container created outside dockgate, or before dockgate recorded
	// creators.
	Unvouched bool
	// Unknown says dockgate's labels are there and cannot be read as its
	// records: a record that does not parse or names another owner than
	// the label, or labels of a container whose image is gone, which
	// cannot be told from its image's.
	Unknown bool
}

// ReadRecords reads dockgate's records among a container's labels.
func ReadRecords(labels, imageLabels map[string]string, imageKnown bool) Records {
	owner, creator := labels[OwnerRecordLabel], labels[CreatorRecordLabel]
	if owner == "" && creator == "" {
		return Records{}
	}
	if !imageKnown {
		return Records{Unknown: true}
	}
	fromImage := func(k, v string) bool {
		iv, ok := imageLabels[k]
		return ok && iv == v
	}
	if creator == "" || fromImage(CreatorRecordLabel, creator) {
		if owner == "" || fromImage(OwnerRecordLabel, owner) {
			return Records{}
		}
		return Records{Owner: owner, Unvouched: true}
	}
	var r CreatorRecord
	if err := json.Unmarshal([]byte(creator), &r); err != nil || r.ID == "" || len(r.Creators) == 0 ||
		slices.ContainsFunc(r.Creators, func(s []string) bool { return len(s) == 0 }) {
		return Records{Unknown: true}
	}
	if r.Owner != owner && !(r.Owner == "" && fromImage(OwnerRecordLabel, owner)) {
		// An owner label the record does not name is not dockgate's.
		return Records{Unknown: true}
	}
	return Records{Creator: &r, Owner: r.Owner}
}
