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

// ReplayInput selects the deliveries of an endpoint to queue again: those created at or after
// Since (RFC 3339) whose status is failed ("failed", the default) or failed or succeeded ("all").
type ReplayInput struct {
	Since  string `json:"since"`
	Status string `json:"status"`
}

// Replay queues an endpoint's deliveries again and returns how many. ENOTFOUND; EINVALID
// ("since", "status").
func (s *Service) Replay(ctx context.Context, p aviso.Principal, tenantID, endpointID string, in ReplayInput) (int, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return 0, err
	}
	since, err := time.Parse(time.RFC3339, in.Since)
	if err != nil {
		return 0, aviso.Invalid("since", "must be an RFC 3339 time such as \"2025-01-31T00:00:00Z\"")
	}
	var all bool
	switch in.Status {
	case "", "failed":
	case "all":
		all = true
	default:
		return 0, aviso.Invalid("status", "must be \"failed\" or \"all\"")
	}
	if _, err := s.getEndpoint(ctx, tenantID, endpointID); err != nil {
		return 0, err
	}
	n, err := s.store.ReplayDeliveries(ctx, aviso.ReplayParams{TenantID: tenantID, EndpointID: endpointID,
		Since: since, All: all, Now: s.now()})
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	s.log.InfoContext(ctx, "deliveries replayed", "tenant_id", tenantID, "endpoint_id", endpointID, "count", n)
	return n, nil
}
