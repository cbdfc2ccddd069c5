package aviso

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. Each one maps to one HTTP status in HTTPStatus and nowhere else.
const (
	EBADREQUEST   = "bad_request"         // malformed request (bad JSON): 400
	EUNAUTHORIZED = "unauthorized"        // missing or unknown API key: 401
	EFORBIDDEN    = "forbidden"           // key valid but its scope does not allow this: 403
	ENOTFOUND     = "not_found"           // no such resource, or not visible to this key: 404
	ECONFLICT     = "conflict"            // the resource already exists: 409
	ETOOLARGE     = "too_large"           // request or payload over a limit: 413
	EINVALID      = "invalid"             // a field fails validation: 422 (Field names it)
	EUNAVAILABLE  = "unavailable"         // shutting down or the store is unreachable: 503
	ESTORAGE      = "storage_unavailable" // the store cannot write (disk full, I/O error): 503 with Retry-After
	EINTERNAL     = "internal_error"      // anything else: 500; details are logged, never sent
)

// Codes of the input contract (see CheckJSONText and CheckText); EINVALIDCURSOR is in cursor.go.
const (
	EINVALIDJSON = "invalid_json" // a body that is not JSON text: bad syntax, not UTF-8, a lone surrogate: 400
	EINVALIDTEXT = "invalid_text" // a path or query parameter, or a form value, that is not UTF-8 text: 400
)

// HTTPStatus returns the HTTP status of an error code: the one mapping the API and the
// dashboard share. An unknown code is a 500.
func HTTPStatus(code string) int {
	switch code {
	case EBADREQUEST, EINVALIDJSON, EINVALIDTEXT:
		return http.StatusBadRequest
	case EUNAUTHORIZED:
		return http.StatusUnauthorized
	case EFORBIDDEN:
		return http.StatusForbidden
	case ENOTFOUND:
		return http.StatusNotFound
	case ECONFLICT:
		return http.StatusConflict
	case ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case EINVALID, EINVALIDCURSOR:
		return http.StatusUnprocessableEntity
	case EUNAVAILABLE, ESTORAGE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// StorageMessage is the message of ESTORAGE errors, the same on every store.
const StorageMessage = "the disk or database is failing and cannot store this now; nothing was recorded, retry later"

// Error is the error type of the application. Code is one of the E* constants; Message is safe
// to show to the API caller; Field names the offending field for EINVALID (a JSON name or pointer).
type Error struct {
	Code    string
	Message string
	Field   string
	Err     error // wrapped cause, logged but never sent
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error naming field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other error,
// and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the human message of the first *Error in err's chain, or a generic text
// for internal errors, so that internal details never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the Field of the first *Error in err's chain, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
