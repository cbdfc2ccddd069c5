package api

import (
	"net/http"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/outbox"
)

// outboxStatus answers GET /v1/outbox: {"data":[status per source]}, empty when the node relays
// no outbox. Root only.
func (a *api) outboxStatus(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	if a.outbox == nil {
		if !p.IsRoot() {
			return aviso.Errorf(aviso.EFORBIDDEN, "a tenant key cannot read the outbox status; use the root key")
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": []outbox.Status{}})
		return nil
	}
	st, err := a.outbox.Status(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": st})
	return nil
}

// outboxRejected answers GET /v1/outbox/rejected?source=&after=&limit=: a page of the rows the
// relay moved aside, newest first. Root only; 404 when the node relays no outbox.
func (a *api) outboxRejected(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	if !p.IsRoot() {
		return aviso.Errorf(aviso.EFORBIDDEN, "a tenant key cannot read the outbox; use the root key")
	}
	if a.outbox == nil {
		return aviso.Errorf(aviso.ENOTFOUND, "this node relays no outbox (start it with --outbox)")
	}
	lp, err := listParams(r)
	if err != nil {
		return err
	}
	page, err := a.outbox.ListRejected(r.Context(), p, outbox.ListRejectedParams{ListParams: lp, Source: r.URL.Query().Get("source")})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
