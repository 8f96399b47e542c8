package authz

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/dockgate/dockgate/authz/internal/strictjson"
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

// FuzzPatchJSON: for every create body the strict pass accepts, the body
// with the owner label patched in decodes, as dockerd decodes it, to what
// dockgate judged plus the label; anything else would make reencode fall
// back to the typed encoding, or refuse a body dockerd takes.
func FuzzPatchJSON(f *testing.F) {
	for _, s := range []string{
		`{"Image":"i","Shell":[]}`,
		`{"Image":"i","labels":{"a":"b"},"HostConfig":{"Binds":[],"VolumesFrom":["x"]}}`,
		`{"Image":"i","Labels":null,"Entrypoint":[],"Cmd":null}`,
		`{ "Image" : "i" , "Env" : [ "A=1" ] }`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var orig container.CreateRequest
		if decodeStrictJSON([]byte(body), &orig, strictjson.ContainerCreate()) != nil || orig.Config == nil {
			return
		}
		var changed container.CreateRequest
		if err := json.Unmarshal([]byte(body), &changed); err != nil {
			t.Fatalf("strict pass accepted what encoding/json refuses: %v", err)
		}
		if changed.Labels == nil {
			changed.Labels = map[string]string{}
		}
		changed.Labels[OwnerLabel] = "user:fuzz"
		got, err := patchJSON([]byte(body), reflect.ValueOf(&orig), reflect.ValueOf(&changed))
		if err != nil {
			t.Fatalf("patch of %s: %v", body, err)
		}
		if !decodesTo(got, &changed) {
			t.Fatalf("patch of %s: %s does not decode to the labelled body", body, got)
		}
	})
}
