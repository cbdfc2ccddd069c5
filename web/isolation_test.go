package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// isolationForms holds, for every dashboard route with a tenant in it, the form that makes a
// POST valid (GETs send none). The walk sends each with tenant B's session — signed in with B's
// key, and opened from B's portal link — to tenant A's resources and expects 404 or 403 and
// nothing changed; then the operator (root) sends it to prove it names real resources. A route
// of the dashboard's table without a case here fails the test.
var isolationForms = map[string]url.Values{
	"GET /ui/t/{tenant}/endpoints":                     nil,
	"GET /ui/t/{tenant}/endpoints/new":                 nil,
	"POST /ui/t/{tenant}/endpoints":                    {"url": {"{receiver}"}, "format": {"standard"}, "timeout_seconds": {"10"}},
	"GET /ui/t/{tenant}/endpoints/{endpoint}":          nil,
	"GET /ui/t/{tenant}/endpoints/{endpoint}/edit":     nil,
	"POST /ui/t/{tenant}/endpoints/{endpoint}/edit":    {"url": {"{receiver}"}, "format": {"standard"}, "description": {"changed"}, "timeout_seconds": {"10"}},
	"POST /ui/t/{tenant}/endpoints/{endpoint}/disable": {},
	"POST /ui/t/{tenant}/endpoints/{endpoint}/enable":  {},
	"GET /ui/t/{tenant}/endpoints/{endpoint}/rotate":   nil,
	"POST /ui/t/{tenant}/endpoints/{endpoint}/rotate":  {},
	"POST /ui/t/{tenant}/endpoints/{endpoint}/test":    {"type": {"invoice.created"}},
	"POST /ui/t/{tenant}/endpoints/{endpoint}/replay":  {"since": {"2000-01-01T00:00"}, "status": {"all"}},
	"GET /ui/t/{tenant}/endpoints/{endpoint}/delete":   nil,
	"POST /ui/t/{tenant}/endpoints/{endpoint}/delete":  {},
	"GET /ui/t/{tenant}/delete":                        nil,
	"POST /ui/t/{tenant}/delete":                       {},
	"GET /ui/t/{tenant}/deliveries":                    nil,
	"GET /ui/t/{tenant}/endpoints/{endpoint}/replay":   nil,
	"GET /ui/t/{tenant}/deliveries/{delivery}/retry":   nil,
	"GET /ui/t/{tenant}/deliveries/{delivery}":         nil,
	"POST /ui/t/{tenant}/deliveries/{delivery}/retry":  {},
}

// refused stands for any 4xx status in globalRoutes.
const refused = -1

// globalRoutes are the dashboard routes with no tenant in them, with what a tenant session gets.
var globalRoutes = map[string]int{
	"GET /ui/static/":              http.StatusOK,
	"GET /ui/{$}":                  http.StatusSeeOther, // to the tenant's own endpoints
	"GET /ui/login":                http.StatusOK,
	"POST /ui/login":               refused, // no key given
	"POST /ui/logout":              0,       // walked last: it ends the session
	"GET /ui/lang/{lang}":          http.StatusSeeOther,
	"GET /ui/portal":               http.StatusForbidden, // no link
	"GET /ui/portal/ended":         http.StatusOK,
	"GET /ui/tenants":              http.StatusForbidden,
	"POST /ui/tenants":             http.StatusForbidden,
	"GET /ui/outbox":               http.StatusForbidden,
	"GET /ui/brand.css":            http.StatusOK,
	"GET /ui/catalog":              http.StatusOK,
	"GET /ui/catalog/{name}/edit":  http.StatusForbidden,
	"POST /ui/catalog/{name}/edit": http.StatusForbidden,
	"/ui/":                         http.StatusNotFound,
}

// TestIsolationWalk walks the dashboard's route table (issue 19); see isolationForms.
func TestIsolationWalk(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	routes := e.ui.Routes()
	rcA := newReceiver(t, http.StatusOK)
	// A is "other"; B is "acme", whose key the harness made.
	epA := e.createEndpoint(t, "other", rcA.URL)
	et, err := e.svc.GetEventType(ctx, root, "invoice.created")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Publish(ctx, root, "other", []service.PublishInput{{Type: "invoice.created", Data: et.Example}})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := e.svc.ListDeliveries(ctx, root, "other", service.DeliveryFilter{EventID: res[0].Event.ID})
	if err != nil || len(ds.Data) != 1 {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
	dlA := ds.Data[0]
	e.createEndpoint(t, "acme", newReceiver(t, http.StatusOK).URL)

	fill := func(pattern, tenant string) (method, path string, form url.Values) {
		method, path, _ = strings.Cut(pattern, " ")
		path = strings.NewReplacer("{tenant}", tenant, "{endpoint}", epA.ID, "{delivery}", dlA.ID,
			"{name}", "invoice.created", "{lang}", "es", "{$}", "").Replace(path)
		if method == http.MethodPost {
			form = url.Values{}
			for k, vs := range isolationForms[pattern] {
				form[k] = []string{strings.ReplaceAll(vs[0], "{receiver}", rcA.URL)}
			}
		}
		return method, path, form
	}
	snapshot := func() string {
		var all []any
		for _, id := range []string{"acme", "other"} {
			eps, err := e.store.ListEndpoints(ctx, aviso.ListEndpointsParams{ListParams: aviso.ListParams{Limit: aviso.MaxLimit}, TenantID: id})
			if err != nil {
				t.Fatal(err)
			}
			for _, ep := range eps.Data {
				all = append(all, ep, ep.Secrets)
			}
			evs, err := e.store.ListEvents(ctx, aviso.ListEventsParams{ListParams: aviso.ListParams{Limit: aviso.MaxLimit}, TenantID: id})
			if err != nil {
				t.Fatal(err)
			}
			dls, err := e.store.ListDeliveries(ctx, aviso.ListDeliveriesParams{ListParams: aviso.ListParams{Limit: aviso.MaxLimit}, TenantID: id})
			if err != nil {
				t.Fatal(err)
			}
			tn, err := e.store.GetTenant(ctx, id)
			all = append(all, evs, dls, tn, err)
		}
		b, err := json.Marshal(all)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// B's sessions: signed in with B's key, and opened from B's portal link.
	byKey := e.user(t)
	byKey.login(e.tenantKey)
	link, _, err := e.ui.PortalLink(ctx, root, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	byPortal := e.user(t)
	wantStatus(t, byPortal.get(link), http.StatusSeeOther)
	sessions := map[string]*user{"key": byKey, "portal": byPortal}
	refresh := func(u *user) { // a CSRF token of the session, from a page of B's own with a form
		wantStatus(t, u.get("/ui/t/acme/endpoints/new"), http.StatusOK)
	}

	var tenantRoutes []string
	for _, pattern := range routes {
		if !strings.Contains(pattern, "{tenant}") {
			want, ok := globalRoutes[pattern]
			if !ok {
				t.Errorf("route %q has no case in globalRoutes: say what a tenant session gets", pattern)
				continue
			}
			if want == 0 {
				continue
			}
			method, path, form := fill(pattern, "other")
			if pattern == "GET /ui/static/" {
				path = "/ui/static/app.css"
			}
			for name, u := range sessions {
				var r resp
				if method == http.MethodPost {
					if pattern == "POST /ui/login" {
						u.get("/ui/login")
					} else {
						refresh(u)
					}
					r = u.post(path, form)
				} else {
					r = u.get(path)
				}
				if r.status != want && !(want == refused && r.status >= 400 && r.status < 500) {
					t.Errorf("%s with B's %s session: %d, want %d: %s", pattern, name, r.status, want, excerpt(r.body))
				}
			}
			continue
		}
		if _, ok := isolationForms[pattern]; !ok {
			t.Errorf("route %q has no case in isolationForms: every route with a tenant in it must prove isolation", pattern)
			continue
		}
		tenantRoutes = append(tenantRoutes, pattern)
	}
	for pattern := range isolationForms {
		if !slices.Contains(routes, pattern) {
			t.Errorf("isolationForms names %q, which is not a route", pattern)
		}
	}

	before := snapshot()
	for _, pattern := range tenantRoutes {
		t.Run(pattern, func(t *testing.T) {
			for name, u := range sessions {
				for _, tenant := range []string{"other", "acme"} { // A's resources under A, then under B
					if tenant == "acme" && strings.Count(pattern, "{") == 1 {
						continue // only {tenant}: under B it is B's own
					}
					method, path, form := fill(pattern, tenant)
					var r resp
					if method == http.MethodPost {
						refresh(u)
						r = u.post(path, form)
					} else {
						r = u.get(path)
					}
					if r.status != http.StatusNotFound && r.status != http.StatusForbidden {
						t.Fatalf("%s %s with B's %s session: %d, want 404 or 403: %s", method, path, name, r.status, excerpt(r.body))
					}
					if strings.Contains(r.body, rcA.URL) || strings.Contains(r.body, "whsec_") {
						t.Fatalf("%s %s with B's %s session: the page shows A's endpoint: %s", method, path, name, excerpt(r.body))
					}
				}
			}
			if after := snapshot(); after != before {
				t.Fatalf("B's requests changed the store:\nbefore %s\nafter  %s", before, after)
			}
			select {
			case <-rcA.got:
				t.Fatal("A's receiver got a request from B's session")
			default:
			}
		})
	}
	for name, u := range sessions {
		refresh(u)
		if r := u.post("/ui/logout", url.Values{}); r.status != http.StatusSeeOther {
			t.Errorf("logout of B's %s session: %d", name, r.status)
		}
	}

	// The operator's requests succeed: the walk named real resources. Deletions last.
	slices.SortStableFunc(tenantRoutes, func(x, y string) int {
		rank := func(p string) int {
			switch {
			case p == "POST /ui/t/{tenant}/delete":
				return 2
			case strings.HasPrefix(p, "POST ") && strings.HasSuffix(p, "/delete"):
				return 1
			}
			return 0
		}
		return rank(x) - rank(y)
	})
	op := e.user(t)
	op.login(rootKey)
	for _, pattern := range tenantRoutes {
		method, path, form := fill(pattern, "other")
		var r resp
		if method == http.MethodPost {
			wantStatus(t, op.get("/ui/t/other/endpoints/new"), http.StatusOK)
			r = op.post(path, form)
		} else {
			r = op.get(path)
		}
		if r.status != http.StatusOK && r.status != http.StatusSeeOther {
			t.Errorf("control: %s %s as the operator: %d: %s", method, path, r.status, excerpt(r.body))
		}
	}
}
