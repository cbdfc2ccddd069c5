package sqlite_test

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/storetest"
)

// WriterStats counts the groups the writer ran and the write calls in them, and the time it
// spent, committing included. Writes queued behind a held writer run as one group.
func TestWriterStats(t *testing.T) {
	s := testStore(t)
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	at := storetest.Base()

	before := s.WriterStats()
	if _, err := s.InsertEvents(t.Context(), []aviso.NewEvent{storetest.NewEvent(ten.ID, "invoice.created", at, ep)}); err != nil {
		t.Fatal(err)
	}
	one := s.WriterStats()
	if one.Groups != before.Groups+1 || one.Writes != before.Writes+1 {
		t.Errorf("one write: groups %d → %d, writes %d → %d; want one more of each",
			before.Groups, one.Groups, before.Writes, one.Writes)
	}
	if one.Commit <= before.Commit || one.Busy-before.Busy < one.Commit-before.Commit {
		t.Errorf("one write: busy +%v, commit +%v; want a commit time, within the busy time",
			one.Busy-before.Busy, one.Commit-before.Commit)
	}

	// Eight writes queued behind a held writer: the hold's group, then one group of eight.
	const n = 8
	errs := make([]error, n)
	writes := make([]func(), n)
	for i := range n {
		writes[i] = func() {
			ne := storetest.NewEvent(ten.ID, "invoice.created", at.Add(time.Duration(i+1)*time.Second), ep)
			_, errs[i] = s.InsertEvents(t.Context(), []aviso.NewEvent{ne})
		}
	}
	runQueued(s, writes...)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	after := s.WriterStats()
	if groups, writes := after.Groups-one.Groups, after.Writes-one.Writes; groups != 2 || writes != n+1 {
		t.Errorf("%d queued writes: %d groups, %d writes; want 2 groups (the hold, then the queue) and %d writes", n, groups, writes, n+1)
	}
	if after.Busy <= one.Busy || after.Commit <= one.Commit || after.Busy < after.Commit {
		t.Errorf("busy %v → %v, commit %v → %v; want both to grow, commit within busy", one.Busy, after.Busy, one.Commit, after.Commit)
	}
}
