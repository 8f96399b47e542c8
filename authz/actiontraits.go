package authz

// ActionTraits is what judging a recorded request again (`dockgate policy
// replay`, from the facts its audit record holds) must know of its action.
type ActionTraits struct {
	// NeedsOwner: its facts or its forwarding depend on whether the
	// caller is a tenant (Route.needsOwner).
	NeedsOwner bool
	// OwnerFact: a tenant's request has an owner fact when the object
	// its path names exists (every object but an image, which is owned
	// only when labelled).
	OwnerFact bool
	// EndpointOnly: the endpoint fact is its only fact, whoever asks and
	// whatever its body: a request refused at its endpoint has all its
	// facts on record.
	EndpointOnly bool
}

// Actions returns the traits of every action of the route table. The
// rows of one action mean the same (TestRowsOfOneActionMeanTheSame); an
// action has a trait only when every row of it has.
func Actions() map[string]ActionTraits {
	out := map[string]ActionTraits{}
	for _, r := range routeTable() {
		t := ActionTraits{
			NeedsOwner:   r.needsOwner(),
			OwnerFact:    r.target != nil && r.target.kind != "" && (r.target.kind != ObjectImage || r.target.unlabelledNone),
			EndpointOnly: r.facts == nil && !r.needsOwner(),
		}
		if prev, ok := out[r.Action]; ok {
			t.NeedsOwner = t.NeedsOwner || prev.NeedsOwner
			t.OwnerFact = t.OwnerFact || prev.OwnerFact
			t.EndpointOnly = t.EndpointOnly && prev.EndpointOnly
		}
		out[r.Action] = t
	}
	return out
}
