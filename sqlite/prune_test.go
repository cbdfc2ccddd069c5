package sqlite_test

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/storetest"
)

// Prune walks events in publication order and stops at the first that is not old enough: an old
// event published after a recent one (a clock that stepped back) waits for it, and is never
// deleted before an older one.
func TestPruneStopsAtTheFirstRecentEvent(t *testing.T) {
	s := testStore(t)
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	old1, _ := storetest.Publish(t, s, ten.ID, storetest.Base().Add(-2*time.Hour), ep)
	recent, _ := storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Minute), ep)
	old2, _ := storetest.Publish(t, s, ten.ID, storetest.Base().Add(-time.Hour), ep)

	tests := []struct {
		before  time.Time
		want    int
		gone    []*aviso.Event
		present []*aviso.Event
	}{
		{storetest.Base(), 1, []*aviso.Event{old1}, []*aviso.Event{recent, old2}},
		{storetest.Base(), 0, nil, []*aviso.Event{recent, old2}},
		{storetest.Base().Add(time.Hour), 2, []*aviso.Event{recent, old2}, nil},
	}
	for i, tc := range tests {
		n, err := s.Prune(t.Context(), tc.before, 10)
		if err != nil || n != tc.want {
			t.Fatalf("prune %d: %d, %v; want %d", i, n, err, tc.want)
		}
		for _, ev := range tc.gone {
			if _, err := s.GetEvent(t.Context(), ten.ID, ev.ID); aviso.ErrorCode(err) != aviso.ENOTFOUND {
				t.Errorf("prune %d: event %s: %v, want it gone", i, ev.ID, err)
			}
		}
		for _, ev := range tc.present {
			if _, err := s.GetEvent(t.Context(), ten.ID, ev.ID); err != nil {
				t.Errorf("prune %d: event %s: %v, want it kept", i, ev.ID, err)
			}
		}
	}
}
