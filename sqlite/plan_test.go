package sqlite_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// TestListPlans checks that every page of the event and delivery logs is read in order from the
// index that holds just what it shows: no step sorts (a "TEMP B-TREE" would sort the whole
// matching log for each page), and the named index is used. SQLite has no statistics to plan
// by, so a plan that drifts here makes a page cost the size of the log (see the ListEventsBy and
// ListDeliveriesOf benchmarks).
func TestListPlans(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{})
	since := storetest.Base()
	cursor := aviso.ListParams{After: "123"} // as ListEvents hands it out
	events := []struct {
		name  string
		p     aviso.ListEventsParams
		index string
	}{
		{"all", aviso.ListEventsParams{}, "events_tenant"},
		{"all newest first", aviso.ListEventsParams{Desc: true}, "events_tenant"},
		{"after a cursor", aviso.ListEventsParams{ListParams: cursor, Desc: true}, "events_tenant"},
		{"type", aviso.ListEventsParams{Type: "invoice.paid", Desc: true}, "events_tenant"},
		{"external reference", aviso.ListEventsParams{ExternalReference: "FAC-1", Desc: true}, "events_tenant_reference"},
		{"ids", aviso.ListEventsParams{IDs: []string{"evt_2", "evt_1"}, Type: "invoice.paid", Desc: true}, "sqlite_autoindex_events_1"},
	}
	for _, tc := range events {
		t.Run("events/"+tc.name, func(t *testing.T) {
			p := tc.p
			p.TenantID = "acme"
			plan, err := sqlite.ListPlan(s, &p, nil)
			if p.IDs != nil { // a page at most, each found by its ID: sorting it is cheap
				plan = slices.DeleteFunc(plan, func(step string) bool { return step == "USE TEMP B-TREE FOR ORDER BY" })
			}
			checkPlan(t, plan, err, tc.index)
		})
	}
	deliveries := []struct {
		name  string
		p     aviso.ListDeliveriesParams
		index string
	}{
		{"all", aviso.ListDeliveriesParams{Desc: true}, "deliveries_tenant"},
		{"endpoint", aviso.ListDeliveriesParams{EndpointID: "ep_1", Desc: true}, "deliveries_endpoint"},
		{"endpoint since", aviso.ListDeliveriesParams{EndpointID: "ep_1", Since: since}, "deliveries_endpoint"},
		{"event", aviso.ListDeliveriesParams{EventID: "evt_1"}, "deliveries_event"},
		{"failed", aviso.ListDeliveriesParams{Status: aviso.StatusFailed, Desc: true}, "deliveries_failed"},
		{"failed of an endpoint", aviso.ListDeliveriesParams{Status: aviso.StatusFailed, EndpointID: "ep_1"}, "deliveries_failed"},
		{"window", aviso.ListDeliveriesParams{Since: since, Until: since.Add(time.Hour), Desc: true}, "deliveries_tenant"},
		{"after a cursor", aviso.ListDeliveriesParams{ListParams: cursor, EndpointID: "ep_1"}, "deliveries_endpoint"},
	}
	for _, tc := range deliveries {
		t.Run("deliveries/"+tc.name, func(t *testing.T) {
			p := tc.p
			p.TenantID = "acme"
			plan, err := sqlite.ListPlan(s, nil, &p)
			checkPlan(t, plan, err, tc.index)
		})
	}
}

// TestClaimPlans checks that the claims' walks in due order read their index in its order: they
// have no LIMIT (see dispatch.go), so a step that sorted would sort every due delivery.
func TestClaimPlans(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{})
	plans, err := sqlite.ClaimPlans(s)
	for _, tc := range []struct{ name, index string }{
		{"claim", "deliveries_due"},
		{"claim of an endpoint", "deliveries_endpoint_due"},
		{"next due", "deliveries_due"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkPlan(t, plans[tc.name], err, tc.index) })
	}
}

func checkPlan(t *testing.T, plan []string, err error, index string) {
	t.Helper()
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	all := strings.Join(plan, " | ")
	if strings.Contains(all, "TEMP B-TREE") {
		t.Errorf("the plan sorts: %s", all)
	}
	if !strings.Contains(plan[0], "INDEX "+index+" ") && !strings.HasSuffix(plan[0], "INDEX "+index) {
		t.Errorf("the plan reads %q, want index %s", plan[0], index)
	}
}
