package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
	"github.com/aviso-dev/aviso/web"
)

// eventReads is the real store, counting the reads of events the dashboard makes through it.
type eventReads struct {
	aviso.Store
	gets, lists atomic.Int64
}

func (s *eventReads) GetEvent(ctx context.Context, tenantID, id string) (*aviso.Event, error) {
	s.gets.Add(1)
	return s.Store.GetEvent(ctx, tenantID, id)
}

func (s *eventReads) ListEvents(ctx context.Context, p aviso.ListEventsParams) (*aviso.Page[*aviso.Event], error) {
	s.lists.Add(1)
	return s.Store.ListEvents(ctx, p)
}

// TestDeliveryLogReadsEventsOnce: the delivery log shows the external reference of each row's
// event, read in one call for the page rather than one event at a time.
func TestDeliveryLogReadsEventsOnce(t *testing.T) {
	var reads *eventReads
	e := newEnv(t, func(c *web.Config) {
		reads = &eventReads{Store: c.Store}
		c.Store = reads
	})
	ep := e.createEndpoint(t, "acme", "http://127.0.0.1:1/many")
	var batch []service.PublishInput
	for i := range 30 {
		batch = append(batch, service.PublishInput{Type: "invoice.created", Data: example(t, e, "invoice.created"),
			ExternalReference: fmt.Sprintf("R-%02d", i)})
	}
	if _, err := e.svc.Publish(context.Background(), root, "acme", batch); err != nil {
		t.Fatal(err)
	}
	u := e.user(t)
	u.login(rootKey)
	for path, refs := range map[string]int{"/ui/t/acme/deliveries": 30, "/ui/t/acme/endpoints/" + ep.ID: 8} {
		reads.gets.Store(0)
		reads.lists.Store(0)
		r := u.get(path)
		wantStatus(t, r, http.StatusOK)
		if n := strings.Count(r.body, `">R-`); n != refs {
			t.Errorf("%s shows %d references, want %d", path, n, refs)
		}
		if g, l := reads.gets.Load(), reads.lists.Load(); g != 0 || l != 1 {
			t.Errorf("%s read events one by one %d times and listed them %d times, want 0 and 1", path, g, l)
		}
	}
	wantContains(t, u.get("/ui/t/acme/deliveries"), ">R-00</a>", ">R-29</a>")
}
