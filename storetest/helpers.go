package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// Base is the instant the suite's fixtures are built around: a fixed time, with a millisecond
// fraction and in a non-UTC zone, so that a store that drops precision below the millisecond or
// returns times in another zone is caught.
func Base() time.Time {
	return time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.FixedZone("ART", -3*3600))
}

// NewTenant creates and returns a tenant with a fresh ID.
func NewTenant(tb testing.TB, s aviso.Store) *aviso.Tenant {
	tb.Helper()
	id := aviso.NewID(aviso.PrefixTenant, time.Now())
	t := &aviso.Tenant{ID: id, Name: "Tenant " + id, Metadata: map[string]string{"plan": "pro"},
		CreatedAt: Base(), UpdatedAt: Base()}
	if err := s.CreateTenant(tb.Context(), t); err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	return t
}

// NewEndpoint creates and returns an enabled endpoint of the tenant subscribed to every event type.
func NewEndpoint(tb testing.TB, s aviso.Store, tenantID string) *aviso.Endpoint {
	tb.Helper()
	e := &aviso.Endpoint{
		ID:             aviso.NewID(aviso.PrefixEndpoint, time.Now()),
		TenantID:       tenantID,
		URL:            "https://example.com/hooks",
		Format:         aviso.FormatStandard,
		TimeoutSeconds: aviso.DefaultTimeoutSeconds,
		Secrets:        []aviso.Secret{{Value: "whsec_c2VjcmV0"}},
		CreatedAt:      Base(),
		UpdatedAt:      Base(),
	}
	if err := s.CreateEndpoint(tb.Context(), e); err != nil {
		tb.Fatalf("create endpoint: %v", err)
	}
	return e
}

// NewEvent returns an event of type typ for the tenant created at, and one pending delivery to
// each endpoint due at at. Nothing is stored: pass the result to InsertEvents.
func NewEvent(tenantID, typ string, at time.Time, endpoints ...*aviso.Endpoint) aviso.NewEvent {
	ev := &aviso.Event{
		ID:        aviso.NewID(aviso.PrefixEvent, at),
		TenantID:  tenantID,
		Type:      typ,
		Data:      json.RawMessage(`{"invoice":{"number":"FV-1","total":1190.5}}`),
		CreatedAt: at,
		// The publish's origin, which the stores keep and return with the event.
		RequestID:   "req_" + aviso.NewID("", at),
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
	}
	ne := aviso.NewEvent{Event: ev}
	for _, e := range endpoints {
		due := at
		ne.Deliveries = append(ne.Deliveries, &aviso.Delivery{
			ID:            aviso.NewID(aviso.PrefixDelivery, at),
			TenantID:      tenantID,
			EventID:       ev.ID,
			EndpointID:    e.ID,
			EventType:     typ,
			Status:        aviso.StatusPending,
			NextAttemptAt: &due,
			CreatedAt:     at,
			UpdatedAt:     at,
		})
	}
	return ne
}

// Publish stores an event of type "invoice.created" created (and due) at at, with one delivery to
// each endpoint, and returns the event and its deliveries.
func Publish(tb testing.TB, s aviso.Store, tenantID string, at time.Time, endpoints ...*aviso.Endpoint) (*aviso.Event, []*aviso.Delivery) {
	tb.Helper()
	ne := NewEvent(tenantID, "invoice.created", at, endpoints...)
	res, err := s.InsertEvents(tb.Context(), []aviso.NewEvent{ne})
	if err != nil {
		tb.Fatalf("insert events: %v", err)
	}
	if len(res) != 1 || !res[0].Created {
		tb.Fatalf("insert events: got %+v, want one created event", res)
	}
	return ne.Event, ne.Deliveries
}

// Claim claims up to limit deliveries due at now for owner, leased for a minute.
func Claim(tb testing.TB, s aviso.Store, owner string, now time.Time, limit int) []*aviso.Claim {
	tb.Helper()
	cs, err := s.ClaimDeliveries(tb.Context(), aviso.ClaimParams{Now: now, Limit: limit, Owner: owner,
		LeaseUntil: now.Add(time.Minute)})
	if err != nil {
		tb.Fatalf("claim deliveries: %v", err)
	}
	return cs
}

// Completion returns the completion of one attempt on d made at at with HTTP status code (0 for
// a network error), recorded by owner. A 2xx succeeds the delivery; anything else leaves it
// pending with its next attempt a minute later, unless final is true, which fails it.
func Completion(d *aviso.Delivery, owner string, at time.Time, code int, final bool) aviso.Completion {
	a := &aviso.Attempt{
		ID:             aviso.NewID(aviso.PrefixAttempt, at),
		DeliveryID:     d.ID,
		TenantID:       d.TenantID,
		EndpointID:     d.EndpointID,
		EventID:        d.EventID,
		At:             at,
		URL:            "https://example.com/hooks",
		RequestHeaders: map[string]string{"Webhook-Id": d.EventID, "Content-Type": "application/json"},
		ResponseStatus: code,
		ResponseBody:   fmt.Sprintf("status %d", code),
		DurationMS:     42,
	}
	c := aviso.Completion{Attempt: a, Owner: owner}
	switch {
	case a.Succeeded():
		c.Status = aviso.StatusSucceeded
	case final:
		c.Status = aviso.StatusFailed
	default:
		c.Status = aviso.StatusPending
		next := at.Add(time.Minute)
		c.NextAttemptAt = &next
	}
	if code == 0 {
		a.Error = "dial tcp: connection refused"
	}
	return c
}

// Complete records completions and fails the test on error.
func Complete(tb testing.TB, s aviso.Store, cs ...aviso.Completion) {
	tb.Helper()
	if _, err := s.CompleteDeliveries(tb.Context(), cs); err != nil {
		tb.Fatalf("complete deliveries: %v", err)
	}
}

// mustGetDelivery returns a delivery or fails the test.
func mustGetDelivery(tb testing.TB, s aviso.Store, tenantID, id string) *aviso.Delivery {
	tb.Helper()
	d, err := s.GetDelivery(tb.Context(), tenantID, id)
	if err != nil {
		tb.Fatalf("get delivery %s: %v", id, err)
	}
	return d
}

// mustGetEndpoint returns an endpoint or fails the test.
func mustGetEndpoint(tb testing.TB, s aviso.Store, tenantID, id string) *aviso.Endpoint {
	tb.Helper()
	e, err := s.GetEndpoint(tb.Context(), tenantID, id)
	if err != nil {
		tb.Fatalf("get endpoint %s: %v", id, err)
	}
	return e
}

// wantCode fails the test unless err carries the aviso error code want.
func wantCode(tb testing.TB, what string, err error, want string) {
	tb.Helper()
	if got := aviso.ErrorCode(err); got != want {
		tb.Errorf("%s: error code %q (%v), want %q", what, got, err, want)
	}
}

// ms is how times are compared: the stores keep at least millisecond precision.
func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

func msPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := ms(*t)
	return &v
}

// checkUTC fails the test when a time the store returned is not in UTC.
func checkUTC(tb testing.TB, what string, t time.Time) {
	tb.Helper()
	if t.Location() != time.UTC {
		tb.Errorf("%s: location %v, want UTC", what, t.Location())
	}
}

// sameJSON reports whether a and b hold the same JSON value (a store may reformat JSON), treating
// empty as equal to empty.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return reflect.DeepEqual(x, y)
}

func emptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func emptySlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// checkTenant compares a tenant the store returned with what was stored.
func checkTenant(tb testing.TB, got, want *aviso.Tenant) {
	tb.Helper()
	if got.Metadata == nil {
		tb.Errorf("tenant %s: nil Metadata, want a non-nil (possibly empty) map", want.ID)
	}
	checkUTC(tb, "tenant CreatedAt", got.CreatedAt)
	g, w := *got, *want
	g.CreatedAt, g.UpdatedAt = ms(g.CreatedAt), ms(g.UpdatedAt)
	w.CreatedAt, w.UpdatedAt = ms(w.CreatedAt), ms(w.UpdatedAt)
	w.Metadata = emptyMap(w.Metadata)
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("tenant:\n got %+v\nwant %+v", g, w)
	}
}

// checkEventType compares an event type the store returned with what was stored.
func checkEventType(tb testing.TB, got, want *aviso.EventType) {
	tb.Helper()
	if got.Descriptions == nil {
		tb.Errorf("event type %s: nil Descriptions, want a non-nil (possibly empty) map", want.Name)
	}
	if !sameJSON(got.Schema, want.Schema) {
		tb.Errorf("event type %s: Schema %s, want %s", want.Name, got.Schema, want.Schema)
	}
	if !sameJSON(got.Example, want.Example) {
		tb.Errorf("event type %s: Example %s, want %s", want.Name, got.Example, want.Example)
	}
	checkUTC(tb, "event type CreatedAt", got.CreatedAt)
	g, w := *got, *want
	g.Schema, g.Example, w.Schema, w.Example = nil, nil, nil, nil
	g.CreatedAt, g.UpdatedAt = ms(g.CreatedAt), ms(g.UpdatedAt)
	w.CreatedAt, w.UpdatedAt = ms(w.CreatedAt), ms(w.UpdatedAt)
	w.Descriptions = emptyMap(w.Descriptions)
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("event type:\n got %+v\nwant %+v", g, w)
	}
}

// normEndpoint is e with times at millisecond precision in UTC and nil maps and slices empty.
func normEndpoint(e *aviso.Endpoint) aviso.Endpoint {
	n := *e
	n.CreatedAt, n.UpdatedAt, n.VerifiedAt = ms(n.CreatedAt), ms(n.UpdatedAt), msPtr(n.VerifiedAt)
	n.EventTypes = emptySlice(n.EventTypes)
	n.Headers = emptyMap(n.Headers)
	n.RetrySchedule = emptySlice(n.RetrySchedule)
	n.Metadata = emptyMap(n.Metadata)
	n.SecretHeaders = emptyMap(n.SecretHeaders)
	n.Secrets = emptySlice(n.Secrets)
	secrets := make([]aviso.Secret, len(n.Secrets))
	for i, s := range n.Secrets {
		secrets[i] = aviso.Secret{Value: s.Value, ExpiresAt: msPtr(s.ExpiresAt)}
	}
	n.Secrets = secrets
	return n
}

// checkEndpoint compares an endpoint the store returned with what was stored.
func checkEndpoint(tb testing.TB, got, want *aviso.Endpoint) {
	tb.Helper()
	if got.EventTypes == nil || got.Headers == nil || got.RetrySchedule == nil || got.Metadata == nil || got.Secrets == nil {
		tb.Errorf("endpoint %s: a nil map or slice (EventTypes %v, Headers %v, RetrySchedule %v, Metadata %v, Secrets %v): want non-nil, possibly empty",
			want.ID, got.EventTypes == nil, got.Headers == nil, got.RetrySchedule == nil, got.Metadata == nil, got.Secrets == nil)
	}
	checkUTC(tb, "endpoint CreatedAt", got.CreatedAt)
	if got.VerifiedAt != nil {
		checkUTC(tb, "endpoint VerifiedAt", *got.VerifiedAt)
	}
	g, w := normEndpoint(got), normEndpoint(want)
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("endpoint:\n got %+v\nwant %+v", g, w)
	}
}

// checkEvent compares an event the store returned with what was stored.
func checkEvent(tb testing.TB, got, want *aviso.Event) {
	tb.Helper()
	if !sameJSON(got.Data, want.Data) {
		tb.Errorf("event %s: Data %s, want %s", want.ID, got.Data, want.Data)
	}
	checkUTC(tb, "event CreatedAt", got.CreatedAt)
	g, w := *got, *want
	g.Data, w.Data = nil, nil
	g.CreatedAt, w.CreatedAt = ms(g.CreatedAt), ms(w.CreatedAt)
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("event:\n got %+v\nwant %+v", g, w)
	}
}

// checkDelivery compares a delivery the store returned with what was stored, ignoring Attempts.
func checkDelivery(tb testing.TB, got, want *aviso.Delivery) {
	tb.Helper()
	checkUTC(tb, "delivery CreatedAt", got.CreatedAt)
	g, w := *got, *want
	g.Attempts, w.Attempts = nil, nil
	g.CreatedAt, g.UpdatedAt, g.NextAttemptAt = ms(g.CreatedAt), ms(g.UpdatedAt), msPtr(g.NextAttemptAt)
	w.CreatedAt, w.UpdatedAt, w.NextAttemptAt = ms(w.CreatedAt), ms(w.UpdatedAt), msPtr(w.NextAttemptAt)
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("delivery:\n got %+v\nwant %+v", g, w)
	}
}

// checkAttempt compares an attempt the store returned with what was recorded.
func checkAttempt(tb testing.TB, got, want *aviso.Attempt) {
	tb.Helper()
	if got.RequestHeaders == nil {
		tb.Errorf("attempt %s: nil RequestHeaders, want a non-nil (possibly empty) map", want.ID)
	}
	checkUTC(tb, "attempt At", got.At)
	g, w := *got, *want
	g.At, w.At = ms(g.At), ms(w.At)
	w.RequestHeaders = emptyMap(w.RequestHeaders)
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("attempt:\n got %+v\nwant %+v", g, w)
	}
}

// walk lists every page through list with the given page size and returns the items in order,
// failing the test on an error, a cursor loop, an oversized page or a bad HasMore.
func walk[T any](tb testing.TB, size int, list func(after string, limit int) (*aviso.Page[T], error)) []T {
	tb.Helper()
	var all []T
	after := ""
	seen := map[string]bool{}
	for i := 0; ; i++ {
		if i > 1000 {
			tb.Fatalf("pagination did not end after 1000 pages")
		}
		p, err := list(after, size)
		if err != nil {
			tb.Fatalf("list page %d: %v", i, err)
		}
		if len(p.Data) > size {
			tb.Fatalf("page %d: %d items, more than the limit %d", i, len(p.Data), size)
		}
		if p.Data == nil {
			tb.Errorf("page %d: nil Data, want a non-nil (possibly empty) slice", i)
		}
		all = append(all, p.Data...)
		if !p.HasMore {
			return all
		}
		if len(p.Data) == 0 || p.NextCursor == "" {
			tb.Fatalf("page %d: HasMore with %d items and cursor %q", i, len(p.Data), p.NextCursor)
		}
		if seen[p.NextCursor] {
			tb.Fatalf("page %d: cursor %q returned twice", i, p.NextCursor)
		}
		seen[p.NextCursor] = true
		after = p.NextCursor
	}
}
