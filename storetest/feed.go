package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// The events feed's cases (aviso's feed.go): a feed read returns events after its cursor in a
// stable order, Next is never before the cursor and, at the end, past every event read, so a
// consumer that stores it never misses or repeats an event, even while concurrent publishers
// commit out of order.

// ReadFeedAll reads the feed from p.After until it is at its end and holds nothing back
// (FeedPage.Pending), reading pages of p.Limit, and returns the items and the end cursor. It
// fails tb if that takes more than 30 seconds.
func ReadFeedAll(tb testing.TB, s aviso.Store, p aviso.FeedParams) ([]aviso.FeedItem, aviso.FeedCursor) {
	tb.Helper()
	var out []aviso.FeedItem
	deadline := time.Now().Add(30 * time.Second)
	for {
		pg, err := s.ReadFeed(tb.Context(), p)
		if err != nil {
			tb.Fatalf("read feed after %v: %v", p.After, err)
		}
		if pg.Next.Less(p.After) {
			tb.Fatalf("read feed after %v: Next %v goes back", p.After, pg.Next)
		}
		if !pg.HasMore && len(pg.Items) > 0 && pg.Next.Less(pg.Items[len(pg.Items)-1].Cursor) {
			tb.Fatalf("read feed: Next %v is before the last event %v of the last page", pg.Next, pg.Items[len(pg.Items)-1].Cursor)
		}
		prev := p.After
		for _, it := range pg.Items {
			if !prev.Less(it.Cursor) {
				tb.Fatalf("read feed: position %v after %v: not in order", it.Cursor, prev)
			}
			prev = it.Cursor
		}
		out = append(out, pg.Items...)
		p.After = pg.Next
		if !pg.HasMore && !pg.Pending {
			return out, p.After
		}
		if time.Now().After(deadline) {
			tb.Fatalf("read feed: still more or held back after 30 s")
		}
		if !pg.HasMore {
			time.Sleep(time.Millisecond) // held back for a moment: look again (no signal announces it)
		}
	}
}

func feedIDs(items []aviso.FeedItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Event.ID
	}
	return out
}

func testReadFeed(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten, other := NewTenant(t, s), NewTenant(t, s)
	start, err := s.ReadFeed(ctx, aviso.FeedParams{TenantID: ten.ID, End: true})
	if err != nil {
		t.Fatalf("read the end of an empty feed: %v", err)
	}
	if len(start.Items) != 0 || start.HasMore {
		t.Fatalf("End read: %d items, HasMore %v; want none", len(start.Items), start.HasMore)
	}
	var all []*aviso.Event
	publish := func(n int) {
		for range n {
			k := len(all)
			typ := "invoice.created"
			if k%3 == 0 {
				typ = "payment.received"
			}
			ne := NewEvent(ten.ID, typ, Base().Add(time.Duration(k)*time.Second))
			ne.Event.ID = fmt.Sprintf("evt_%02d", (k*7)%23) // not in publication order
			ne.Event.ExternalReference = fmt.Sprintf("ref-%d", k%2)
			if _, err := s.InsertEvents(ctx, []aviso.NewEvent{ne}); err != nil {
				t.Fatalf("insert: %v", err)
			}
			all = append(all, ne.Event)
			Publish(t, s, other.ID, Base())
		}
	}
	publish(10)
	ids := func(keep func(*aviso.Event) bool) []string {
		var out []string
		for _, e := range all {
			if keep(e) {
				out = append(out, e.ID)
			}
		}
		return out
	}
	every := func(*aviso.Event) bool { return true }
	tests := []struct {
		name string
		p    aviso.FeedParams
		keep func(*aviso.Event) bool
	}{
		{"all", aviso.FeedParams{}, every},
		{"types", aviso.FeedParams{Types: []string{"payment.received", "nothing.here"}},
			func(e *aviso.Event) bool { return e.Type == "payment.received" }},
		{"two types", aviso.FeedParams{Types: []string{"payment.received", "invoice.created"}}, every},
		{"reference", aviso.FeedParams{ExternalReference: "ref-1"}, func(e *aviso.Event) bool { return e.ExternalReference == "ref-1" }},
		{"since", aviso.FeedParams{Since: Base().Add(4 * time.Second)}, func(e *aviso.Event) bool { return !e.CreatedAt.Before(Base().Add(4 * time.Second)) }},
		{"no match", aviso.FeedParams{Types: []string{"nothing.here"}}, func(*aviso.Event) bool { return false }},
	}
	for _, tc := range tests {
		for _, size := range []int{1, 3, 50} {
			t.Run(fmt.Sprintf("%s/limit %d", tc.name, size), func(t *testing.T) {
				p := tc.p
				p.TenantID, p.Limit = ten.ID, size
				got, end := ReadFeedAll(t, s, p)
				if want := ids(tc.keep); !slices.Equal(feedIDs(got), want) {
					t.Errorf("read %v, want %v", feedIDs(got), want)
				}
				// From the end: nothing more, and the same end.
				p.After = end
				again, err := s.ReadFeed(ctx, p)
				if err != nil {
					t.Fatalf("read from the end: %v", err)
				}
				if len(again.Items) != 0 || again.HasMore || again.Next.Less(end) {
					t.Errorf("read from the end: %v, HasMore %v, Next %v (end %v); want nothing", feedIDs(again.Items), again.HasMore, again.Next, end)
				}
			})
		}
	}

	t.Run("fields", func(t *testing.T) {
		got, _ := ReadFeedAll(t, s, aviso.FeedParams{TenantID: ten.ID, Limit: 1})
		if len(got) != len(all) {
			t.Fatalf("%d events, want %d", len(got), len(all))
		}
		for i := range all {
			checkEvent(t, got[i].Event, all[i])
		}
	})

	t.Run("resume", func(t *testing.T) {
		// A consumer that stored the end cursor sees only what was published afterwards, and one
		// that started at End before anything was published sees everything.
		_, end := ReadFeedAll(t, s, aviso.FeedParams{TenantID: ten.ID})
		before := len(all)
		publish(3)
		got, _ := ReadFeedAll(t, s, aviso.FeedParams{TenantID: ten.ID, After: end, Limit: 2})
		if want := ids(every)[before:]; !slices.Equal(feedIDs(got), want) {
			t.Errorf("after the end cursor: %v, want the 3 new events %v", feedIDs(got), want)
		}
		fromStart, _ := ReadFeedAll(t, s, aviso.FeedParams{TenantID: ten.ID, After: start.Next})
		if !slices.Equal(feedIDs(fromStart), ids(every)) {
			t.Errorf("from the End of the empty feed: %v, want every event %v", feedIDs(fromStart), ids(every))
		}
		end2, err := s.ReadFeed(ctx, aviso.FeedParams{TenantID: ten.ID, End: true})
		if err != nil {
			t.Fatal(err)
		}
		if rest, _ := ReadFeedAll(t, s, aviso.FeedParams{TenantID: ten.ID, After: end2.Next}); len(rest) != 0 {
			t.Errorf("after End: %v, want nothing", feedIDs(rest))
		}
	})

	t.Run("unknown tenant", func(t *testing.T) {
		pg, err := s.ReadFeed(ctx, aviso.FeedParams{TenantID: "ten_nobody"})
		if err != nil || len(pg.Items) != 0 {
			t.Errorf("feed of an unknown tenant: %v, %v; want an empty page", pg, err)
		}
	})
}

// testReadFeedConcurrent has 8 publishers commit events (out of order, on PostgreSQL) while a
// consumer reads the feed from its stored cursor, starting again from nothing but the cursor
// after every page: it must see every event exactly once, in the order a later full read gives.
func testReadFeedConcurrent(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	const publishers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for w := range publishers {
		wg.Go(func() {
			for i := range each {
				batch := []aviso.NewEvent{NewEvent(ten.ID, "invoice.created", Base())}
				if i%4 == 0 {
					batch = append(batch, NewEvent(ten.ID, "invoice.created", Base()))
				}
				for j := range batch {
					batch[j].Event.ID = fmt.Sprintf("evt_w%d_%03d_%d", w, i, j)
				}
				if _, err := s.InsertEvents(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[string]bool{}
	var order []string
	var cursor aviso.FeedCursor
	restarts := 0
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		// A fresh consumer: nothing but the stored cursor.
		pg, err := s.ReadFeed(ctx, aviso.FeedParams{TenantID: ten.ID, After: cursor, Limit: 7})
		if err != nil {
			t.Fatalf("read feed: %v", err)
		}
		restarts++
		for _, it := range pg.Items {
			if seen[it.Event.ID] {
				t.Fatalf("event %s seen twice (cursor %v)", it.Event.ID, cursor)
			}
			seen[it.Event.ID] = true
			order = append(order, it.Event.ID)
		}
		if pg.Next.Less(cursor) {
			t.Fatalf("Next %v goes back from %v", pg.Next, cursor)
		}
		cursor = pg.Next
		if finished && !pg.HasMore && !pg.Pending {
			break
		}
	}
	close(errs)
	for err := range errs {
		t.Fatalf("publish: %v", err)
	}
	want := publishers * (each + each/4)
	if len(seen) != want {
		t.Fatalf("the consumer saw %d events over %d reads, want %d", len(seen), restarts, want)
	}
	all, _ := ReadFeedAll(t, s, aviso.FeedParams{TenantID: ten.ID, Limit: aviso.MaxLimit})
	if !slices.Equal(feedIDs(all), order) {
		t.Errorf("a full read gives another order than the consumer saw")
	}
}

func testEventsPublished(t *testing.T, s aviso.Store) {
	ten, other := NewTenant(t, s), NewTenant(t, s)
	ch := s.EventsPublished(ten.ID)
	Publish(t, s, other.ID, Base())
	Publish(t, s, ten.ID, Base())
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("EventsPublished not closed 10 s after a publish of the tenant")
	}
	// A repeat of an existing event publishes nothing; the channel stays open for the next one.
	next := s.EventsPublished(ten.ID)
	ne := NewEvent(ten.ID, "invoice.created", Base())
	for range 2 {
		if _, err := s.InsertEvents(t.Context(), []aviso.NewEvent{ne}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-next:
	case <-time.After(10 * time.Second):
		t.Fatal("EventsPublished not closed after the second publish")
	}
}
