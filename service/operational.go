package service

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/aviso-dev/aviso"
)

// Operational webhooks. The platform operator's operational endpoints are endpoints of the
// reserved tenant aviso.OperationalTenant, managed with the root key through the API's
// /v1/operational-endpoints, which act on that tenant as OperationalPrincipal. Notify publishes
// an operational event into it, so the operator's endpoints receive it exactly as a tenant's
// endpoint receives an invoice: matched by event type, signed, retried, logged.
//
// A notice is published right after the change it reports has been committed. Should the
// process stop in between, that one notice is lost (the change itself is not); the endpoint's
// state and the delivery log stay the record of truth. Notices about the operational tenant's
// own endpoints and deliveries are not sent, so a failing operational endpoint cannot feed on
// itself.

// OperationalPrincipal is the principal the operational routes act as: scoped to the reserved
// tenant, so the tenant-scoped operations (endpoints, deliveries, secrets) apply to it as to any
// tenant, and nothing else (tenant administration, the catalog) is allowed. Only a root key may
// act as it (the API checks); no key is ever scoped to it.
func OperationalPrincipal(root aviso.Principal) aviso.Principal {
	return aviso.Principal{KeyID: root.KeyID, TenantID: aviso.OperationalTenant}
}

// EnsureOperationalTenant creates the reserved tenant if it is missing. Idempotent: nodes that
// start together may all call it.
func (s *Service) EnsureOperationalTenant(ctx context.Context) error {
	now := s.now()
	err := s.store.CreateTenant(ctx, &aviso.Tenant{ID: aviso.OperationalTenant, Name: "Operational endpoints",
		Metadata: map[string]string{}, CreatedAt: now, UpdatedAt: now})
	if err != nil && aviso.ErrorCode(err) != aviso.ECONFLICT {
		return err
	}
	return nil
}

// Notify publishes operational events of type typ, one per notice, to the operational
// endpoints subscribed to it. It never fails the caller: an error is logged.
func (s *Service) Notify(ctx context.Context, typ string, notices ...aviso.Notice) {
	notices = slices.DeleteFunc(slices.Clone(notices), func(n aviso.Notice) bool {
		return n.TenantID == aviso.OperationalTenant
	})
	if len(notices) == 0 {
		return
	}
	eps, err := s.enabledEndpoints(ctx, aviso.OperationalTenant)
	if err != nil && aviso.ErrorCode(err) != aviso.ENOTFOUND {
		s.log.WarnContext(ctx, "operational notice not sent", "event_type", typ, "error", err)
		return
	}
	if !slices.ContainsFunc(eps, func(ep *aviso.Endpoint) bool { return ep.Subscribes(typ) }) {
		return // nobody listens: no event to store
	}
	in := make([]PublishInput, 0, len(notices))
	for _, n := range notices {
		if n.At.IsZero() {
			n.At = s.now()
		}
		n.URL = aviso.RedactURL(n.URL)
		data, err := json.Marshal(n)
		if err != nil {
			s.log.WarnContext(ctx, "operational notice not sent", "event_type", typ, "error", err)
			return
		}
		in = append(in, PublishInput{Type: typ, Data: data})
	}
	for chunk := range slices.Chunk(in, MaxBatch) {
		if _, err := s.Publish(ctx, OperationalPrincipal(aviso.Principal{}), aviso.OperationalTenant, chunk); err != nil {
			s.log.WarnContext(ctx, "operational notices not sent", "event_type", typ, "count", len(chunk), "error", err)
		}
	}
}

// notifyEndpoint sends a notice about ep.
func (s *Service) notifyEndpoint(ctx context.Context, typ string, ep *aviso.Endpoint) {
	n := aviso.Notice{TenantID: ep.TenantID, EndpointID: ep.ID, URL: ep.URL}
	if typ == aviso.EventEndpointDisabled {
		n.Reason = ep.DisabledReason
	}
	s.Notify(ctx, typ, n)
}
