package policy

import (
	"encoding/csv"
	"slices"
	"strings"
	"testing"
)

// csvFields is how rows were read before splitRow: encoding/csv, one
// reader a line.
func csvFields(text string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(text))
	r.TrimLeadingSpace = true
	r.FieldsPerRecord = -1
	fields, err := r.Read()
	if err != nil {
		return nil, err
	}
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return fields, nil
}

var rowSamples = []string{
	"p, uid:0, *, **, allow",
	"p,role:ci,endpoint,container.*,allow",
	"g, user:dev1, role:team1",
	"p, role:ci, bind, \"/srv/a,b\", allow",
	"p, role:ci, bind, /srv/a\"b, allow",
	"p, role:ci , image ,\tdocker.io/x ,  allow",
	"p, a\u00a0, b\u2003, c",
	"p,,,,",
	",",
	"p",
	"p, role:ci, bind, /srv/\r/x, allow",
	"p, \xff, \x00, x, allow",
}

func TestSplitRowReadsAsCSV(t *testing.T) {
	for _, text := range rowSamples {
		got, gotErr := splitRow(text)
		want, wantErr := csvFields(text)
		if !slices.Equal(got, want) || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("splitRow(%q) = %q, %v; encoding/csv reads %q, %v", text, got, gotErr, want, wantErr)
		}
	}
}

// FuzzSplitRow: a line of a policy file (parseCSV hands over one line,
// trimmed, never blank) is read as encoding/csv reads it.
func FuzzSplitRow(f *testing.F) {
	for _, s := range rowSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		text = strings.TrimSpace(text)
		if text == "" || strings.ContainsAny(text, "\n") {
			return
		}
		got, gotErr := splitRow(text)
		want, wantErr := csvFields(text)
		if !slices.Equal(got, want) || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("splitRow(%q) = %q, %v; encoding/csv reads %q, %v", text, got, gotErr, want, wantErr)
		}
	})
}
