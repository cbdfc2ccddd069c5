package aviso

import "time"

// OperationalTenant is the reserved tenant that holds the platform operator's operational
// endpoints (the API's /v1/operational-endpoints, root key only). Aviso publishes an
// operational event into it when something happens to a tenant's endpoint or delivery that the
// operator should know of; the tenant's endpoints receive them signed and retried like any
// delivery. Nobody may create, delete or issue keys for it; tenant lists leave it out.
const OperationalTenant = "_aviso"

// The operational event types, in the catalog with the invoicing ones. Their data is a Notice.
const (
	EventEndpointCreated  = "endpoint.created"  // a tenant's endpoint was created
	EventEndpointDeleted  = "endpoint.deleted"  // a tenant's endpoint was deleted
	EventEndpointDisabled = "endpoint.disabled" // disabled by hand, after failures, or on 410 Gone
	EventEndpointEnabled  = "endpoint.enabled"  // enabled again
	EventDeliveryFailed   = "delivery.failed"   // a delivery ran out of retries
)

// OperationalEventTypes returns the operational event types, in a new slice.
func OperationalEventTypes() []string {
	return []string{EventEndpointCreated, EventEndpointDeleted, EventEndpointDisabled,
		EventEndpointEnabled, EventDeliveryFailed}
}

// Notice is the data of an operational event: which tenant's endpoint (and delivery) it is
// about and, for a disabling or a failed delivery, why.
type Notice struct {
	TenantID           string    `json:"tenant_id"`
	EndpointID         string    `json:"endpoint_id"`
	URL                string    `json:"url,omitempty"`    // the endpoint's URL without query string or user info
	Reason             string    `json:"reason,omitempty"` // endpoint.disabled: manual, consecutive_failures, gone
	LastError          string    `json:"last_error,omitempty"`
	LastResponseStatus int       `json:"last_response_status,omitempty"`
	DeliveryID         string    `json:"delivery_id,omitempty"` // delivery.failed
	EventID            string    `json:"event_id,omitempty"`    // delivery.failed
	At                 time.Time `json:"at"`
}
