package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aviso-dev/aviso"
)

// Request is a rendered delivery: the exact body and headers an endpoint receives.
type Request struct {
	Body   []byte
	Header http.Header
}

// Build renders the request that delivers ev to ep at time now, in the endpoint's format, with
// the Standard Webhooks headers, the endpoint's custom headers and the format's own headers.
func Build(ep *aviso.Endpoint, ev *aviso.Event, now time.Time) (*Request, error) {
	body, err := Body(ep.Format, ev)
	if err != nil {
		return nil, err
	}
	h := make(http.Header, 6+len(ep.Headers))
	for k, v := range ep.Headers {
		h.Set(k, v)
	}
	ts := now.Unix()
	sig, err := Sign(ep.LiveSecrets(now), ev.ID, ts, body)
	if err != nil {
		return nil, err
	}
	h["Content-Type"] = []string{"application/json"}
	h["User-Agent"] = []string{aviso.UserAgent}
	h["Webhook-Id"] = []string{ev.ID}
	h["Webhook-Timestamp"] = []string{strconv.FormatInt(ts, 10)}
	h["Webhook-Signature"] = []string{sig}
	return &Request{Body: body, Header: h}, nil
}

// standardBody is the Standard Webhooks payload.
type standardBody struct {
	ID                string          `json:"id"`
	Type              string          `json:"type"`
	Timestamp         string          `json:"timestamp"`
	ExternalReference string          `json:"external_reference,omitempty"`
	Data              json.RawMessage `json:"data"`
}

// Body renders an event's body in a format. The body is the same on every attempt.
func Body(f aviso.Format, ev *aviso.Event) ([]byte, error) {
	switch f {
	case aviso.FormatStandard, "":
		return json.Marshal(standardBody{ID: ev.ID, Type: ev.Type,
			Timestamp: ev.CreatedAt.UTC().Format(time.RFC3339Nano), ExternalReference: ev.ExternalReference,
			Data: ev.Data})
	default:
		return nil, fmt.Errorf("render body: unknown format %q", f)
	}
}
