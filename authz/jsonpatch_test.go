package authz

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestPatchJSONKeepsWhatDidNotChange(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		change           func(*container.CreateRequest)
	}{
		{
			name:   "pinned VolumesFrom, empty lists beside it kept",
			body:   `{"Image":"i","HostConfig":{"Binds":[],"VolumesFrom":["web:ro"],"CapAdd":[]}}`,
			change: func(w *container.CreateRequest) { w.HostConfig.VolumesFrom[0] = "0123abcd:ro" },
			want:   `{"Image":"i","HostConfig":{"Binds":[],"VolumesFrom":["0123abcd:ro"],"CapAdd":[]}}`,
		},
		{
			name:   "a key in another case is replaced where it is",
			body:   `{"labels":{"a":"b"},"Image":"i"}`,
			change: func(w *container.CreateRequest) { w.Labels["o"] = "x" },
			want:   `{"labels":{"a":"b","o":"x"},"Image":"i"}`,
		},
		{
			name:   "nothing changed: the bytes as sent",
			body:   `{ "Image" : "i", "Cmd" : [] }`,
			change: func(*container.CreateRequest) {},
			want:   `{ "Image" : "i", "Cmd" : [] }`,
		},
		{
			name:   "an absent member is added",
			body:   `{"Image":"i"}`,
			change: func(w *container.CreateRequest) { w.Labels = map[string]string{"o": "x"} },
			want:   `{"Image":"i","Labels":{"o":"x"}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var orig, changed container.CreateRequest
			if err := json.Unmarshal([]byte(tc.body), &orig); err != nil {
				t.Fatal(err)
			}
			json.Unmarshal([]byte(tc.body), &changed)
			tc.change(&changed)
			got, err := patchJSON([]byte(tc.body), reflect.ValueOf(&orig), reflect.ValueOf(&changed))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !decodesTo(got, &changed) {
				t.Errorf("%s does not decode to the changed value", got)
			}
		})
	}
}
