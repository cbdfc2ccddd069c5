package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strings"

	"github.com/aviso-dev/aviso"
)

// Key is the calling API key.
type Key struct {
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"` // empty for a root key
	Root     bool   `json:"root"`
}

// WhoAmI returns the calling key: a tool given only a key learns its tenant.
func (c *Client) WhoAmI(ctx context.Context) (*Key, error) {
	return get[Key](ctx, c, "/v1/key", nil)
}

// DeliveryFilter selects a tenant's deliveries; every field is optional.
type DeliveryFilter struct {
	ListOptions
	Status            aviso.DeliveryStatus
	EndpointID        string
	Type              string
	ExternalReference string
}

// ListDeliveries lists the tenant's deliveries, oldest first.
func (c *Client) ListDeliveries(ctx context.Context, tenant string, f DeliveryFilter) (*aviso.Page[*aviso.Delivery], error) {
	q := f.query()
	for k, v := range map[string]string{"status": string(f.Status), "endpoint_id": f.EndpointID, "type": f.Type,
		"external_reference": f.ExternalReference} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return get[aviso.Page[*aviso.Delivery]](ctx, c, "/v1/tenants/"+esc(tenant)+"/deliveries", q)
}

// Deliveries iterates over the tenant's deliveries, oldest first.
func (c *Client) Deliveries(ctx context.Context, tenant string, f DeliveryFilter) iter.Seq2[*aviso.Delivery, error] {
	return all(ctx, func(ctx context.Context, after string) (*aviso.Page[*aviso.Delivery], error) {
		f.After, f.Limit = after, aviso.MaxLimit
		return c.ListDeliveries(ctx, tenant, f)
	})
}

// StreamedEvent is one event of the stream with its cursor: pass it as StreamOptions.After to
// resume exactly after it.
type StreamedEvent struct {
	Cursor string
	Event  *aviso.Event
}

// StreamOptions starts the events stream: after a cursor, at a time (RFC 3339), or (both empty)
// at its end; Types and ExternalReference filter it.
type StreamOptions struct {
	After, Since, ExternalReference string
	Types                           []string
}

// StreamEvents reads the tenant's events as they are published (Server-Sent Events) until ctx
// ends or the server closes the stream; it yields an error, and stops, on a failure. It is not
// retried: resume with the last Cursor.
func (c *Client) StreamEvents(ctx context.Context, tenant string, o StreamOptions) iter.Seq2[StreamedEvent, error] {
	return func(yield func(StreamedEvent, error) bool) {
		q := url.Values{}
		for k, v := range map[string]string{"after": o.After, "since": o.Since, "external_reference": o.ExternalReference,
			"types": strings.Join(o.Types, ",")} {
			if v != "" {
				q.Set(k, v)
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/tenants/"+esc(tenant)+"/events/stream?"+q.Encode(), nil)
		if err != nil {
			yield(StreamedEvent{}, err)
			return
		}
		req.Header.Set("Authorization", "Bearer "+c.key)
		req.Header.Set("Accept", "text/event-stream")
		hc := *c.hc
		hc.Timeout = 0 // a stream lasts as long as ctx
		res, err := hc.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				yield(StreamedEvent{}, fmt.Errorf("aviso client: events stream: %w", err))
			}
			return
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			e := &Error{Status: res.StatusCode, RequestID: res.Header.Get("X-Request-Id")}
			var eb struct{ Error *Error }
			if json.NewDecoder(res.Body).Decode(&eb) == nil && eb.Error != nil {
				e.Code, e.Message, e.Field = eb.Error.Code, eb.Error.Message, eb.Error.Field
			}
			yield(StreamedEvent{}, e)
			return
		}
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		var id, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					ev := new(aviso.Event)
					if err := json.Unmarshal([]byte(data), ev); err != nil {
						yield(StreamedEvent{}, fmt.Errorf("aviso client: events stream: %w", err))
						return
					}
					if !yield(StreamedEvent{Cursor: id, Event: ev}, nil) {
						return
					}
				}
				data = ""
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			}
		}
		if err := sc.Err(); err != nil && ctx.Err() == nil {
			yield(StreamedEvent{}, fmt.Errorf("aviso client: events stream: %w", err))
		}
	}
}
