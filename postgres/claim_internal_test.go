package postgres

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
)

// TestClaimOthersPlan: a claim that leaves an endpoint out locks its candidates through the
// primary key and never reads deliveries_due_idx, which holds the left-out endpoint's backlog
// too; and NextDueAt walks deliveries_due_idx in order and stops at the first.
// Both whether the table has statistics or none (as before its first ANALYZE).
func TestClaimOthersPlan(t *testing.T) {
	url, schema := testenv.PostgresSchema(t, "aviso_claimothers_")
	s, err := Open(t.Context(), url, Options{Migrate: true, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	now := time.Now().UTC()
	if err := s.CreateTenant(ctx, &aviso.Tenant{ID: "acme", Name: "ACME", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	var eps []*aviso.Endpoint
	for _, id := range []string{"ep_healthy", "ep_limited"} {
		ep := &aviso.Endpoint{ID: id, TenantID: "acme", URL: "https://example.com/hook", Format: aviso.FormatStandard,
			TimeoutSeconds: 5, Secrets: []aviso.Secret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	// 3,000 events, each with a due delivery to both endpoints.
	batch := make([]aviso.NewEvent, 3000)
	for i := range batch {
		ev := &aviso.Event{ID: fmt.Sprintf("e%d", i), TenantID: "acme", Type: "invoice.created", Data: []byte(`{}`), CreatedAt: now}
		batch[i] = aviso.NewEvent{Event: ev}
		for _, ep := range eps {
			due := now.Add(time.Duration(i) * time.Millisecond)
			batch[i].Deliveries = append(batch[i].Deliveries, &aviso.Delivery{ID: fmt.Sprintf("d%d-%s", i, ep.ID), TenantID: "acme",
				EventID: ev.ID, EndpointID: ep.ID, EventType: ev.Type, Status: aviso.StatusPending, NextAttemptAt: &due,
				CreatedAt: now, UpdatedAt: now})
		}
	}
	if _, err := s.InsertEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	at := now.Add(time.Hour)
	for _, stats := range []string{"none", "analyzed"} {
		if stats == "analyzed" {
			if _, err := s.pool.Exec(ctx, "ANALYZE deliveries; ANALYZE endpoints"); err != nil {
				t.Fatal(err)
			}
		}
		if text := explain(t, s.pool, "EXPLAIN (COSTS OFF) "+nextDueSQL); !strings.Contains(text, "Limit") ||
			!strings.Contains(text, "deliveries_due_idx") || strings.Contains(text, "Bitmap") || strings.Contains(text, "Sort") {
			t.Errorf("statistics %s: NextDueAt does not stop at the first due delivery:\n%s", stats, text)
		}
		text := explain(t, s.pool, "EXPLAIN (COSTS OFF) "+claimOthersSQL, at, "node", at.Add(time.Minute), 256,
			[]string{"ep_limited"}, []int32{0})
		if strings.Contains(text, "deliveries_due_idx") || !strings.Contains(text, "deliveries_pkey") {
			t.Errorf("statistics %s: the claim leaving an endpoint out reads deliveries_due_idx or locks otherwise than by key:\n%s", stats, text)
		}
	}
	claimed, err := s.ClaimDeliveries(ctx, aviso.ClaimParams{Now: at, Limit: 256, Owner: "node", LeaseUntil: at.Add(time.Minute),
		Caps: map[string]int{"ep_limited": 0}})
	if err != nil || len(claimed) != 256 {
		t.Fatalf("claimed %d (%v), want 256", len(claimed), err)
	}
	for _, c := range claimed {
		if c.Delivery.EndpointID != "ep_healthy" {
			t.Fatalf("claimed %s of the endpoint left out", c.Delivery.ID)
		}
	}
}
