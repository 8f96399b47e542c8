package authz

// OwnerActions says, for every action of the route table, how a tenant's
// request on it differs from anyone else's, for judging a recorded request
// again under a policy that makes its caller a tenant, or no longer one.
// needsOwner holds the actions whose facts or forwarding depend on whether
// the caller is a tenant (Route.needsOwner); ownerFact those on which a
// tenant's request always has an owner fact when the object its path
// names exists (every object but an image, which is owned only when
// labelled). An action on neither list is judged the same whoever asks.
func OwnerActions() (needsOwner, ownerFact map[string]bool) {
	needsOwner, ownerFact = map[string]bool{}, map[string]bool{}
	for _, r := range routeTable() {
		needsOwner[r.Action] = needsOwner[r.Action] || r.needsOwner()
		if t := r.target; t != nil && t.kind != "" && (t.kind != ObjectImage || t.unlabelledNone) {
			ownerFact[r.Action] = true
		}
	}
	return needsOwner, ownerFact
}
