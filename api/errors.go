package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/aviso-dev/aviso"
)

// retryAfterSeconds is the Retry-After of a storage_unavailable answer: long enough for an
// operator to free space, short enough that a publisher's retry finds storage back soon.
const retryAfterSeconds = 5

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// writeError answers err, with the status aviso.HTTPStatus gives its code, as {"error":{"code","message","field"}}. Internal errors — anything
// that is not an *aviso.Error, or one with code EINTERNAL — are logged with their detail and
// answered with a generic message; unavailable ones are logged too.
func writeError(log *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	code := aviso.ErrorCode(err)
	var ae *aviso.Error
	if !errors.As(err, &ae) {
		code = aviso.EINTERNAL
	}
	status := aviso.HTTPStatus(code)
	msg := aviso.ErrorMessage(err)
	switch code {
	case aviso.EINTERNAL:
		log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "error", err)
		msg = "internal error; the details are in the server log"
	case aviso.EUNAVAILABLE:
		log.WarnContext(r.Context(), "unavailable", "method", r.Method, "path", r.URL.Path, "error", err)
	case aviso.ESTORAGE:
		log.ErrorContext(r.Context(), "storage unavailable", "method", r.Method, "path", r.URL.Path, "error", err)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	case aviso.EUNAUTHORIZED:
		w.Header().Set("WWW-Authenticate", `Bearer realm="aviso"`)
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg, Field: aviso.ErrorField(err)}})
}
