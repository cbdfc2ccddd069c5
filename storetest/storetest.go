// Package storetest is the conformance suite every aviso.Store must pass, and a benchmark suite
// for the stores' hot paths. The suite, not the comment on aviso.Store, is the final word on
// semantics: a semantic change lands here first, then in sqlite/ and postgres/.
//
// Decisions the suite makes where aviso.Store's comment leaves room:
//   - a store persists the times it is given (CreatedAt, UpdatedAt, …): it never reads a clock,
//     so UpdateTenant, UpdateEventType and UpdateEndpoint store the UpdatedAt of their argument
//     and keep the stored CreatedAt;
//   - times come back in UTC, equal to what was stored at millisecond precision;
//   - maps and slices come back non-nil, possibly empty, whether they were stored nil or empty;
//     JSON (event data, schemas, examples) comes back as the same JSON value, possibly reformatted;
//   - list cursors are opaque; Page.Data is non-nil; HasMore is false on the last page;
//   - re-enabling an endpoint clears DisabledReason as well as ConsecutiveFailures;
//   - an attempt counts as succeeded in statistics when its ResponseStatus is 2xx, failed otherwise;
//   - ConsecutiveFailures is reset by a completion with Status succeeded and incremented by any
//     other; FailingSince is the time of the first failure since the last success (or enabling);
//   - EndpointStats may leave out endpoints without attempts since Since (a missing entry reads as
//     zero); LastAttemptAt is the newest attempt since Since;
//   - AttemptHistogram returns one bucket per Bucket from Since up to Until, the last one possibly
//     partial, and counts attempts with Since ≤ At < Until;
//   - RetryDelivery, ReplayDeliveries and ReleaseDeliveries clear the lease; a completion releases
//     the lease and sets the delivery's UpdatedAt to the attempt's time;
//   - Prune deletes the oldest events first;
//   - a revoked session's record is deleted by any later RevokeSession whose now is past its
//     expiry, so SessionRevoked at an earlier now no longer sees it.
package storetest

import (
	"testing"

	"github.com/aviso-dev/aviso"
)

// Exercise runs the conformance suite. open must return a fresh, empty, migrated store for each
// call, and close it when t ends (t.Cleanup); the subtests run in parallel.
func Exercise(t *testing.T, open func(t *testing.T) aviso.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s aviso.Store)
	}{
		{"Tenants", testTenants},
		{"APIKeys", testAPIKeys},
		{"EventTypes", testEventTypes},
		{"Endpoints", testEndpoints},
		{"EndpointScoping", testEndpointScoping},
		{"SetEndpointDisabled", testSetEndpointDisabled},
		{"InsertEvents", testInsertEvents},
		{"InsertEventsIdempotent", testInsertEventsIdempotent},
		{"InsertEventsUnknownTenant", testInsertEventsUnknownTenant},
		{"ListEvents", testListEvents},
		{"PageSizes", testPageSizes},
		{"ReadFeed", testReadFeed},
		{"ReadFeedConcurrent", testReadFeedConcurrent},
		{"EventsPublished", testEventsPublished},
		{"Deliveries", testDeliveries},
		{"ListDeliveries", testListDeliveries},
		{"DeliveryTimeWindows", testDeliveryTimeWindows},
		{"DeleteTenantCascades", testDeleteTenantCascades},
		{"DeleteEndpointCascades", testDeleteEndpointCascades},
		{"DeleteTenantAllAtOnce", testDeleteTenantAllAtOnce},
		{"DisableFailsAllAtOnce", testDisableFailsAllAtOnce},
		{"Claim", testClaim},
		{"ClaimExcluding", testClaimExcluding},
		{"ClaimCapped", testClaimCapped},
		{"ClaimLeases", testClaimLeases},
		{"ClaimConcurrent", testClaimConcurrent},
		{"ClaimAfterRemovals", testClaimAfterRemovals},
		{"Complete", testComplete},
		{"CompleteAutoDisable", testCompleteAutoDisable},
		{"CompleteAfterDisable", testCompleteAfterDisable},
		{"DisableRule", testDisableRule},
		{"MissedDeliveries", testMissedDeliveries},
		{"Ordering", testOrdering},
		{"OrderingConcurrent", testOrderingConcurrent},
		{"CompleteDeleted", testCompleteDeleted},
		{"CompleteUnclaimed", testCompleteUnclaimed},
		{"CompleteOtherEndpoint", testCompleteOtherEndpoint},
		{"RetryDelivery", testRetryDelivery},
		{"ReplayDeliveries", testReplayDeliveries},
		{"ReleaseDeliveries", testReleaseDeliveries},
		{"NextDueAt", testNextDueAt},
		{"Wakeups", testWakeups},
		{"ReserveSends", testReserveSends},
		{"EndpointStats", testEndpointStats},
		{"AttemptHistogram", testAttemptHistogram},
		{"QueueStats", testQueueStats},
		{"AttemptLatency", testAttemptLatency},
		{"Prune", testPrune},
		{"Sessions", testSessions},
		{"Ping", testPing},
		{"TextRoundTrip", testTextRoundTrip},
		{"ErrorMessages", testErrorMessages},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}
