package postgres_test

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// TestRenewAndReleaseOwned: a renewed lease holds past its first end; a lease of a delivery
// completed meanwhile is not brought back; ReleaseOwned gives back what the owner held, and
// only that, at once.
func TestRenewAndReleaseOwned(t *testing.T) {
	t.Parallel()
	url, schema := testSchema(t)
	a, b := openSchema(t, url, schema), openSchema(t, url, schema)
	mustTenant(t, a, "acme")
	ep := mustEndpoint(t, a, "acme")
	ids := publish(t, a, "acme", 4, ep)
	ctx := t.Context()

	now := base.Add(time.Second)
	claim := func(s aviso.Store, owner string, at time.Time) []*aviso.Claim {
		t.Helper()
		cs, err := s.ClaimDeliveries(ctx, aviso.ClaimParams{Now: at, Limit: 10, Owner: owner, LeaseUntil: at.Add(10 * time.Second)})
		if err != nil {
			t.Fatalf("claim by %s: %v", owner, err)
		}
		return cs
	}
	if cs := claim(a, "a", now); len(cs) != len(ids) {
		t.Fatalf("a claimed %d, want %d", len(cs), len(ids))
	}
	// One completes (its lease ends with it) before the renewal names it.
	done := ids[0]
	if _, err := a.CompleteDeliveries(ctx, []aviso.Completion{{Attempt: &aviso.Attempt{ID: aviso.NewID(aviso.PrefixAttempt, now),
		DeliveryID: done, TenantID: "acme", EndpointID: ep.ID, At: now, URL: ep.URL, ResponseStatus: 500},
		Status: aviso.StatusPending, NextAttemptAt: &now, Owner: "a"}}); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if err := a.RenewLeases(ctx, "a", ids, now.Add(time.Minute)); err != nil {
		t.Fatalf("renew: %v", err)
	}
	// Past the first lease: only the completed one (due again, lease ended) is claimable.
	later := now.Add(30 * time.Second)
	if cs := claim(b, "b", later); len(cs) != 1 || cs[0].Delivery.ID != done {
		t.Fatalf("after renewal b claimed %v, want only %s", claimIDs(cs), done)
	}
	if n, err := b.ReleaseOwned(ctx, "nobody"); err != nil || n != 0 {
		t.Fatalf("ReleaseOwned(nobody) = %d, %v; want 0", n, err)
	}
	if n, err := a.ReleaseOwned(ctx, "a"); err != nil || n != len(ids)-1 {
		t.Fatalf("ReleaseOwned(a) = %d, %v; want %d", n, err, len(ids)-1)
	}
	if cs := claim(b, "b", later); len(cs) != len(ids)-1 {
		t.Fatalf("after a's release b claimed %d, want %d", len(cs), len(ids)-1)
	}
	// b's leases are b's: a renewal by a touches none of them.
	if err := a.RenewLeases(ctx, "a", ids, later.Add(time.Hour)); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if cs := claim(a, "a", later.Add(11*time.Second)); len(cs) != len(ids) {
		t.Fatalf("once b's leases ran out a claimed %d, want %d (a's renewal must not have extended b's)", len(cs), len(ids))
	}
}

func claimIDs(cs []*aviso.Claim) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.Delivery.ID
	}
	return ids
}
