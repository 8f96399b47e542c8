package authz

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/dockgate/dockgate/authz/internal/strictjson"
)

// badBody is a 400 for a body dockgate will not judge.
func badBody(format string, args ...any) *RouteError {
	return &RouteError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// decodeStrictJSON decodes a JSON body into v as dockerd does, after the
// strict pass refused every body another reader could take differently
// (authz/internal/strictjson). Facts are read from v only.
func decodeStrictJSON(data []byte, v any, opts strictjson.Options) error {
	return bodyRefusal(strictjson.Decode(data, v, opts))
}

// bodyRefusal answers a body the strict pass refuses: 413 when it is too
// large, else 400.
func bodyRefusal(err error) error {
	var se *strictjson.Error
	if !errors.As(err, &se) {
		return err
	}
	if se.TooLarge {
		return &RouteError{Status: http.StatusRequestEntityTooLarge, Message: se.Message}
	}
	return badBody("%s", se.Message)
}
