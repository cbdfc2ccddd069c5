package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/requestid"
	"github.com/aviso-dev/aviso/internal/tracing"
	"github.com/aviso-dev/aviso/webhook"
)

// PublishInput is one event to publish. ID is optional: the same ID published again returns the
// stored event and creates no deliveries (idempotency); without it one is generated.
type PublishInput struct {
	ID                string          `json:"id"`
	Type              string          `json:"type"`
	Data              json.RawMessage `json:"data"`
	ExternalReference string          `json:"external_reference"`
}

// PublishResult is the outcome of publishing one event.
type PublishResult struct {
	Event   *aviso.Event
	Created bool // false: the ID had been published before; nothing new was stored
}

// Publish stores events for a tenant together with one pending delivery per matching endpoint
// (enabled, subscribed to the type), in one transaction, and returns once they are committed.
// Each event's type must be in the catalog and its data must satisfy the type's JSON Schema.
//
// Errors: ENOTFOUND (tenant); ETOOLARGE (data over MaxPayloadBytes, or more than MaxBatch
// events); EINVALID naming the field. With more than one input, Field is prefixed with the
// event's position: "/events/3/type", "/events/3/data/total"; with one it is "type" or
// "/data/total".
//
// Publish is traced as a span "publish" (its store transaction a child "store.InsertEvents"),
// whose trace context each event stores for its attempts to continue.
func (s *Service) Publish(ctx context.Context, p aviso.Principal, tenantID string, in []PublishInput) ([]PublishResult, error) {
	ctx, span := tracing.Start(ctx, s.tracer, "publish", s.publishSpan...)
	out, deliveries, err := s.publish(ctx, p, tenantID, in)
	if span.IsRecording() {
		created := 0
		for _, r := range out {
			if r.Created {
				created++
			}
		}
		span.SetAttributes(tracing.TenantID.String(tenantID), semconv.MessagingBatchMessageCount(len(in)),
			tracing.EventsCreated.Int(created), tracing.Deliveries.Int(deliveries))
	}
	tracing.EndWith(span, err)
	return out, err
}

// publish is Publish; it also returns how many deliveries went in.
func (s *Service) publish(ctx context.Context, p aviso.Principal, tenantID string, in []PublishInput) ([]PublishResult, int, error) {
	if err := s.tenantExists(ctx, p, tenantID); err != nil {
		return nil, 0, err
	}
	switch {
	case len(in) == 0:
		return nil, 0, aviso.Invalid("events", "at least one event is required")
	case len(in) > MaxBatch:
		return nil, 0, &aviso.Error{Code: aviso.ETOOLARGE, Field: "events",
			Message: fmt.Sprintf("a batch holds at most %d events, got %d", MaxBatch, len(in))}
	}
	endpoints, err := s.enabledEndpoints(ctx, tenantID)
	if err != nil {
		return nil, 0, fmt.Errorf("publish: list endpoints: %w", err)
	}
	now := s.now()
	types := make(map[string]*aviso.EventType)
	seen := make(map[string]bool, len(in))
	batch := make([]aviso.NewEvent, 0, len(in))
	origin := tracing.Origin(ctx) // the publish span's, or the caller's when tracing is off
	for i, e := range in {
		ne, err := s.newEvent(ctx, tenantID, e, now, types, endpoints)
		if err == nil && seen[ne.Event.ID] {
			err = aviso.Invalid("id", "%q appears twice in this batch", ne.Event.ID)
		}
		if err != nil {
			if len(in) > 1 {
				return nil, 0, atIndex(err, i)
			}
			return nil, 0, err
		}
		seen[ne.Event.ID] = true
		ne.Event.TraceParent = origin
		batch = append(batch, ne)
	}
	sctx, span := tracing.Start(ctx, s.tracer, "store.InsertEvents")
	inserted, err := s.store.InsertEvents(sctx, batch)
	tracing.EndWith(span, err)
	if aviso.ErrorCode(err) == aviso.ENOTFOUND {
		// The tenant was deleted, on another node, after this one last read it.
		s.tenants.forget(tenantID)
		s.endpoints.forget(tenantID)
		return nil, 0, tenantNotFound(tenantID)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("publish: %w", err)
	}
	out := make([]PublishResult, len(inserted))
	deliveries := 0
	for i, r := range inserted {
		out[i] = PublishResult{Event: r.Event, Created: r.Created}
		if r.Created {
			deliveries += len(batch[i].Deliveries)
			s.log.DebugContext(ctx, "event published", "tenant_id", tenantID, "event_id", r.Event.ID,
				"event_type", r.Event.Type, "deliveries", len(batch[i].Deliveries))
		}
	}
	return out, deliveries, nil
}

// enabledEndpoints returns the tenant's enabled endpoints, from the endpoint cache (see
// cache.go). The slice and the endpoints are shared: read only.
func (s *Service) enabledEndpoints(ctx context.Context, tenantID string) ([]*aviso.Endpoint, error) {
	return s.endpoints.get(ctx, tenantID, func(ctx context.Context) ([]*aviso.Endpoint, error) {
		return listAll(ctx, func(ctx context.Context, lp aviso.ListParams) (*aviso.Page[*aviso.Endpoint], error) {
			return s.store.ListEndpoints(ctx, aviso.ListEndpointsParams{ListParams: lp, TenantID: tenantID, Enabled: true})
		})
	})
}

// atIndex prefixes an error's field with the event's position in a batch.
func atIndex(err error, i int) error {
	e, ok := err.(*aviso.Error)
	if !ok || e.Field == "" {
		return err
	}
	c := *e
	field := c.Field
	if field[0] != '/' {
		field = "/" + field
	}
	c.Field = "/events/" + strconv.Itoa(i) + field
	return &c
}

// newEvent checks one input and builds the event with its deliveries.
func (s *Service) newEvent(ctx context.Context, tenantID string, in PublishInput, t time.Time,
	types map[string]*aviso.EventType, endpoints []*aviso.Endpoint) (aviso.NewEvent, error) {
	ev := &aviso.Event{ID: in.ID, TenantID: tenantID, Type: in.Type, Data: in.Data,
		ExternalReference: in.ExternalReference, CreatedAt: t, RequestID: requestid.FromContext(ctx)}
	if ev.ID == "" {
		ev.ID = aviso.NewID(aviso.PrefixEvent, t)
	}
	if isNull(ev.Data) {
		ev.Data = nil
	}
	if err := ev.Validate(); err != nil {
		return aviso.NewEvent{}, err
	}
	if len(ev.Data) > s.cfg.MaxPayloadBytes {
		return aviso.NewEvent{}, &aviso.Error{Code: aviso.ETOOLARGE, Field: "data",
			Message: fmt.Sprintf("is %d bytes; the limit is %d", len(ev.Data), s.cfg.MaxPayloadBytes)}
	}
	et, ok := types[ev.Type]
	if !ok {
		var err error
		et, err = s.eventTypes.get(ctx, ev.Type, func(ctx context.Context) (*aviso.EventType, error) {
			return s.store.GetEventType(ctx, ev.Type)
		})
		if aviso.ErrorCode(err) == aviso.ENOTFOUND {
			return aviso.NewEvent{}, aviso.Invalid("type", "%q is not in the event catalog", ev.Type)
		}
		if err != nil {
			return aviso.NewEvent{}, fmt.Errorf("get event type: %w", err)
		}
		types[ev.Type] = et
	}
	if err := s.checkData(ctx, et, ev.Data); err != nil {
		return aviso.NewEvent{}, err
	}
	ev.Data = webhook.CompactData(ev.Data) // stored as delivered; see webhook.Body
	ne := aviso.NewEvent{Event: ev}
	filters := eventFilter{s: s, ev: ev}
	for _, ep := range endpoints {
		if ep.Disabled || !ep.Subscribes(ev.Type) || !filters.match(ep) {
			continue
		}
		next := t
		ne.Deliveries = append(ne.Deliveries, &aviso.Delivery{
			ID: aviso.NewID(aviso.PrefixDelivery, t), TenantID: tenantID, EventID: ev.ID, EndpointID: ep.ID,
			EventType: ev.Type, Status: aviso.StatusPending, NextAttemptAt: &next, CreatedAt: t, UpdatedAt: t,
		})
	}
	return ne, nil
}

// checkData checks that data is a JSON value that satisfies the type's schema.
func (s *Service) checkData(ctx context.Context, et *aviso.EventType, data json.RawMessage) error {
	if !json.Valid(data) {
		return aviso.Invalid("data", "is not valid JSON")
	}
	return s.validateData(ctx, et, data)
}

// GetEvent returns one event. ENOTFOUND.
func (s *Service) GetEvent(ctx context.Context, p aviso.Principal, tenantID, id string) (*aviso.Event, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	ev, err := s.store.GetEvent(ctx, tenantID, id)
	if aviso.ErrorCode(err) == aviso.ENOTFOUND {
		return nil, aviso.Errorf(aviso.ENOTFOUND, "event %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get event: %w", err)
	}
	return ev, nil
}

// Document is what Aviso knows of one document of the platform (an invoice, a credit note),
// found by its external reference: the events that named it, newest first, and the newest of
// them, whose data is the document's latest state. A receiver that got a thin notification
// fetches it to learn the rest.
type Document struct {
	ExternalReference string         `json:"external_reference"`
	Latest            *aviso.Event   `json:"latest"`
	Events            []*aviso.Event `json:"events"`
	NextCursor        string         `json:"next_cursor"`
	HasMore           bool           `json:"has_more"`
}

// GetDocument looks a document up by external reference. lp pages through its events (Latest is
// the newest whatever the page). ENOTFOUND when no event names the reference.
func (s *Service) GetDocument(ctx context.Context, p aviso.Principal, tenantID, ref string, lp aviso.ListParams) (*Document, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	if ref == "" {
		return nil, aviso.Invalid("external_reference", "is required")
	}
	page, err := listPage(aviso.DocumentCursor, lp, func(lp aviso.ListParams) (*aviso.Page[*aviso.Event], error) {
		return s.store.ListEvents(ctx, aviso.ListEventsParams{ListParams: lp, TenantID: tenantID,
			ExternalReference: ref, Desc: true})
	})
	if err != nil {
		return nil, fmt.Errorf("get document: %w", err)
	}
	doc := &Document{ExternalReference: ref, Events: page.Data, NextCursor: page.NextCursor, HasMore: page.HasMore}
	if lp.After == "" {
		if len(page.Data) == 0 {
			return nil, aviso.Errorf(aviso.ENOTFOUND, "no event has external reference %q", ref)
		}
		doc.Latest = page.Data[0]
		return doc, nil
	}
	first, err := s.store.ListEvents(ctx, aviso.ListEventsParams{ListParams: aviso.ListParams{Limit: 1},
		TenantID: tenantID, ExternalReference: ref, Desc: true})
	if err != nil {
		return nil, fmt.Errorf("get document: %w", err)
	}
	if len(first.Data) == 0 {
		return nil, aviso.Errorf(aviso.ENOTFOUND, "no event has external reference %q", ref)
	}
	doc.Latest = first.Data[0]
	if doc.Events == nil {
		doc.Events = []*aviso.Event{}
	}
	return doc, nil
}
