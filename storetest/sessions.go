package storetest

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// testSessions: a revoked id reads as revoked until its expiry, others never; a second revocation
// keeps the later expiry; revoking prunes expired records.
func testSessions(t *testing.T, s aviso.Store) {
	ctx, now := t.Context(), Base()
	revoked := func(at time.Time, ids ...string) bool {
		t.Helper()
		ok, err := s.SessionRevoked(ctx, at, ids...)
		if err != nil {
			t.Fatalf("session revoked %v: %v", ids, err)
		}
		return ok
	}
	if revoked(now, "s1") || revoked(now) {
		t.Fatal("nothing revoked yet, but an id reads as revoked")
	}
	if err := s.RevokeSession(ctx, "s1", now.Add(time.Hour), now); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if !revoked(now, "s1") || !revoked(now, "other", "s1") {
		t.Error("s1 was revoked, SessionRevoked says no")
	}
	if revoked(now, "s2") || revoked(now, "other", "s2") {
		t.Error("s2 was never revoked, SessionRevoked says yes")
	}
	if revoked(now.Add(time.Hour), "s1") {
		t.Error("s1's record outlived its expiry")
	}
	// Revoking again with an earlier expiry keeps the later one.
	if err := s.RevokeSession(ctx, "s1", now.Add(time.Minute), now); err != nil {
		t.Fatalf("revoke again: %v", err)
	}
	if !revoked(now.Add(30*time.Minute), "s1") {
		t.Error("a second revocation with an earlier expiry shortened the first")
	}
	// Revoking at a later now prunes expired records; a fresh revocation still holds.
	if err := s.RevokeSession(ctx, "s3", now.Add(3*time.Hour), now.Add(2*time.Hour)); err != nil {
		t.Fatalf("revoke s3: %v", err)
	}
	if !revoked(now.Add(2*time.Hour), "s3") || revoked(now.Add(2*time.Hour), "s1") {
		t.Error("after pruning: s3 must read revoked and s1 not")
	}
	if revoked(now, "s1") {
		t.Error("s1's expired record was not deleted by the later revocation")
	}
}
