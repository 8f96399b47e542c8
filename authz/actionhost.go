package authz

// GivesHost returns, for each action whose endpoint alone is root on the
// host (a plugin runs with the privileges it asks for), why; the advice of
// a refusal says the same (refusal). Tools that write rows (dockgate
// policy suggest) read it so that no such row is written without saying
// so.
func GivesHost() map[string]string {
	out := map[string]string{}
	for _, r := range routeTable() {
		if r.givesHost != "" {
			out[r.Action] = r.givesHost
		}
	}
	return out
}
