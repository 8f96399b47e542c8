package proxy

import "testing"

func TestBuiltImageScannerFindsTheBuildsImage(t *testing.T) {
	stream := `{"stream":"Step 1/2 : FROM busybox"}` + "\n" +
		`{"stream":" ---\u003e 3f57d9401f8d\n"}` + "\n" +
		`{"aux":{"ID":"sha256:1111"}}` + "\n" +
		`{"stream":"Successfully built 1111\n"}` + "\n"
	long := `{"stream":"` + string(make([]byte, maxObjectBody)) + `"}` + "\n"
	for _, tc := range []struct {
		name   string
		chunks []string
		want   string
	}{
		{"whole stream in one write", []string{stream}, "sha256:1111"},
		{"split inside the aux message", []string{stream[:60], stream[60:75], stream[75:]}, "sha256:1111"},
		{"byte by byte", splitBytes(stream), "sha256:1111"},
		{"a later aux wins (multi-stage)", []string{stream, `{"aux":{"ID":"sha256:2222"}}` + "\n"}, "sha256:2222"},
		{"an overlong line is skipped, not misread", []string{long, `{"aux":{"ID":"sha256:3333"}}` + "\n"}, "sha256:3333"},
		{"no aux, no id", []string{`{"stream":"Step 1/1"}` + "\n", `{"error":"failed"}` + "\n"}, ""},
		{"an unfinished last line is not read", []string{`{"aux":{"ID":"sha256:4444"}}`}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b builtImageScanner
			for _, c := range tc.chunks {
				b.Write([]byte(c))
			}
			if b.id != tc.want {
				t.Errorf("id %q, want %q", b.id, tc.want)
			}
		})
	}
}

func splitBytes(s string) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i : i+1]
	}
	return out
}
