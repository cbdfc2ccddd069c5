package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// Tenants and keys.

func (a *api) createTenant(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	var in service.TenantInput
	if err := decode(r, &in); err != nil {
		return err
	}
	t, err := a.svc.CreateTenant(r.Context(), p, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (a *api) listTenants(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	lp, err := listParams(r)
	if err != nil {
		return err
	}
	page, err := a.svc.ListTenants(r.Context(), p, lp)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (a *api) getTenant(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	t, err := a.svc.GetTenant(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *api) updateTenant(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	var in service.TenantPatch
	if err := decode(r, &in); err != nil {
		return err
	}
	t, err := a.svc.UpdateTenant(r.Context(), p, r.PathValue("tenant"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *api) deleteTenant(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	if err := a.svc.DeleteTenant(r.Context(), p, r.PathValue("tenant")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// keyResponse is an issued key: the record plus the key itself, shown this once.
type keyResponse struct {
	Key string `json:"key"`
	*aviso.APIKey
}

func (a *api) createKey(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	key, k, err := a.svc.CreateTenantKey(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, keyResponse{Key: key, APIKey: k})
	return nil
}

// portalLink answers {"url","expires_at"}: a signed link opening the dashboard scoped to the
// tenant, for the platform to hand its customer or embed in an iframe. The body is optional:
// {"ttl":"15m"} (default 15 minutes, at most 24 hours). A relative link is made absolute with the
// request's host.
func (a *api) portalLink(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	if a.portal == nil {
		return aviso.Errorf(aviso.ENOTFOUND, "the dashboard is not enabled on this server")
	}
	var in struct {
		TTL *aviso.Duration `json:"ttl"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	var ttl time.Duration // 0: the portal's default
	if in.TTL != nil {
		if ttl = time.Duration(*in.TTL); ttl <= 0 {
			return aviso.Invalid("ttl", "must be more than 0s, such as \"15m\"; leave it out for the default of 15 minutes")
		}
	}
	link, exp, err := a.portal.PortalLink(r.Context(), p, r.PathValue("tenant"), ttl)
	if err != nil {
		return err
	}
	if strings.HasPrefix(link, "/") {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		link = scheme + "://" + r.Host + link
	}
	writeJSON(w, http.StatusCreated, map[string]any{"url": link, "expires_at": exp.UTC()})
	return nil
}

// Event catalog.

func (a *api) createEventType(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	var in struct {
		Name         string            `json:"name"`
		Description  string            `json:"description"`
		Descriptions map[string]string `json:"descriptions"`
		Schema       json.RawMessage   `json:"schema"`
		Example      json.RawMessage   `json:"example"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	t, err := a.svc.CreateEventType(r.Context(), p, &aviso.EventType{Name: in.Name, Description: in.Description,
		Descriptions: in.Descriptions, Schema: in.Schema, Example: in.Example})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (a *api) listEventTypes(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	lp, err := listParams(r)
	if err != nil {
		return err
	}
	page, err := a.svc.ListEventTypes(r.Context(), p, lp)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (a *api) getEventType(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	t, err := a.svc.GetEventType(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *api) updateEventType(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	var in service.EventTypePatch
	if err := decode(r, &in); err != nil {
		return err
	}
	t, err := a.svc.UpdateEventType(r.Context(), p, r.PathValue("name"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *api) deleteEventType(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	if err := a.svc.DeleteEventType(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Endpoints.

func (a *api) createEndpoint(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	var in service.EndpointInput
	if err := decode(r, &in); err != nil {
		return err
	}
	ep, err := a.svc.CreateEndpoint(r.Context(), p, r.PathValue("tenant"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, ep)
	return nil
}

func (a *api) listEndpoints(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	lp, err := listParams(r)
	if err != nil {
		return err
	}
	page, err := a.svc.ListEndpoints(r.Context(), p, r.PathValue("tenant"), lp)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (a *api) getEndpoint(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	ep, err := a.svc.GetEndpoint(r.Context(), p, r.PathValue("tenant"), r.PathValue("endpoint"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ep)
	return nil
}

func (a *api) updateEndpoint(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	var in service.EndpointPatch
	if err := decode(r, &in); err != nil {
		return err
	}
	ep, err := a.svc.UpdateEndpoint(r.Context(), p, r.PathValue("tenant"), r.PathValue("endpoint"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ep)
	return nil
}

func (a *api) deleteEndpoint(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	if err := a.svc.DeleteEndpoint(r.Context(), p, r.PathValue("tenant"), r.PathValue("endpoint")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) rotateSecret(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	info, err := a.svc.RotateSecret(r.Context(), p, r.PathValue("tenant"), r.PathValue("endpoint"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (a *api) getSecret(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	info, err := a.svc.GetSecret(r.Context(), p, r.PathValue("tenant"), r.PathValue("endpoint"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// sendTest takes an optional body {"type","data"}; an empty body sends the default test event.
func (a *api) sendTest(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	var in service.TestInput
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil && aviso.ErrorMessage(err) != emptyBody {
			return err
		}
	}
	at, err := a.svc.SendTest(r.Context(), p, r.PathValue("tenant"), r.PathValue("endpoint"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, at)
	return nil
}

func (a *api) listEndpointDeliveries(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	lp, err := listParams(r)
	if err != nil {
		return err
	}
	page, err := a.svc.ListDeliveries(r.Context(), p, r.PathValue("tenant"), service.DeliveryFilter{
		ListParams: lp, EndpointID: r.PathValue("endpoint"), Status: aviso.DeliveryStatus(r.URL.Query().Get("status"))})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (a *api) replay(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	var in service.ReplayInput
	if err := decode(r, &in); err != nil {
		return err
	}
	n, err := a.svc.Replay(r.Context(), p, r.PathValue("tenant"), r.PathValue("endpoint"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"queued": n})
	return nil
}

// Events.

// publish answers 202 with the event when it is new, 200 with the stored event when its id had
// been published before. The id may come from the body or the Idempotency-Key header.
func (a *api) publish(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	var in service.PublishInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if in.ID != "" && in.ID != key {
			return aviso.Invalid("id", "differs from the Idempotency-Key header; send one or make them equal")
		}
		in.ID = key
	}
	res, err := a.svc.Publish(r.Context(), p, r.PathValue("tenant"), []service.PublishInput{in})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res[0].Created {
		status = http.StatusAccepted
	}
	writeJSON(w, status, res[0].Event)
	return nil
}

// batchResult is one entry of a batch publish answer.
type batchResult struct {
	ID      string `json:"id"`
	Created bool   `json:"created"`
}

// publishBatch takes {"events":[…]} and answers 202 {"data":[{"id","created"}…]} in input order.
func (a *api) publishBatch(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	var in struct {
		Events []service.PublishInput `json:"events"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	res, err := a.svc.Publish(r.Context(), p, r.PathValue("tenant"), in.Events)
	if err != nil {
		return err
	}
	out := make([]batchResult, len(res))
	for i, x := range res {
		out[i] = batchResult{ID: x.Event.ID, Created: x.Created}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"data": out})
	return nil
}

func (a *api) getEvent(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	ev, err := a.svc.GetEvent(r.Context(), p, r.PathValue("tenant"), r.PathValue("event"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ev)
	return nil
}

func (a *api) listEventDeliveries(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	lp, err := listParams(r)
	if err != nil {
		return err
	}
	page, err := a.svc.ListDeliveries(r.Context(), p, r.PathValue("tenant"), service.DeliveryFilter{
		ListParams: lp, EventID: r.PathValue("event")})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (a *api) getDelivery(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	d, err := a.svc.GetDelivery(r.Context(), p, r.PathValue("tenant"), r.PathValue("delivery"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (a *api) retryDelivery(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	d, err := a.svc.RetryDelivery(r.Context(), p, r.PathValue("tenant"), r.PathValue("delivery"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, d)
	return nil
}

// getDocument answers GET /v1/tenants/{tenant}/documents/{external_reference}: the look-up a
// receiver of a thin notification makes to learn the rest. The answer is
//
//	{"external_reference":"…","latest":{event},"events":[…newest first],"next_cursor":"…","has_more":bool}
//
// where latest is the newest event naming the reference — its data is the document's latest
// state — and events pages (?after=, ?limit=) through all of them, newest first. 404 when no
// event names the reference. A tenant key may use it.
func (a *api) getDocument(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	lp, err := listParams(r)
	if err != nil {
		return err
	}
	doc, err := a.svc.GetDocument(r.Context(), p, r.PathValue("tenant"), r.PathValue("ref"), lp)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

func (a *api) testFilter(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	var in service.FilterTestInput
	if err := decode(r, &in); err != nil {
		return err
	}
	out, err := a.svc.TestFilter(r.Context(), p, r.PathValue("tenant"), r.PathValue("endpoint"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
