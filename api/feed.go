package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// The events feed over HTTP: pull instead of push (see aviso's feed.go for what makes it
// resumable).
//
//	GET /v1/tenants/{tenant}/events?after=&limit=&types=a,b&since=&external_reference=&wait=
//
// answers {"data":[events in feed order],"next_cursor":"…","has_more":bool}. next_cursor is never
// empty: on the last page it is the end of the feed, and a call with it answers only what was
// published since (an empty data when nothing was). A consumer stores it and never misses or
// repeats an event. since=<RFC 3339> starts the feed at a time; wait=<duration up to 30s> waits
// for an event when there is none after the cursor (long-poll) and answers an empty page when
// the wait ends. type= (one type) is kept as a synonym of types=.
//
//	GET /v1/tenants/{tenant}/events/stream?after=&types=&since=&external_reference=
//
// is the same feed as Server-Sent Events: each event is a message with "id: <cursor>",
// "event: <type>" and "data: <the event JSON as GET …/events/{id} returns it>"; a reconnect with
// the header Last-Event-ID (what EventSource sends) resumes exactly after it. Without after,
// Last-Event-ID or since the stream starts at the end of the feed: only events published from now
// on. A line "id: <cursor>" alone marks where the stream starts and moves the cursor past events
// the filters skipped (EventSource keeps it for the reconnect and dispatches nothing); a comment
// line ": keep-alive" every 15 s keeps proxies from closing an idle stream. The stream ends, and
// the client reconnects, when the server shuts down.

// DefaultStreamKeepAlive is how often an idle event stream gets a comment line.
const DefaultStreamKeepAlive = 15 * time.Second

// feedQuery reads the feed's query parameters; Last-Event-ID, when sent, is the cursor.
func feedQuery(r *http.Request) (service.FeedQuery, bool, error) {
	q := r.URL.Query()
	var fq service.FeedQuery
	given := false // a start was given: after, Last-Event-ID or since
	var err error
	if s := q.Get("after"); s != "" {
		if fq.After, err = aviso.ParseFeedCursor("after", s); err != nil {
			return fq, false, err
		}
		given = true
	}
	if s := r.Header.Get("Last-Event-ID"); s != "" {
		if fq.After, err = aviso.ParseFeedCursor("Last-Event-ID", s); err != nil {
			return fq, false, err
		}
		given = true
	}
	if s := q.Get("since"); s != "" {
		if fq.Since, err = time.Parse(time.RFC3339, s); err != nil {
			return fq, false, aviso.Invalid("since", "must be an RFC 3339 time such as \"2026-03-04T10:00:00Z\"")
		}
		given = true
	}
	for _, name := range []string{"types", "type"} {
		for _, t := range strings.Split(q.Get(name), ",") {
			if t = strings.TrimSpace(t); t != "" {
				fq.Types = append(fq.Types, t)
			}
		}
	}
	fq.ExternalReference = q.Get("external_reference")
	lp, err := listParams(r)
	if err != nil {
		return fq, false, err
	}
	fq.Limit = lp.Limit
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if n, nerr := strconv.Atoi(s); nerr == nil { // plain seconds
			d, err = time.Duration(n)*time.Second, nil
		}
		if err != nil || d < 0 || d > service.MaxFeedWait {
			return fq, false, aviso.Invalid("wait", "must be a duration from 0s to %s, such as \"25s\"", service.MaxFeedWait)
		}
		fq.Wait = d
	}
	return fq, given, nil
}

// feedPage is the JSON of a feed read.
type feedPage struct {
	Data       []*aviso.Event `json:"data"`
	NextCursor string         `json:"next_cursor"`
	HasMore    bool           `json:"has_more"`
}

// closing returns a context that ends with the request or when the server begins to shut down,
// whichever is first, so that long-polls and streams do not hold a shutdown up.
func (a *api) closing(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(a.shutdown, cancel)
	return ctx, func() { stop(); cancel() }
}

func (a *api) listEvents(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	fq, _, err := feedQuery(r)
	if err != nil {
		return err
	}
	ctx, cancel := a.closing(r)
	defer cancel()
	page, err := a.svc.Feed(ctx, p, r.PathValue("tenant"), fq)
	if err != nil {
		return err
	}
	out := feedPage{Data: make([]*aviso.Event, len(page.Items)), NextCursor: page.Next.String(), HasMore: page.HasMore}
	for i, it := range page.Items {
		out.Data[i] = it.Event
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *api) streamEvents(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	fq, given, err := feedQuery(r)
	if err != nil {
		return err
	}
	fq.End, fq.Wait, fq.Limit = !given, 0, aviso.MaxLimit
	tenant := r.PathValue("tenant")
	ctx, cancel := a.closing(r)
	defer cancel()
	page, err := a.svc.Feed(ctx, p, tenant, fq) // checks the key, tenant and types before the stream starts
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	// The server's read and write timeouts are for requests, not for a stream that lasts hours.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)           // as writeJSON
	buf.WriteString("retry: 1000\n\n") // reconnect after a second
	sent, idle := "", true             // idle: the first page is not a wait that ended
	fq.End, fq.Wait = false, min(a.keepAlive, service.MaxFeedWait)
	for {
		for _, it := range page.Items {
			id := it.Cursor.String()
			buf.WriteString("id: " + id + "\nevent: " + it.Event.Type + "\ndata: ")
			n := buf.Len()
			if err := enc.Encode(it.Event); err != nil {
				a.log.ErrorContext(ctx, "event stream: encode event", "event_id", it.Event.ID, "error", err)
				return nil
			}
			buf.Truncate(buf.Len() - 1) // the encoder's newline
			if bytes.IndexByte(buf.Bytes()[n:], '\n') >= 0 {
				a.log.ErrorContext(ctx, "event stream: event JSON holds a newline", "event_id", it.Event.ID)
				return nil
			}
			buf.WriteString("\n\n")
			sent = id
		}
		if next := page.Next.String(); next != sent {
			buf.WriteString("id: " + next + "\n\n")
			sent = next
		}
		if len(page.Items) == 0 && !page.HasMore && !idle {
			buf.WriteString(": keep-alive\n\n") // the wait ended without an event
		}
		idle = false
		if _, err := w.Write(buf.Bytes()); err != nil {
			return nil // the client went away
		}
		buf.Reset()
		if err := rc.Flush(); err != nil {
			return nil
		}
		fq.After = page.Next
		wait := fq.Wait
		if page.HasMore {
			fq.Wait = 0
		}
		page, err = a.svc.Feed(ctx, p, tenant, fq)
		fq.Wait = wait
		if ctx.Err() != nil {
			return nil // the client left, or the server is shutting down: the client reconnects
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				a.log.WarnContext(ctx, "event stream ended", "tenant_id", tenant, "error", err)
			}
			return nil
		}
	}
}

// listDeliveries answers GET /v1/tenants/{tenant}/deliveries?status=&endpoint_id=&type=&external_reference=&after=&limit=:
// the tenant's deliveries, oldest first, each filter optional.
func (a *api) listDeliveries(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	lp, err := listParams(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := a.svc.ListDeliveries(r.Context(), p, r.PathValue("tenant"), service.DeliveryFilter{
		ListParams: lp, EndpointID: q.Get("endpoint_id"), Status: aviso.DeliveryStatus(q.Get("status")),
		EventType: q.Get("type"), ExternalReference: q.Get("external_reference")})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// whoami answers GET /v1/key: the calling key, {"id","tenant_id","root"}, so that a tool given
// only a key (aviso listen, aviso trigger) learns its tenant.
func (a *api) whoami(w http.ResponseWriter, r *http.Request, p aviso.Principal) error {
	writeJSON(w, http.StatusOK, map[string]any{"id": p.KeyID, "tenant_id": p.TenantID, "root": p.IsRoot()})
	return nil
}
