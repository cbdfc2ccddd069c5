package dispatch_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// TestResumeOwnLeases: a node that restarts under the same NodeID delivers at once what it held
// when it died, without waiting for the (here ten-minute) leases to run out; another node's
// leases stay where they are.
func TestResumeOwnLeases(t *testing.T) {
	t.Parallel()
	b := postgresBackend
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, nil)
	mine := newEndpoint(t, s, ten.ID, rc.srv.URL, nil)
	theirs := newEndpoint(t, s, ten.ID, rc.srv.URL, nil)
	publish(t, s, ten.ID, 10, time.Now(), mine)
	now := time.Now()
	// node-a claims first (mine only exist then), node-b then claims its own.
	for _, o := range []struct {
		owner string
		ep    *aviso.Endpoint
	}{{"node-a", mine}, {"node-b", theirs}} {
		owner := o.owner
		if owner == "node-b" {
			publish(t, s, ten.ID, 5, now, o.ep)
		}
		cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: 100, Owner: owner, LeaseUntil: now.Add(10 * time.Minute)})
		if err != nil || len(cs) == 0 {
			t.Fatalf("claim by %s: %d, %v", owner, len(cs), err)
		}
	}
	cfg := config(s)
	cfg.NodeID = "node-a"
	start(t, cfg)
	waitFor(t, "node-a's deliveries to succeed", func() bool {
		return countStatus(t, s, ten.ID, mine.ID, aviso.StatusSucceeded) == 10
	})
	if n := countStatus(t, s, ten.ID, theirs.ID, aviso.StatusPending); n != 5 {
		t.Errorf("node-b's deliveries: %d pending, want 5 (still leased to node-b)", n)
	}
}

// TestLeaseRenewedWhileAttempting: with a 3 s lease and an attempt that lasts longer, the lease
// is renewed while the attempt runs, so no other node may claim the delivery; the one attempt is
// the only request the receiver gets.
func TestLeaseRenewedWhileAttempting(t *testing.T) {
	t.Parallel()
	b := postgresBackend
	key := b.newKey(t)
	s := b.open(t, key)
	ten := newTenant(t, s)
	hold, open := gate(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { <-hold })
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.TimeoutSeconds = 30 })
	publish(t, s, ten.ID, 1, time.Now(), ep)
	cfg := config(s)
	cfg.Lease = dispatch.MinRenewedLease
	cfg.NodeID = "renewer"
	start(t, cfg, open)
	waitFor(t, "the attempt to start", func() bool { return len(rc.requests()) == 1 })

	conn, err := pgx.Connect(t.Context(), testenv.PostgresURL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(t.Context())
	leaseUntil := func() time.Time {
		var until time.Time
		if err := conn.QueryRow(t.Context(), "SELECT lease_until FROM "+pgx.Identifier{key}.Sanitize()+
			".deliveries WHERE lease_owner = 'renewer'").Scan(&until); err != nil {
			t.Fatalf("read the lease: %v", err)
		}
		return until
	}
	first := leaseUntil()
	waitFor(t, "the lease to be renewed past its first end", func() bool {
		return leaseUntil().After(first.Add(time.Second))
	})
	// Past the first lease's end, a rival claim finds nothing: the renewed lease holds.
	at := first.Add(100 * time.Millisecond)
	cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: at, Limit: 10, Owner: "rival", LeaseUntil: at.Add(time.Minute)})
	if err != nil || len(cs) != 0 {
		t.Fatalf("a rival claimed %d (%v) while the attempt ran; want 0", len(cs), err)
	}
	open()
	waitFor(t, "the delivery to succeed", func() bool {
		return countStatus(t, s, ten.ID, ep.ID, aviso.StatusSucceeded) == 1
	})
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

// TestRenewedLeaseBounds: on a store that renews leases a lease may be shorter than an attempt,
// down to MinRenewedLease.
func TestRenewedLeaseBounds(t *testing.T) {
	t.Parallel()
	b := postgresBackend
	s := b.open(t, b.newKey(t))
	for lease, ok := range map[time.Duration]bool{time.Second: false, dispatch.MinRenewedLease: true, 10 * time.Second: true} {
		cfg := config(s)
		cfg.Lease = lease
		if _, err := dispatch.New(cfg); (err == nil) != ok {
			t.Errorf("lease %s: New = %v, want ok %v", lease, err, ok)
		}
	}
}
