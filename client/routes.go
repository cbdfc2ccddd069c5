package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"time"

	"github.com/aviso-dev/aviso"
)

// Inputs, as the API reads them (see api/openapi.json).
type (
	// TenantInput creates a tenant; ID is minted when empty.
	TenantInput struct {
		ID       string            `json:"id,omitempty"`
		Name     string            `json:"name"`
		Metadata map[string]string `json:"metadata,omitempty"`
	}
	// TenantPatch changes a tenant; nil fields are left as they are.
	TenantPatch struct {
		Name     *string            `json:"name,omitempty"`
		Metadata *map[string]string `json:"metadata,omitempty"`
	}
	// EventTypeInput adds an event type to the catalog.
	EventTypeInput struct {
		Name         string            `json:"name"`
		Description  string            `json:"description,omitempty"`
		Descriptions map[string]string `json:"descriptions,omitempty"`
		Schema       json.RawMessage   `json:"schema,omitempty"`
		Example      json.RawMessage   `json:"example,omitempty"`
	}
	// EventTypePatch changes an event type; nil fields are left as they are.
	EventTypePatch struct {
		Description  *string            `json:"description,omitempty"`
		Descriptions *map[string]string `json:"descriptions,omitempty"`
		Schema       json.RawMessage    `json:"schema,omitempty"`
		Example      json.RawMessage    `json:"example,omitempty"`
	}
	// EndpointInput creates an endpoint. Verify false skips the subscription handshake.
	EndpointInput struct {
		URL            string            `json:"url"`
		Description    string            `json:"description,omitempty"`
		EventTypes     []string          `json:"event_types,omitempty"`
		Format         aviso.Format      `json:"format,omitempty"`
		Headers        map[string]string `json:"headers,omitempty"`
		TimeoutSeconds int               `json:"timeout_seconds,omitempty"`
		RetrySchedule  []string          `json:"retry_schedule,omitempty"`
		Metadata       map[string]string `json:"metadata,omitempty"`
		Token          string            `json:"token,omitempty"`
		Verify         *bool             `json:"verify,omitempty"`
		Disabled       bool              `json:"disabled,omitempty"`
		// Ordering "external_reference" delivers the events of one reference one at a time, in
		// publish order; "" none.
		Ordering string `json:"ordering,omitempty"`
		// SendTraceparent sends each attempt's W3C trace context (traceparent) to the receiver.
		SendTraceparent bool `json:"send_traceparent,omitempty"`
		// RateLimit is the most deliveries per second the endpoint is sent; 0: no limit.
		RateLimit int `json:"rate_limit,omitempty"`
	}
	// EndpointPatch changes an endpoint; nil fields are left as they are. Disabled true
	// disables it, false enables it again.
	EndpointPatch struct {
		URL            *string            `json:"url,omitempty"`
		Description    *string            `json:"description,omitempty"`
		EventTypes     *[]string          `json:"event_types,omitempty"`
		Format         *aviso.Format      `json:"format,omitempty"`
		Headers        *map[string]string `json:"headers,omitempty"`
		TimeoutSeconds *int               `json:"timeout_seconds,omitempty"`
		RetrySchedule  *[]string          `json:"retry_schedule,omitempty"`
		Metadata       *map[string]string `json:"metadata,omitempty"`
		Token          *string            `json:"token,omitempty"`
		Verify         *bool              `json:"verify,omitempty"`
		Disabled       *bool              `json:"disabled,omitempty"`
		Ordering       *string            `json:"ordering,omitempty"`
		// SendTraceparent turns sending the trace context to the receiver on or off.
		SendTraceparent *bool `json:"send_traceparent,omitempty"`
		// RateLimit replaces the rate limit (deliveries per second); 0 removes it.
		RateLimit *int `json:"rate_limit,omitempty"`
	}
	// PublishInput is one event to publish. With an ID a repeat is harmless (200, the stored
	// event), so such publishes are retried.
	PublishInput struct {
		ID                string          `json:"id,omitempty"`
		Type              string          `json:"type"`
		Data              json.RawMessage `json:"data"`
		ExternalReference string          `json:"external_reference,omitempty"`
	}
	// TestInput is the event of a test send; both fields are optional.
	TestInput struct {
		Type string          `json:"type,omitempty"`
		Data json.RawMessage `json:"data,omitempty"`
	}
	// ReplayInput queues again an endpoint's deliveries created since Since: the failed ones,
	// or with Status "all" the succeeded ones too.
	ReplayInput struct {
		Since  time.Time  `json:"since"`
		Until  *time.Time `json:"until,omitempty"`
		Status string     `json:"status,omitempty"` // failed (default), all, or missed
	}
	// FilterTestInput tries a payload filter (Filter, or the endpoint's own) on an event: a
	// stored one (EventID) or one made of Type, Data and ExternalReference.
	FilterTestInput struct {
		Filter            *string         `json:"filter,omitempty"`
		EventID           string          `json:"event_id,omitempty"`
		Type              string          `json:"type,omitempty"`
		Data              json.RawMessage `json:"data,omitempty"`
		ExternalReference string          `json:"external_reference,omitempty"`
	}
	// FilterTest says whether the endpoint would get the event; Error, why the filter could not
	// run on it.
	FilterTest struct {
		Match bool   `json:"match"`
		Error string `json:"error,omitempty"`
	}
)

// Answers that are not one of the root package's types.
type (
	// IssuedKey is a new tenant key: Key is shown only in this answer.
	IssuedKey struct {
		Key string `json:"key"`
		aviso.APIKey
	}
	// PortalLink is a signed link to the tenant portal.
	PortalLink struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	// SecretInfo is an endpoint's signing secrets (newest first) and token.
	SecretInfo struct {
		Secret  string         `json:"secret"`
		Secrets []aviso.Secret `json:"secrets"`
		Token   string         `json:"token"`
	}
	// BatchResult is one event of a batch publish: created false when its ID was published before.
	BatchResult struct {
		ID      string `json:"id"`
		Created bool   `json:"created"`
	}
	// Document is the events naming one external reference: Latest, and a page of all.
	Document struct {
		ExternalReference string         `json:"external_reference"`
		Latest            *aviso.Event   `json:"latest"`
		Events            []*aviso.Event `json:"events"`
		NextCursor        string         `json:"next_cursor"`
		HasMore           bool           `json:"has_more"`
	}
	// OutboxStatus is what the node's outbox relay knows of one source.
	OutboxStatus struct {
		Source        string     `json:"source"`
		Kind          string     `json:"kind"`
		Reachable     bool       `json:"reachable"`
		Error         string     `json:"error,omitempty"`
		LastRelayedID int64      `json:"last_relayed_id"`
		LastRelayedAt *time.Time `json:"last_relayed_at,omitempty"`
		Relayed       int64      `json:"relayed"`
		Repeated      int64      `json:"repeated"`
		LagRows       int64      `json:"lag_rows"`
		LagSeconds    float64    `json:"lag_seconds"`
		Rejected      int64      `json:"rejected"`
		Standby       bool       `json:"standby"`
		LastError     string     `json:"last_error,omitempty"`
	}
	// OutboxRejected is a row the relay set aside.
	OutboxRejected struct {
		Source            string    `json:"source"`
		ID                int64     `json:"id"`
		TenantID          string    `json:"tenant_id"`
		Type              string    `json:"type"`
		ExternalReference string    `json:"external_reference,omitempty"`
		EventID           string    `json:"event_id,omitempty"`
		Data              string    `json:"data"`
		Reason            string    `json:"reason"`
		CreatedAt         time.Time `json:"created_at"`
		RejectedAt        time.Time `json:"rejected_at"`
	}
)

// Health checks GET /healthz.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/healthz", retry: true}, nil)
	return err
}

// Ready checks GET /readyz: the store (and outbox sources) answer.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/readyz", retry: true}, nil)
	return err
}

// OpenAPI returns the server's OpenAPI 3.1 document.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var b []byte
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/openapi.json", retry: true}, &b)
	return b, err
}

// Tenants.

func (c *Client) CreateTenant(ctx context.Context, in TenantInput) (*aviso.Tenant, error) {
	return send[aviso.Tenant](ctx, c, http.MethodPost, "/v1/tenants", in)
}

func (c *Client) ListTenants(ctx context.Context, o ListOptions) (*aviso.Page[*aviso.Tenant], error) {
	return get[aviso.Page[*aviso.Tenant]](ctx, c, "/v1/tenants", o.query())
}

// Tenants iterates over every tenant.
func (c *Client) Tenants(ctx context.Context) iter.Seq2[*aviso.Tenant, error] {
	return all(ctx, func(ctx context.Context, after string) (*aviso.Page[*aviso.Tenant], error) {
		return c.ListTenants(ctx, ListOptions{After: after, Limit: aviso.MaxLimit})
	})
}

func (c *Client) GetTenant(ctx context.Context, id string) (*aviso.Tenant, error) {
	return get[aviso.Tenant](ctx, c, "/v1/tenants/"+esc(id), nil)
}

func (c *Client) UpdateTenant(ctx context.Context, id string, p TenantPatch) (*aviso.Tenant, error) {
	return send[aviso.Tenant](ctx, c, http.MethodPatch, "/v1/tenants/"+esc(id), p)
}

func (c *Client) DeleteTenant(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/tenants/" + esc(id), retry: true}, nil)
	return err
}

// CreateKey issues a key scoped to the tenant.
func (c *Client) CreateKey(ctx context.Context, tenant string) (*IssuedKey, error) {
	return send[IssuedKey](ctx, c, http.MethodPost, "/v1/tenants/"+esc(tenant)+"/keys", nil)
}

// PortalLink makes a signed link to the tenant portal, valid for ttl (0: the server's default).
func (c *Client) PortalLink(ctx context.Context, tenant string, ttl time.Duration) (*PortalLink, error) {
	var body any
	if ttl > 0 {
		body = map[string]string{"ttl": ttl.String()}
	}
	return send[PortalLink](ctx, c, http.MethodPost, "/v1/tenants/"+esc(tenant)+"/portal-link", body)
}

// The event catalog.

func (c *Client) CreateEventType(ctx context.Context, in EventTypeInput) (*aviso.EventType, error) {
	return send[aviso.EventType](ctx, c, http.MethodPost, "/v1/event-types", in)
}

func (c *Client) ListEventTypes(ctx context.Context, o ListOptions) (*aviso.Page[*aviso.EventType], error) {
	return get[aviso.Page[*aviso.EventType]](ctx, c, "/v1/event-types", o.query())
}

// EventTypes iterates over the catalog.
func (c *Client) EventTypes(ctx context.Context) iter.Seq2[*aviso.EventType, error] {
	return all(ctx, func(ctx context.Context, after string) (*aviso.Page[*aviso.EventType], error) {
		return c.ListEventTypes(ctx, ListOptions{After: after, Limit: aviso.MaxLimit})
	})
}

func (c *Client) GetEventType(ctx context.Context, name string) (*aviso.EventType, error) {
	return get[aviso.EventType](ctx, c, "/v1/event-types/"+esc(name), nil)
}

func (c *Client) UpdateEventType(ctx context.Context, name string, p EventTypePatch) (*aviso.EventType, error) {
	return send[aviso.EventType](ctx, c, http.MethodPatch, "/v1/event-types/"+esc(name), p)
}

func (c *Client) DeleteEventType(ctx context.Context, name string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/event-types/" + esc(name), retry: true}, nil)
	return err
}

// Endpoints. The tenant aviso.OperationalTenant names the platform's operational endpoints.

func endpointsPath(tenant string) string {
	if tenant == aviso.OperationalTenant {
		return "/v1/operational-endpoints"
	}
	return "/v1/tenants/" + esc(tenant) + "/endpoints"
}

func endpointPath(tenant, id string) string { return endpointsPath(tenant) + "/" + esc(id) }

func deliveryPath(tenant, id string) string {
	if tenant == aviso.OperationalTenant {
		return "/v1/operational-deliveries/" + esc(id)
	}
	return "/v1/tenants/" + esc(tenant) + "/deliveries/" + esc(id)
}

// CreateEndpoint subscribes an endpoint (after the handshake unless in.Verify is false).
func (c *Client) CreateEndpoint(ctx context.Context, tenant string, in EndpointInput) (*aviso.Endpoint, error) {
	return send[aviso.Endpoint](ctx, c, http.MethodPost, endpointsPath(tenant), in)
}

func (c *Client) ListEndpoints(ctx context.Context, tenant string, o ListOptions) (*aviso.Page[*aviso.Endpoint], error) {
	return get[aviso.Page[*aviso.Endpoint]](ctx, c, endpointsPath(tenant), o.query())
}

// Endpoints iterates over the tenant's endpoints.
func (c *Client) Endpoints(ctx context.Context, tenant string) iter.Seq2[*aviso.Endpoint, error] {
	return all(ctx, func(ctx context.Context, after string) (*aviso.Page[*aviso.Endpoint], error) {
		return c.ListEndpoints(ctx, tenant, ListOptions{After: after, Limit: aviso.MaxLimit})
	})
}

func (c *Client) GetEndpoint(ctx context.Context, tenant, id string) (*aviso.Endpoint, error) {
	return get[aviso.Endpoint](ctx, c, endpointPath(tenant, id), nil)
}

func (c *Client) UpdateEndpoint(ctx context.Context, tenant, id string, p EndpointPatch) (*aviso.Endpoint, error) {
	return send[aviso.Endpoint](ctx, c, http.MethodPatch, endpointPath(tenant, id), p)
}

func (c *Client) DeleteEndpoint(ctx context.Context, tenant, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: endpointPath(tenant, id), retry: true}, nil)
	return err
}

// RotateSecret makes a new signing secret; the old ones keep signing for 24 hours.
func (c *Client) RotateSecret(ctx context.Context, tenant, id string) (*SecretInfo, error) {
	return send[SecretInfo](ctx, c, http.MethodPost, endpointPath(tenant, id)+"/rotate-secret", nil)
}

func (c *Client) GetSecret(ctx context.Context, tenant, id string) (*SecretInfo, error) {
	return get[SecretInfo](ctx, c, endpointPath(tenant, id)+"/secret", nil)
}

// SendTest publishes a test event to the endpoint alone and returns its synchronous attempt.
func (c *Client) SendTest(ctx context.Context, tenant, id string, in TestInput) (*aviso.Attempt, error) {
	return send[aviso.Attempt](ctx, c, http.MethodPost, endpointPath(tenant, id)+"/test", in)
}

// DeliveryListOptions pages an endpoint's deliveries, optionally of one status.
type DeliveryListOptions struct {
	ListOptions
	Status aviso.DeliveryStatus
}

func (c *Client) ListEndpointDeliveries(ctx context.Context, tenant, id string, o DeliveryListOptions) (*aviso.Page[*aviso.Delivery], error) {
	q := o.query()
	if o.Status != "" {
		q.Set("status", string(o.Status))
	}
	return get[aviso.Page[*aviso.Delivery]](ctx, c, endpointPath(tenant, id)+"/deliveries", q)
}

// EndpointDeliveries iterates over the endpoint's deliveries, newest first.
func (c *Client) EndpointDeliveries(ctx context.Context, tenant, id string, status aviso.DeliveryStatus) iter.Seq2[*aviso.Delivery, error] {
	return all(ctx, func(ctx context.Context, after string) (*aviso.Page[*aviso.Delivery], error) {
		return c.ListEndpointDeliveries(ctx, tenant, id, DeliveryListOptions{ListOptions{After: after, Limit: aviso.MaxLimit}, status})
	})
}

// Replay queues the endpoint's deliveries since in.Since again and returns how many.
func (c *Client) Replay(ctx context.Context, tenant, id string, in ReplayInput) (int, error) {
	out, err := send[struct {
		Queued int `json:"queued"`
	}](ctx, c, http.MethodPost, endpointPath(tenant, id)+"/replay", in)
	if err != nil {
		return 0, err
	}
	return out.Queued, nil
}

// TestFilter tries a payload filter on an event, as a publish would.
func (c *Client) TestFilter(ctx context.Context, tenant, id string, in FilterTestInput) (*FilterTest, error) {
	return send[FilterTest](ctx, c, http.MethodPost, endpointPath(tenant, id)+"/filter-test", in)
}

// Events.

// Publish publishes one event. created is false when in.ID had been published before (the
// answer is then the stored event). A publish with an ID is retried on 5xx and 429.
func (c *Client) Publish(ctx context.Context, tenant string, in PublishInput) (ev *aviso.Event, created bool, err error) {
	ev = new(aviso.Event)
	status, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/tenants/" + esc(tenant) + "/events", body: in,
		retry: in.ID != ""}, ev)
	if err != nil {
		return nil, false, err
	}
	return ev, status == http.StatusAccepted, nil
}

// PublishBatch publishes up to 1,000 events in one transaction. It is retried on 5xx and 429
// when every event has an ID.
func (c *Client) PublishBatch(ctx context.Context, tenant string, in []PublishInput) ([]BatchResult, error) {
	retry := len(in) > 0
	for _, e := range in {
		retry = retry && e.ID != ""
	}
	var out struct {
		Data []BatchResult `json:"data"`
	}
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/tenants/" + esc(tenant) + "/events/batch",
		body: map[string]any{"events": in}, retry: retry}, &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// EventListOptions pages a tenant's events, optionally of one type or external reference.
type EventListOptions struct {
	ListOptions
	Type              string
	ExternalReference string
}

func (c *Client) ListEvents(ctx context.Context, tenant string, o EventListOptions) (*aviso.Page[*aviso.Event], error) {
	q := o.query()
	if o.Type != "" {
		q.Set("type", o.Type)
	}
	if o.ExternalReference != "" {
		q.Set("external_reference", o.ExternalReference)
	}
	return get[aviso.Page[*aviso.Event]](ctx, c, "/v1/tenants/"+esc(tenant)+"/events", q)
}

// Events iterates over the tenant's events in publication order.
func (c *Client) Events(ctx context.Context, tenant string, o EventListOptions) iter.Seq2[*aviso.Event, error] {
	return all(ctx, func(ctx context.Context, after string) (*aviso.Page[*aviso.Event], error) {
		o.After, o.Limit = after, aviso.MaxLimit
		return c.ListEvents(ctx, tenant, o)
	})
}

func (c *Client) GetEvent(ctx context.Context, tenant, id string) (*aviso.Event, error) {
	return get[aviso.Event](ctx, c, "/v1/tenants/"+esc(tenant)+"/events/"+esc(id), nil)
}

func (c *Client) ListEventDeliveries(ctx context.Context, tenant, eventID string, o ListOptions) (*aviso.Page[*aviso.Delivery], error) {
	return get[aviso.Page[*aviso.Delivery]](ctx, c, "/v1/tenants/"+esc(tenant)+"/events/"+esc(eventID)+"/deliveries", o.query())
}

// EventDeliveries iterates over the event's deliveries.
func (c *Client) EventDeliveries(ctx context.Context, tenant, eventID string) iter.Seq2[*aviso.Delivery, error] {
	return all(ctx, func(ctx context.Context, after string) (*aviso.Page[*aviso.Delivery], error) {
		return c.ListEventDeliveries(ctx, tenant, eventID, ListOptions{After: after, Limit: aviso.MaxLimit})
	})
}

// GetDelivery returns a delivery with every attempt.
func (c *Client) GetDelivery(ctx context.Context, tenant, id string) (*aviso.Delivery, error) {
	return get[aviso.Delivery](ctx, c, deliveryPath(tenant, id), nil)
}

// RetryDelivery queues a delivery for an attempt now.
func (c *Client) RetryDelivery(ctx context.Context, tenant, id string) (*aviso.Delivery, error) {
	return send[aviso.Delivery](ctx, c, http.MethodPost, deliveryPath(tenant, id)+"/retry", nil)
}

// GetDocument returns the events naming the external reference ref, newest first.
func (c *Client) GetDocument(ctx context.Context, tenant, ref string, o ListOptions) (*Document, error) {
	return get[Document](ctx, c, "/v1/tenants/"+esc(tenant)+"/documents/"+url.PathEscape(ref), o.query())
}

// The outbox relay (root key).

func (c *Client) OutboxStatus(ctx context.Context) ([]OutboxStatus, error) {
	out, err := get[struct {
		Data []OutboxStatus `json:"data"`
	}](ctx, c, "/v1/outbox", nil)
	if err != nil {
		return nil, err
	}
	return out.Data, nil
}

// OutboxRejected lists the rows the relay set aside, newest first, of source ("" for all).
func (c *Client) OutboxRejected(ctx context.Context, source string, o ListOptions) (*aviso.Page[*OutboxRejected], error) {
	q := o.query()
	if source != "" {
		q.Set("source", source)
	}
	return get[aviso.Page[*OutboxRejected]](ctx, c, "/v1/outbox/rejected", q)
}
