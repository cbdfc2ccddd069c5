package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/aviso-dev/aviso"
)

// statusOf maps an aviso error code to its HTTP status. This is the only place that does.
func statusOf(code string) int {
	switch code {
	case aviso.EBADREQUEST:
		return http.StatusBadRequest
	case aviso.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case aviso.EFORBIDDEN:
		return http.StatusForbidden
	case aviso.ENOTFOUND:
		return http.StatusNotFound
	case aviso.ECONFLICT:
		return http.StatusConflict
	case aviso.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case aviso.EINVALID:
		return http.StatusUnprocessableEntity
	case aviso.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// writeError answers err as {"error":{"code","message","field"}}. Internal errors — anything
// that is not an *aviso.Error, or one with code EINTERNAL — are logged with their detail and
// answered with a generic message; unavailable ones are logged too.
func writeError(log *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	code := aviso.ErrorCode(err)
	var ae *aviso.Error
	if !errors.As(err, &ae) {
		code = aviso.EINTERNAL
	}
	status := statusOf(code)
	msg := aviso.ErrorMessage(err)
	switch code {
	case aviso.EINTERNAL:
		log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error; the details are in the server log"
	case aviso.EUNAVAILABLE:
		log.WarnContext(r.Context(), "unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	case aviso.EUNAUTHORIZED:
		w.Header().Set("WWW-Authenticate", `Bearer realm="aviso"`)
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg, Field: aviso.ErrorField(err)}})
}
