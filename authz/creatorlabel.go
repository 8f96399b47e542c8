package authz

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/docker/docker/api/types/container"

	"github.com/dockgate/dockgate/internal/dockerd"
)

// recordsCreator says whether a container create gets the creator label
// (docs/containers.md, "The creator and the no-escalation rule"): a
// tenant's container acts for its creator, and a container that reaches
// a Docker socket (a bind of one, whatever VolumesFrom copies, a shared
// pid namespace whose processes may hold one) must never do more than its
// creator could.
func (x *extraction) recordsCreator(hc *container.HostConfig) bool {
	return x.req.Owner != "" || x.socketBound || len(hc.VolumesFrom) > 0 || hc.PidMode.IsContainer()
}

// recordCreate puts into a container create's body what dockgate records
// in it, the creator label and a tenant's owner labels, and forwards it
// re-encoded when dockgate changed anything (those labels, a delegated
// socket, a pinned reference). The client's own io.dockgate.* labels were
// refused before.
func (x *extraction) recordCreate(w *container.CreateRequest, hc *container.HostConfig) error {
	changed := len(x.req.Rewrites) > 0
	if x.recordsCreator(hc) {
		creators := x.req.Creators()
		if len(creators) == 0 || len(creators[0]) == 0 {
			// Fail closed: a container that cannot be held to its
			// creator is not created.
			return &RouteError{Status: http.StatusInternalServerError, Message: "cannot record the creator of what " + x.m.Action + " creates"}
		}
		id := make([]byte, 8)
		if _, err := rand.Read(id); err != nil {
			return &RouteError{Status: http.StatusInternalServerError, Message: "cannot record the creator of what " + x.m.Action + " creates: " + err.Error()}
		}
		b, err := json.Marshal(CreatorRecord{ID: hex.EncodeToString(id), Owner: x.req.Owner, Creators: creators})
		if err != nil {
			return &RouteError{Status: http.StatusInternalServerError, Message: "cannot record the creator of what " + x.m.Action + " creates: " + err.Error()}
		}
		if w.Config.Labels == nil {
			w.Config.Labels = map[string]string{}
		}
		w.Config.Labels[CreatorLabel] = string(b)
		changed = true
	}
	if x.req.Owner != "" {
		x.setOwnerLabels(&w.Config.Labels)
		changed = true
	}
	if !changed {
		return nil
	}
	return x.reencode(w)
}

// CreatorRecord is the value of CreatorLabel (dockerd.CreatorRecord,
// where it is read back).
type CreatorRecord = dockerd.CreatorRecord
