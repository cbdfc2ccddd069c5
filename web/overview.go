package web

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// overview is an endpoint's recent health, the top of its page: attempts over the chosen window
// (chart, success rate, latency), the failure streak against the disable rule, the last attempt's
// outcome in words, and the newest deliveries.
type overview struct {
	Window      window
	Windows     []window
	Chart       chart
	Rate        string
	Latency     aviso.Latency
	LastAttempt *relTime
	LastOutcome string // the last attempt's outcome in words
	LastError   string // and its recorded error, "" when it succeeded
	Streak      int
	Rule        aviso.DisablePolicy // the disable rule the endpoint follows
	DisabledAt  *relTime            // when it was disabled, as far as the data tells
	Slowed      *slowed             // nil unless this node's engine is slowing it (429/503)
	Recent      []logRow
}

// slowed is how the engine of this node is slowing an endpoint whose receiver answered 429 or
// 503 (dispatch.Dispatcher.Slowed).
type slowed struct {
	Status int
	Rate   string // deliveries per second it is sent at now
	Limit  int    // its rate_limit; 0: none
	Since  relTime
}

// recentDeliveries is how many deliveries the endpoint page lists.
const recentDeliveries = 8

// loadOverview gathers an endpoint's overview. The caller has read ep through the service, so
// the principal may see its tenant; these store reads are that tenant's own.
func (h *Handler) loadOverview(ctx context.Context, tr translator, ep *aviso.Endpoint, windowName string) (*overview, error) {
	w := windowNamed(windowName)
	now := h.now()
	since, until := w.bounds(now)
	o := &overview{Window: w, Windows: chartWindows[:], Streak: ep.ConsecutiveFailures,
		Rule: h.svc.DisablePolicy(ep)}
	buckets, err := h.store.AttemptHistogram(ctx, aviso.HistogramParams{TenantID: ep.TenantID, EndpointID: ep.ID,
		Since: since, Until: until, Bucket: w.Bucket})
	if err != nil {
		return nil, fmt.Errorf("attempt histogram: %w", err)
	}
	o.Chart = newChart("chart-endpoint", w, buckets)
	o.Rate = rate(aviso.EndpointStats{Succeeded: o.Chart.Succeeded, Failed: o.Chart.Failed})
	if o.Latency, err = h.store.AttemptLatency(ctx, aviso.LatencyParams{TenantID: ep.TenantID, EndpointID: ep.ID,
		Since: since, Until: until}); err != nil {
		return nil, fmt.Errorf("attempt latency: %w", err)
	}
	stats, err := h.store.EndpointStats(ctx, ep.TenantID, since)
	if err != nil {
		return nil, fmt.Errorf("endpoint stats: %w", err)
	}
	if st, ok := stats[ep.ID]; ok && st.LastAttemptAt != nil {
		r := tr.rel(now, *st.LastAttemptAt)
		o.LastAttempt = &r
		o.LastOutcome = tr.outcome(st.LastResponseStatus, st.LastError)
		if st.LastResponseStatus < 200 || st.LastResponseStatus > 299 {
			o.LastError = st.LastError
		}
	}
	if ep.Disabled {
		// A disabling by failures came with the attempt that failed last; one by hand is the
		// endpoint's last change.
		at := ep.UpdatedAt
		if ep.DisabledReason == aviso.DisabledConsecutiveFailed && o.LastAttempt != nil {
			at = *stats[ep.ID].LastAttemptAt
		}
		r := tr.rel(now, at)
		o.DisabledAt = &r
	}
	if h.slowed != nil && !ep.Disabled {
		if p, ok := h.slowed(ep.ID); ok {
			o.Slowed = &slowed{Status: p.Status, Rate: strconv.FormatFloat(p.Rate, 'f', 1, 64), Limit: p.Limit,
				Since: tr.rel(now, p.Since)}
		}
	}
	page, err := h.store.ListDeliveries(ctx, aviso.ListDeliveriesParams{ListParams: aviso.ListParams{Limit: recentDeliveries},
		TenantID: ep.TenantID, EndpointID: ep.ID, Desc: true})
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	if o.Recent, err = h.logRows(ctx, tr, ep.TenantID, page.Data, map[string]*aviso.Endpoint{ep.ID: ep}); err != nil {
		return nil, err
	}
	return o, nil
}

// logRow is a delivery as the log and the endpoint page list it.
type logRow struct {
	D        *aviso.Delivery
	Endpoint *aviso.Endpoint // nil when deleted meanwhile
	Ref      string          // the event's external reference
	Test     bool            // a test event (SendTest)
	Outcome  string          // the last attempt's outcome in words, or why it was not sent
	Error    string          // the recorded error behind Outcome
	Created  relTime
	Next     *relTime // the next attempt of a pending delivery
}

// references returns the external references of the deliveries' events by event ID, read in
// one call (a page of deliveries has at most aviso.MaxLimit events). An event pruned meanwhile,
// or a test send's, has none.
func (h *Handler) references(ctx context.Context, tenantID string, ds []*aviso.Delivery) (map[string]string, error) {
	ids := make([]string, 0, len(ds))
	for _, d := range ds {
		ids = append(ids, d.EventID)
	}
	slices.Sort(ids)
	refs := make(map[string]string, len(ids))
	for chunk := range slices.Chunk(slices.Compact(ids), aviso.MaxLimit) {
		page, err := h.store.ListEvents(ctx, aviso.ListEventsParams{TenantID: tenantID, IDs: chunk,
			ListParams: aviso.ListParams{Limit: len(chunk)}})
		if err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		for _, ev := range page.Data {
			refs[ev.ID] = ev.ExternalReference
		}
	}
	return refs, nil
}

// logRows decorates a page of deliveries of one tenant: their events' external references, the
// endpoints, and for a delivery failed by its endpoint's disabling after attempts, the error of
// its last attempt (the cause) rather than "endpoint disabled". Reads are bounded by the page.
func (h *Handler) logRows(ctx context.Context, tr translator, tenantID string, ds []*aviso.Delivery, eps map[string]*aviso.Endpoint) ([]logRow, error) {
	now := h.now()
	refs, err := h.references(ctx, tenantID, ds)
	if err != nil {
		return nil, err
	}
	rows := make([]logRow, 0, len(ds))
	for _, d := range ds {
		row := logRow{D: d, Endpoint: eps[d.EndpointID], Test: strings.HasPrefix(d.EventID, service.TestEventPrefix),
			Created: tr.rel(now, d.CreatedAt), Error: d.LastError, Ref: refs[d.EventID]}
		if d.NextAttemptAt != nil && d.Status == aviso.StatusPending {
			r := tr.rel(now, *d.NextAttemptAt)
			row.Next = &r
		}
		status, recorded := d.LastResponseStatus, d.LastError
		if d.Status == aviso.StatusFailed && problemKey(recorded) == "problem_disabled" && d.AttemptCount > 0 {
			full, err := h.store.GetDelivery(ctx, tenantID, d.ID)
			if err != nil && aviso.ErrorCode(err) != aviso.ENOTFOUND {
				return nil, fmt.Errorf("get delivery: %w", err)
			}
			if err == nil && len(full.Attempts) > 0 {
				last := full.Attempts[len(full.Attempts)-1]
				status, recorded = last.ResponseStatus, last.Error
				row.Error = recorded
			}
		}
		switch {
		case d.AttemptCount == 0 && d.Status == aviso.StatusPending:
			row.Outcome = tr.T("outcome_waiting")
		case d.AttemptCount == 0:
			row.Outcome = tr.outcome(0, recorded)
		default:
			row.Outcome = tr.outcome(status, recorded)
		}
		if status != 0 && (status < 200 || status > 299) && recorded == "" {
			row.Error = ""
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// since formats a time for a datetime-local input (UTC).
func sinceValue(t time.Time) string { return t.UTC().Format(sinceLayout) }
