package web

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	"github.com/aviso-dev/aviso"
)

// endpointFormFields are the endpoint form's fields that can show their own error.
var endpointFormFields = []string{"url", "description", "event_types", "format", "headers", "timeout_seconds", "retry_schedule", "ordering", "filter", "data", "rate_limit"}

// formError splits a service error about a form into what the page shows: a banner in the page's
// language, and, when the error names one of the form's fields, that field and its message (shown
// beside the field, which is marked invalid). An error about no field of the form is the banner.
func (h *Handler) formError(r *http.Request, err error, fields []string) (banner, field, message string) {
	tr := h.tr(r)
	field = aviso.ErrorField(err)
	if !slices.Contains(fields, field) {
		return errorText(err), "", ""
	}
	return tr.T("form_check_field"), field, tr.fieldMessage(err)
}

// handshakeRe reads what the service said of a refused verification request (see
// service.handshake): "answered HTTP 500", "did not answer within 5s", "could not be reached (…)".
var handshakeRe = regexp.MustCompile(`^the verification request (?:answered HTTP (\d+)|did not answer within (\S+)|could not be reached \((.*)\));`)

// fieldMessage is the message of a field error for the form, in the page's language where the
// dashboard knows the error, else the service's message as it is.
func (t translator) fieldMessage(err error) string {
	msg := aviso.ErrorMessage(err)
	m := handshakeRe.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	var what string
	switch {
	case m[1] != "":
		code, _ := strconv.Atoi(m[1])
		what = fmt.Sprintf(t.T("handshake_status"), code)
	case m[2] != "":
		what = fmt.Sprintf(t.T("handshake_timeout"), m[2])
	default:
		what = t.outcome(0, m[3])
	}
	return fmt.Sprintf(t.T("handshake_failed"), what)
}
