package postgres

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
)

// TestReleaseOwnedPlan: a node giving back its leases at start reads its own leased deliveries
// through deliveries_lease_owner_idx, not every pending delivery of the table.
func TestReleaseOwnedPlan(t *testing.T) {
	url, schema := testenv.PostgresSchema(t, "aviso_releaseplan_")
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
	ep := &aviso.Endpoint{ID: "ep_1", TenantID: "acme", URL: "https://example.com/hook", Format: aviso.FormatStandard,
		TimeoutSeconds: 5, Secrets: []aviso.Secret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	// 3,000 pending deliveries, of which the node holds 20.
	batch := make([]aviso.NewEvent, 3000)
	for i := range batch {
		ev := &aviso.Event{ID: fmt.Sprintf("e%d", i), TenantID: "acme", Type: "invoice.created", Data: []byte(`{}`), CreatedAt: now}
		due := now.Add(time.Duration(i) * time.Second) // the first 20 are due now or earlier
		if i >= 20 {
			due = now.Add(time.Hour + time.Duration(i)*time.Second)
		}
		batch[i] = aviso.NewEvent{Event: ev, Deliveries: []*aviso.Delivery{{ID: fmt.Sprintf("d%d", i), TenantID: "acme",
			EventID: ev.ID, EndpointID: ep.ID, EventType: ev.Type, Status: aviso.StatusPending, NextAttemptAt: &due,
			CreatedAt: now, UpdatedAt: now}}}
	}
	if _, err := s.InsertEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimDeliveries(ctx, aviso.ClaimParams{Now: now.Add(time.Minute), Limit: 100, Owner: "node-a",
		LeaseUntil: now.Add(time.Hour)})
	if err != nil || len(claimed) != 20 {
		t.Fatalf("claimed %d (%v), want 20", len(claimed), err)
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE deliveries"); err != nil {
		t.Fatal(err)
	}
	if text := explain(t, s.pool, "EXPLAIN (COSTS OFF) "+releaseOwnedSQL, "node-a"); !strings.Contains(text, "deliveries_lease_owner_idx") || strings.Contains(text, "Seq Scan") {
		t.Errorf("the give-back does not read deliveries_lease_owner_idx:\n%s", text)
	}
	if n, err := s.ReleaseOwned(ctx, "node-a"); err != nil || n != 20 {
		t.Errorf("ReleaseOwned = %d, %v; want 20", n, err)
	}
}
