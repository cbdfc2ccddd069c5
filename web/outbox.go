package web

import (
	"net/http"
	"net/url"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/outbox"
)

// outboxSource is one source on the outbox page: its status and its newest rejected rows.
type outboxSource struct {
	Status   outbox.Status
	Rejected []*outbox.Rejected
	Err      string // the rejected rows could not be read
	NextURL  string // older rejected rows
}

type outboxData struct {
	Configured bool
	Sources    []outboxSource
}

// outboxPage shows, per outbox source this node relays, its status (last relayed id, lag,
// rejected count) and its newest rejected rows with their reason. Root only; ?source= and
// ?after= page through one source's rejected rows.
func (h *Handler) outboxPage(w http.ResponseWriter, r *request) {
	if !r.principal().IsRoot() {
		h.fail(w, r.Request, http.StatusForbidden, "error_forbidden")
		return
	}
	d := outboxData{Configured: h.outbox != nil}
	if h.outbox != nil {
		st, err := h.outbox.Status(r.Context(), r.principal())
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		only, after := r.URL.Query().Get("source"), r.URL.Query().Get("after")
		for _, s := range st {
			if only != "" && s.Source != only {
				continue
			}
			src := outboxSource{Status: s}
			lp := outbox.ListRejectedParams{Source: s.Source, ListParams: aviso.ListParams{Limit: 20}}
			if only != "" {
				lp.After = after
			}
			page, err := h.outbox.ListRejected(r.Context(), r.principal(), lp)
			switch {
			case err != nil:
				src.Err = aviso.ErrorMessage(err)
			default:
				src.Rejected = page.Data
				if page.HasMore {
					src.NextURL = "/ui/outbox?source=" + url.QueryEscape(s.Source) + "&after=" + url.QueryEscape(page.NextCursor)
				}
			}
			d.Sources = append(d.Sources, src)
		}
	}
	h.render(w, http.StatusOK, "outbox", h.page(r, "outbox_title", d))
}

// addOutboxMessages adds the outbox page's labels to the catalogs.
func addOutboxMessages(c map[string]translator) {
	for k, v := range map[string][2]string{
		"outbox_title":          {"Outbox", "Outbox"},
		"nav_outbox":            {"Outbox", "Outbox"},
		"outbox_none":           {"This node relays no outbox. Start it with --outbox postgres://… or --outbox mysql://… (see docs/outbox.md).", "Este nodo no retransmite ningún outbox. Arráncalo con --outbox postgres://… o --outbox mysql://… (ver docs/outbox.md)."},
		"outbox_source":         {"Source", "Origen"},
		"outbox_reachable":      {"Reachable", "Accesible"},
		"outbox_unreachable":    {"Unreachable", "Inaccesible"},
		"outbox_standby":        {"Standing by: another node relays this source", "En espera: otro nodo retransmite este origen"},
		"outbox_last_id":        {"Last relayed id", "Último id retransmitido"},
		"outbox_relayed":        {"Relayed by this node", "Retransmitidas por este nodo"},
		"outbox_repeated":       {"Already in Aviso (re-read)", "Ya estaban en Aviso (releídas)"},
		"outbox_lag_rows":       {"Rows waiting", "Filas en espera"},
		"outbox_lag_seconds":    {"Oldest waiting (seconds)", "La más antigua en espera (segundos)"},
		"outbox_rejected":       {"Rejected rows", "Filas rechazadas"},
		"outbox_last_error":     {"Last error", "Último error"},
		"outbox_no_rejected":    {"No rejected rows.", "No hay filas rechazadas."},
		"outbox_row":            {"Row", "Fila"},
		"outbox_reason":         {"Reason", "Motivo"},
		"outbox_rejected_at":    {"Rejected", "Rechazada"},
		"outbox_data":           {"Data", "Datos"},
		"outbox_tenant":         {"Tenant", "Cliente"},
		"outbox_rejected_hint":  {"Fix the cause, then insert the row into aviso_outbox again.", "Corrige la causa y vuelve a insertar la fila en aviso_outbox."},
		"outbox_older_rejected": {"Older rejected rows", "Filas rechazadas más antiguas"},
	} {
		c[langEN][k] = v[0]
		c[langES][k] = v[1]
	}
}
