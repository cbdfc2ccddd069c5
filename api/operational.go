package api

import (
	"net/http"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// operationalRoutes registers the platform's operational endpoints: root key only, the same
// fields and handlers as a tenant's endpoints, acting on the reserved tenant
// aviso.OperationalTenant (see service/operational.go).
//
//	POST   /v1/operational-endpoints                         create
//	GET    /v1/operational-endpoints                         list
//	GET    /v1/operational-endpoints/{endpoint}              get
//	PATCH  /v1/operational-endpoints/{endpoint}              change; {"disabled":true|false}
//	DELETE /v1/operational-endpoints/{endpoint}              delete
//	POST   /v1/operational-endpoints/{endpoint}/rotate-secret
//	GET    /v1/operational-endpoints/{endpoint}/secret
//	POST   /v1/operational-endpoints/{endpoint}/test
//	GET    /v1/operational-endpoints/{endpoint}/deliveries
//	POST   /v1/operational-endpoints/{endpoint}/replay
//	GET    /v1/operational-deliveries/{delivery}             a delivery with its attempts
//	POST   /v1/operational-deliveries/{delivery}/retry
func (a *api) operationalRoutes(route func(pattern string, h handler)) {
	const o = "/v1/operational-endpoints"
	const ep = o + "/{endpoint}"
	route("POST "+o, a.operational(a.createEndpoint))
	route("GET "+o, a.operational(a.listEndpoints))
	route("GET "+ep, a.operational(a.getEndpoint))
	route("PATCH "+ep, a.operational(a.updateEndpoint))
	route("DELETE "+ep, a.operational(a.deleteEndpoint))
	route("POST "+ep+"/rotate-secret", a.operational(a.rotateSecret))
	route("GET "+ep+"/secret", a.operational(a.getSecret))
	route("POST "+ep+"/test", a.operational(a.sendTest))
	route("GET "+ep+"/deliveries", a.operational(a.listEndpointDeliveries))
	route("POST "+ep+"/replay", a.operational(a.replay))
	route("GET /v1/operational-deliveries/{delivery}", a.operational(a.getDelivery))
	route("POST /v1/operational-deliveries/{delivery}/retry", a.operational(a.retryDelivery))
}

// operational runs a tenant handler on the operational tenant, for the root key only.
func (a *api) operational(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
		if !p.IsRoot() {
			return aviso.Errorf(aviso.EFORBIDDEN, "operational endpoints are managed with the root key")
		}
		r.SetPathValue("tenant", aviso.OperationalTenant)
		return h(w, r, service.OperationalPrincipal(p))
	}
}
