package authz

import "testing"

func TestActionTraits(t *testing.T) {
	actions := Actions()
	tests := []struct {
		action string
		want   ActionTraits
	}{
		{"system.info", ActionTraits{EndpointOnly: true}},
		{"container.create", ActionTraits{NeedsOwner: true}},
		{"container.start", ActionTraits{NeedsOwner: true, OwnerFact: true}},
		{"container.list", ActionTraits{NeedsOwner: true}},
		{"image.inspect", ActionTraits{NeedsOwner: true}},
		{"image.delete", ActionTraits{NeedsOwner: true, OwnerFact: true}},
	}
	for _, tt := range tests {
		got, ok := actions[tt.action]
		if !ok || got != tt.want {
			t.Errorf("%s: %+v (known %v), want %+v", tt.action, got, ok, tt.want)
		}
	}
}
