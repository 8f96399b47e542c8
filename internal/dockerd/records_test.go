package dockerd

import (
	"reflect"
	"testing"
)

// TestReadRecords: a container's io.dockgate labels are dockgate's record
// only where they are not its image's, and the owner label only where the
// creator record names it (or, unvouched, where no record is there).
func TestReadRecords(t *testing.T) {
	const rec = `{"id":"0123456789abcdef","owner":"user:a","creators":[["user:a","*"]]}`
	parsed := &CreatorRecord{ID: "0123456789abcdef", Owner: "user:a", Creators: [][]string{{"user:a", "*"}}}
	for _, tc := range []struct {
		name          string
		labels, image map[string]string
		imageGone     bool
		want          Records
	}{
		{"no labels", nil, nil, false, Records{}},
		{"no labels, image gone", nil, nil, true, Records{}},
		{"dockgate's record", map[string]string{OwnerRecordLabel: "user:a", CreatorRecordLabel: rec}, nil, false, Records{Creator: parsed, Owner: "user:a"}},
		{"dockgate's record over the owner its image has too", map[string]string{OwnerRecordLabel: "user:a", CreatorRecordLabel: rec}, map[string]string{OwnerRecordLabel: "user:a"}, false, Records{Creator: parsed, Owner: "user:a"}},
		{"its image's labels are no record", map[string]string{OwnerRecordLabel: "user:a", CreatorRecordLabel: rec}, map[string]string{OwnerRecordLabel: "user:a", CreatorRecordLabel: rec}, false, Records{}},
		{"an owner label of its own, no record", map[string]string{OwnerRecordLabel: "user:a"}, nil, false, Records{Owner: "user:a", Unvouched: true}},
		{"a record naming another owner", map[string]string{OwnerRecordLabel: "uid:0", CreatorRecordLabel: rec}, nil, false, Records{Unknown: true}},
		{"a record that does not parse", map[string]string{CreatorRecordLabel: `[["uid:0"]]`}, nil, false, Records{Unknown: true}},
		{"labels of a container whose image is gone", map[string]string{OwnerRecordLabel: "user:a", CreatorRecordLabel: rec}, nil, true, Records{Unknown: true}},
	} {
		if got := ReadRecords(tc.labels, tc.image, !tc.imageGone); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
