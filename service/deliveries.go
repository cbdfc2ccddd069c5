package service

import (
	"context"
	"fmt"
	"time"

	"github.com/aviso-dev/aviso"
)

// DeliveryFilter selects a page of a tenant's deliveries; empty fields do not filter.
type DeliveryFilter struct {
	aviso.ListParams
	EventID           string
	EndpointID        string
	Status            aviso.DeliveryStatus
	EventType         string
	ExternalReference string // the deliveries of the events that carry it
}

// ListDeliveries lists deliveries in creation order. ENOTFOUND for an unknown tenant, event or
// endpoint; EINVALID ("status").
func (s *Service) ListDeliveries(ctx context.Context, p aviso.Principal, tenantID string, f DeliveryFilter) (*aviso.Page[*aviso.Delivery], error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	switch f.Status {
	case "", aviso.StatusPending, aviso.StatusSucceeded, aviso.StatusFailed:
	default:
		return nil, aviso.Invalid("status", "must be pending, succeeded or failed")
	}
	if f.EventID != "" {
		if _, err := s.GetEvent(ctx, p, tenantID, f.EventID); err != nil {
			return nil, err
		}
	}
	if f.EndpointID != "" {
		if _, err := s.getEndpoint(ctx, tenantID, f.EndpointID); err != nil {
			return nil, err
		}
	}
	page, err := listPage(aviso.DeliveriesCursor, f.ListParams, func(lp aviso.ListParams) (*aviso.Page[*aviso.Delivery], error) {
		return s.store.ListDeliveries(ctx, aviso.ListDeliveriesParams{ListParams: lp,
			TenantID: tenantID, EventID: f.EventID, EndpointID: f.EndpointID, Status: f.Status,
			EventType: f.EventType, ExternalReference: f.ExternalReference})
	})
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return page, nil
}

// GetDelivery returns one delivery with all its attempts, oldest first. ENOTFOUND.
func (s *Service) GetDelivery(ctx context.Context, p aviso.Principal, tenantID, id string) (*aviso.Delivery, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	d, err := s.store.GetDelivery(ctx, tenantID, id)
	if aviso.ErrorCode(err) == aviso.ENOTFOUND {
		return nil, aviso.Errorf(aviso.ENOTFOUND, "delivery %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get delivery: %w", err)
	}
	if d.Attempts == nil {
		d.Attempts = []aviso.Attempt{}
	}
	return d, nil
}

// RetryDelivery queues a delivery for an attempt now, whatever its status, with a fresh round of
// the retry schedule. ENOTFOUND.
func (s *Service) RetryDelivery(ctx context.Context, p aviso.Principal, tenantID, id string) (*aviso.Delivery, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	d, err := s.store.RetryDelivery(ctx, tenantID, id, s.now())
	if aviso.ErrorCode(err) == aviso.ENOTFOUND {
		return nil, aviso.Errorf(aviso.ENOTFOUND, "delivery %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("retry delivery: %w", err)
	}
	s.log.InfoContext(ctx, "delivery retried", "tenant_id", tenantID, "delivery_id", id)
	return d, nil
}

// ReplayInput selects what to send an endpoint again, in a window of time from Since to Until
// (RFC 3339; Until optional): its failed deliveries ("failed", the default), its failed and
// succeeded ones ("all"), or its "missed" events — those published in the window that it
// subscribes to and never had a delivery of (published while it was disabled, or before it
// existed), which get a delivery each.
type ReplayInput struct {
	Since  string `json:"since"`
	Until  string `json:"until"`
	Status string `json:"status"`
}

// Replay queues an endpoint's deliveries again, or creates those it missed, and returns how
// many. ENOTFOUND; ECONFLICT while the endpoint is disabled (enable it first: its deliveries
// would fail at once); EINVALID ("since", "until", "status").
func (s *Service) Replay(ctx context.Context, p aviso.Principal, tenantID, endpointID string, in ReplayInput) (int, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return 0, err
	}
	since, err := time.Parse(time.RFC3339, in.Since)
	if err != nil {
		return 0, aviso.Invalid("since", "must be an RFC 3339 time such as \"2025-01-31T00:00:00Z\"")
	}
	var until time.Time
	if in.Until != "" {
		if until, err = time.Parse(time.RFC3339, in.Until); err != nil {
			return 0, aviso.Invalid("until", "must be an RFC 3339 time such as \"2025-01-31T00:00:00Z\"")
		}
		if !until.After(since) {
			return 0, aviso.Invalid("until", "must be after since")
		}
	}
	var all, missed bool
	switch in.Status {
	case "", "failed":
	case "all":
		all = true
	case "missed":
		missed = true
	default:
		return 0, aviso.Invalid("status", "must be \"failed\", \"all\" or \"missed\"")
	}
	ep, err := s.getEndpoint(ctx, tenantID, endpointID)
	if err != nil {
		return 0, err
	}
	if ep.Disabled {
		return 0, aviso.Errorf(aviso.ECONFLICT, "endpoint %q is disabled: enable it first (PATCH {\"disabled\": false}), then replay", endpointID)
	}
	var n int
	if missed {
		n, err = s.store.CreateMissedDeliveries(ctx, aviso.MissedParams{TenantID: tenantID, EndpointID: endpointID,
			Since: since, Until: until, Types: ep.EventTypes, Now: s.now()})
	} else {
		n, err = s.store.ReplayDeliveries(ctx, aviso.ReplayParams{TenantID: tenantID, EndpointID: endpointID,
			Since: since, Until: until, All: all, Now: s.now()})
	}
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	s.log.InfoContext(ctx, "deliveries replayed", "tenant_id", tenantID, "endpoint_id", endpointID,
		"status", in.Status, "count", n)
	return n, nil
}
