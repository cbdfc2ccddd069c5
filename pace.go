package aviso

import "time"

// SendReservation asks for send slots for one rate-limited endpoint (Store.ReserveSends).
type SendReservation struct {
	EndpointID string
	Now        time.Time
	// Interval is the time between two slots: one over the rate the endpoint is sent at. More
	// than 0.
	Interval time.Duration
	// Burst is how many slots may fall at Now after a quiet spell, at least 1: the pacing state
	// may lag Now by (Burst-1)·Interval and no more.
	Burst int
	// Count is how many slots are wanted.
	Count int
	// Horizon bounds how far ahead slots are handed out: none later than Now+Horizon.
	Horizon time.Duration
	// NotBefore, when set, is the earliest a slot may be (the receiver asked to wait: a
	// Retry-After); it holds for every node reserving after.
	NotBefore time.Time
}

// SendGrant is what a reservation got: Count slots at First, First+Interval, First+2·Interval, …
// (the first may be before Now: burst credit, usable at once). With Count 0, Next says when a
// reservation could get one: at Next-Horizon.
type SendGrant struct {
	First time.Time
	Count int
	Next  time.Time // the earliest the endpoint's next slot may be
}

// ReserveSlots is the pacing rule both stores apply (the generic cell rate algorithm): an
// endpoint's pacing state is one time, next, the earliest its next slot may be. A reservation
// starts at the latest of next, Now-(Burst-1)·Interval and NotBefore, takes up to Count slots
// Interval apart that fall within Now+Horizon, and moves next past them. Slots never overlap
// and follow each other at least one Interval apart, whoever reserved them, so in any window of
// length W at most W/Interval + Burst slots fall. It returns the grant and the new state.
func ReserveSlots(next time.Time, r SendReservation) (SendGrant, time.Time) {
	base := r.Now.Add(-time.Duration(max(r.Burst, 1)-1) * r.Interval)
	if next.After(base) {
		base = next
	}
	if r.NotBefore.After(base) {
		base = r.NotBefore
	}
	last := r.Now.Add(r.Horizon)
	if r.Count <= 0 || r.Interval <= 0 || base.After(last) {
		return SendGrant{Next: base}, base
	}
	n := min(r.Count, int(last.Sub(base)/r.Interval)+1)
	next = base.Add(time.Duration(n) * r.Interval)
	return SendGrant{First: base, Count: n, Next: next}, next
}
