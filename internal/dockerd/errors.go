package dockerd

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

// Answer is an error that is dockerd's own answer to a lookup: a client
// error such as 400 for a network name two networks share
// (testcontainers' reaper_default, one per tenant) or for an ambiguous ID
// prefix. The request being judged names that object, so dockerd would
// have answered it the same way: it is answered with this status and
// message, not with 502 (which says dockerd could not be asked).
type Answer struct {
	Status  int
	Message string
	// Err is the error the lookup returned, for errors.Is.
	Err error
}

func (e *Answer) Error() string { return e.Message }

func (e *Answer) Unwrap() error { return e.Err }

// InvalidName is the error for a name or reference the client does not
// put in a request to dockerd (see ValidObjectName): the request that
// named it is malformed, and nothing was asked.
type InvalidName struct {
	Message string
}

func (e *InvalidName) Error() string { return e.Message }

func invalidName(format string, args ...any) *InvalidName {
	return &InvalidName{Message: fmt.Sprintf(format, args...)}
}

// objectName is what dockgate passes on to dockerd's inspect endpoints:
// dockerd's own name rules (a container name may start with '/'), which
// also keep the name a single path segment.
var objectName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidObjectName says whether s may name a container, volume, network,
// exec, service or plugin: dockerd's own name rules, which also keep the
// name to the one path segment the SDK puts it in as it is.
func ValidObjectName(s string) bool { return objectName.MatchString(s) }

// checkName keeps a name to one path segment of the inspect URL.
func checkName(kind, name string) error {
	if !ValidObjectName(name) {
		return invalidName("invalid %s name %q", kind, name)
	}
	return nil
}

// answered turns the SDK's error for dockerd's 4xx answer to a lookup into
// an Answer with dockerd's own status and message, so that the request
// that named the object gets the answer dockerd would have given it (400
// for a name two networks share, say) rather than 502. Other errors (no
// answer, 5xx) are returned as they are.
func answered(err error) error {
	if err == nil {
		return nil
	}
	var status int
	switch {
	case cerrdefs.IsNotFound(err):
		status = http.StatusNotFound
	case cerrdefs.IsConflict(err):
		status = http.StatusConflict
	case cerrdefs.IsPermissionDenied(err):
		status = http.StatusForbidden
	case cerrdefs.IsUnauthorized(err):
		status = http.StatusUnauthorized
	case cerrdefs.IsFailedPrecondition(err):
		status = http.StatusPreconditionFailed
	case cerrdefs.IsInvalidArgument(err):
		// The SDK makes every other 4xx an invalid argument too.
		status = http.StatusBadRequest
	default:
		return err
	}
	return &Answer{Status: status, Message: strings.TrimPrefix(err.Error(), "Error response from daemon: "), Err: err}
}
