package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
	"github.com/aviso-dev/aviso/webhook"
)

// ---- the delivery log ----

// deliveryFilter is the log's filter form, as typed; every field is a query parameter.
type deliveryFilter struct {
	Status, Type, Endpoint, Ref, Since, Until, Q string
}

func (f deliveryFilter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"status": f.Status, "type": f.Type, "endpoint": f.Endpoint, "ref": f.Ref,
		"since": f.Since, "until": f.Until, "q": f.Q} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

type deliveriesData struct {
	Filter    deliveryFilter
	Statuses  []aviso.DeliveryStatus
	Types     []*aviso.EventType
	Endpoints []*aviso.Endpoint
	Rows      []logRow
	Tenant    string
	NextURL   string // the next (older) page
	FirstURL  string // the first (newest) page, when this is not it
	Capped    bool   // a reference search showed the deliveries of its newest events only
	Searched  string // what q was taken for: "event" or "ref"
}

// maxRefEvents bounds a search by external reference: the deliveries of the reference's newest
// events are shown, on one page.
const maxRefEvents = 100

// deliveries is the tenant's delivery log. Filters: status, event type, endpoint, creation time
// (since, until) and external reference; q searches by event ID or external reference (an ID of
// one of the tenant's events wins). A log filtered by reference lists the deliveries of the
// reference's events (the newest maxRefEvents) on one page; any other pages by cursor.
func (h *Handler) deliveries(w http.ResponseWriter, r *request) {
	ctx, p, tenantID := r.Context(), r.principal(), r.PathValue("tenant")
	q := r.URL.Query()
	f := deliveryFilter{Status: q.Get("status"), Type: q.Get("type"), Endpoint: q.Get("endpoint"),
		Ref: strings.TrimSpace(q.Get("ref")), Since: q.Get("since"), Until: q.Get("until"), Q: strings.TrimSpace(q.Get("q"))}
	eps, err := h.svc.ListEndpoints(ctx, p, tenantID, aviso.ListParams{Limit: aviso.MaxLimit})
	if err != nil {
		h.failErr(w, r, err) // ENOTFOUND for a tenant the principal cannot see
		return
	}
	types, err := h.eventTypes(r)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	lp := aviso.ListDeliveriesParams{ListParams: aviso.ListParams{After: q.Get("after")}, TenantID: tenantID,
		EndpointID: f.Endpoint, Status: aviso.DeliveryStatus(f.Status), EventType: f.Type, Desc: true}
	if !slices.Contains([]string{"", "pending", "succeeded", "failed"}, f.Status) {
		lp.Status, f.Status = "", ""
	}
	if t, err := time.Parse(sinceLayout, f.Since); err == nil {
		lp.Since = t
	} else {
		f.Since = ""
	}
	if t, err := time.Parse(sinceLayout, f.Until); err == nil {
		lp.Until = t
	} else {
		f.Until = ""
	}
	d := deliveriesData{Filter: f, Types: types, Endpoints: eps.Data, Tenant: tenantID,
		Statuses: []aviso.DeliveryStatus{aviso.StatusPending, aviso.StatusSucceeded, aviso.StatusFailed}}
	ref := f.Ref
	if f.Q != "" {
		// The service scopes the event to the tenant; another tenant's ID reads as not found.
		if _, err := h.svc.GetEvent(ctx, p, tenantID, f.Q); err == nil {
			lp.EventID, d.Searched = f.Q, "event"
		} else if aviso.ErrorCode(err) == aviso.ENOTFOUND {
			ref, d.Searched = f.Q, "ref"
		} else {
			h.failErr(w, r, err)
			return
		}
	}
	// The service listed this tenant's endpoints above, so the principal may see it; the store
	// queries filter by the tenant too, by type and time which the service's list does not offer.
	var ds []*aviso.Delivery
	if ref != "" && lp.EventID == "" {
		ds, d.Capped, err = h.deliveriesByRef(ctx, lp, ref)
	} else {
		var page *aviso.Page[*aviso.Delivery]
		page, err = h.store.ListDeliveries(ctx, lp)
		if err == nil {
			ds = page.Data
			base := "/ui/t/" + tenantID + "/deliveries?"
			if page.HasMore {
				next := f.values()
				next.Set("after", page.NextCursor)
				d.NextURL = base + next.Encode()
			}
			if lp.After != "" {
				d.FirstURL = base + f.values().Encode()
			}
		}
	}
	if err != nil {
		h.failErr(w, r, fmt.Errorf("list deliveries: %w", err))
		return
	}
	byID := make(map[string]*aviso.Endpoint, len(eps.Data))
	for _, ep := range eps.Data {
		byID[ep.ID] = ep
	}
	if d.Rows, err = h.logRows(ctx, h.tr(r.Request), tenantID, ds, byID); err != nil {
		h.failErr(w, r, err)
		return
	}
	h.render(w, http.StatusOK, "deliveries", h.page(r, "deliveries_title", d))
}

// deliveriesByRef lists the deliveries, matching lp's other filters, of the newest events whose
// external reference is ref, newest first; capped when the reference has more events.
func (h *Handler) deliveriesByRef(ctx context.Context, lp aviso.ListDeliveriesParams, ref string) ([]*aviso.Delivery, bool, error) {
	evs, err := h.store.ListEvents(ctx, aviso.ListEventsParams{ListParams: aviso.ListParams{Limit: maxRefEvents},
		TenantID: lp.TenantID, ExternalReference: ref, Desc: true})
	if err != nil {
		return nil, false, err
	}
	var out []*aviso.Delivery
	for _, ev := range evs.Data {
		q := lp
		q.EventID, q.After, q.Limit = ev.ID, "", aviso.MaxLimit
		page, err := h.store.ListDeliveries(ctx, q)
		if err != nil {
			return nil, false, err
		}
		out = append(out, page.Data...)
	}
	slices.SortFunc(out, func(a, b *aviso.Delivery) int { return strings.Compare(b.ID, a.ID) })
	return out, evs.HasMore, nil
}

// ---- one delivery ----

type renderedRequest struct {
	Format aviso.Format
	Body   string
}

type deliveryData struct {
	Delivery *aviso.Delivery
	Row      logRow
	Request  *renderedRequest
	Attempts []attemptView
	Open     int // the attempt shown unfolded
}

// attemptView is one attempt with its times and outcome in words.
type attemptView struct {
	*aviso.Attempt
	At      relTime
	Outcome string
}

func (h *Handler) delivery(w http.ResponseWriter, r *request) {
	ctx, p, tenantID := r.Context(), r.principal(), r.PathValue("tenant")
	dl, err := h.svc.GetDelivery(ctx, p, tenantID, r.PathValue("delivery"))
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	tr := h.tr(r.Request)
	eps := map[string]*aviso.Endpoint{}
	if ep, err := h.svc.GetEndpoint(ctx, p, tenantID, dl.EndpointID); err == nil {
		eps[ep.ID] = ep
	}
	rows, err := h.logRows(ctx, tr, tenantID, []*aviso.Delivery{dl}, eps)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	d := deliveryData{Delivery: dl, Row: rows[0], Open: len(dl.Attempts) - 1}
	for i := range dl.Attempts {
		a := &dl.Attempts[i]
		d.Attempts = append(d.Attempts, attemptView{Attempt: a, At: tr.rel(h.now(), a.At), Outcome: tr.outcome(a.ResponseStatus, a.Error)})
	}
	if i, err := strconv.Atoi(r.URL.Query().Get("attempt")); err == nil && i >= 0 && i < len(dl.Attempts) {
		d.Open = i
	}
	d.Request = h.renderRequest(r, dl)
	v := h.page(r, "delivery", d)
	v.Title = dl.EventType
	if ep := d.Row.Endpoint; ep != nil {
		v.Title += " → " + endpointName(ep)
	}
	h.render(w, http.StatusOK, "delivery", v)
}

// renderRequest renders the body the delivery sends, in its endpoint's current format (each
// attempt keeps the headers it was sent with); nil when the event or endpoint cannot be read.
func (h *Handler) renderRequest(r *request, dl *aviso.Delivery) *renderedRequest {
	ctx, p := r.Context(), r.principal()
	ev, err := h.svc.GetEvent(ctx, p, dl.TenantID, dl.EventID)
	if err != nil {
		return nil
	}
	ep, err := h.svc.GetEndpoint(ctx, p, dl.TenantID, dl.EndpointID)
	if err != nil {
		return nil
	}
	body, err := webhook.Body(ep.Format, ev)
	if err != nil {
		h.log.WarnContext(ctx, "render delivery body", "delivery_id", dl.ID, "error", err)
		return nil
	}
	return &renderedRequest{Format: ep.Format, Body: prettyJSON(body)}
}

// ---- retry and replay, each after a confirmation of what will be sent ----

// retryDelivery shows what a retry sends (to whom, which event, the body), then queues the
// delivery for an attempt now.
func (h *Handler) retryDelivery(w http.ResponseWriter, r *request) {
	ctx, tenantID, id := r.Context(), r.PathValue("tenant"), r.PathValue("delivery")
	base := "/ui/t/" + tenantID + "/deliveries/" + id
	if r.Method != http.MethodPost || !confirmed(r) {
		dl, err := h.svc.GetDelivery(ctx, r.principal(), tenantID, id)
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		ep, err := h.svc.GetEndpoint(ctx, r.principal(), tenantID, dl.EndpointID)
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		tr := h.tr(r.Request)
		d := confirmData{Heading: tr.T("retry_title"), Question: tr.T("confirm_retry"),
			Facts: []fact{{tr.T("url"), ep.URL}, {tr.T("event_type"), dl.EventType}, {tr.T("event"), dl.EventID},
				{tr.T("format"), string(ep.Format)}},
			Action: base + "/retry", Button: tr.T("retry_now"), Cancel: base}
		if req := h.renderRequest(r, dl); req != nil {
			d.Body = req.Body
		}
		h.renderConfirm(w, r, d)
		return
	}
	if _, err := h.svc.RetryDelivery(ctx, r.principal(), tenantID, id); err != nil {
		h.failErr(w, r, err)
		return
	}
	redirect(w, r.Request, base, "retry_queued")
}

// maxReplayCount bounds the count a replay's confirmation shows ("5000+").
const maxReplayCount = 10 * aviso.MaxLimit

// replay shows how many of the endpoint's deliveries since a time a replay queues again, then
// queues them.
func (h *Handler) replay(w http.ResponseWriter, r *request) {
	ctx, tenantID, id := r.Context(), r.PathValue("tenant"), r.PathValue("endpoint")
	sinceText := r.FormValue("since")
	if sinceText == "" {
		sinceText = sinceValue(h.now().Add(-24 * time.Hour))
	}
	status := r.FormValue("status")
	if status != "all" {
		status = "failed"
	}
	since, err := time.Parse(sinceLayout, sinceText)
	if err != nil {
		h.failErr(w, r, aviso.Invalid("since", "must be a date and time"))
		return
	}
	if r.Method != http.MethodPost || !confirmed(r) {
		ep, err := h.svc.GetEndpoint(ctx, r.principal(), tenantID, id)
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		n, more, err := h.countReplay(ctx, ep, since, status == "all")
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		tr := h.tr(r.Request)
		count := strconv.Itoa(n)
		if more {
			count += "+"
		}
		which := tr.T("replay_failed")
		if status == "all" {
			which = tr.T("replay_all")
		}
		h.renderConfirm(w, r, confirmData{Heading: tr.T("replay_title"),
			Question: fmt.Sprintf(tr.T("confirm_replay"), count),
			Facts: []fact{{tr.T("url"), ep.URL}, {tr.T("since"), fmtTime(since)}, {tr.T("status"), which},
				{tr.T("deliveries_count"), count}},
			Action: "/ui/t/" + tenantID + "/endpoints/" + id + "/replay", Fields: []fact{{"since", sinceText}, {"status", status}},
			Button: tr.T("replay"), Cancel: "/ui/t/" + tenantID + "/endpoints/" + id})
		return
	}
	if _, err := h.svc.Replay(ctx, r.principal(), tenantID, id,
		service.ReplayInput{Since: since.Format(time.RFC3339), Status: status}); err != nil {
		h.failErr(w, r, err)
		return
	}
	redirect(w, r.Request, "/ui/t/"+tenantID+"/deliveries?endpoint="+url.QueryEscape(id), "replayed")
}

// countReplay counts (up to maxReplayCount) the deliveries a replay of ep since since queues.
func (h *Handler) countReplay(ctx context.Context, ep *aviso.Endpoint, since time.Time, all bool) (int, bool, error) {
	statuses := []aviso.DeliveryStatus{aviso.StatusFailed}
	if all {
		statuses = append(statuses, aviso.StatusSucceeded)
	}
	n := 0
	for _, st := range statuses {
		lp := aviso.ListDeliveriesParams{ListParams: aviso.ListParams{Limit: aviso.MaxLimit}, TenantID: ep.TenantID,
			EndpointID: ep.ID, Status: st, Since: since}
		for {
			page, err := h.store.ListDeliveries(ctx, lp)
			if err != nil {
				return 0, false, fmt.Errorf("count replay: %w", err)
			}
			n += len(page.Data)
			if n >= maxReplayCount {
				return n, true, nil
			}
			if !page.HasMore {
				break
			}
			lp.After = page.NextCursor
		}
	}
	return n, false, nil
}
