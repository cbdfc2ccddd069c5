package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
)

// TestEndpointFilterForm: the endpoint form's "test the filter" button runs the filter on the
// sample data and says whether the event would be delivered, saving nothing; a filter that does
// not compile is marked on its field; a saved filter shows on the endpoint's page.
func TestEndpointFilterForm(t *testing.T) {
	e := newEnv(t)
	u := e.user(t)
	u.login(rootKey)
	u.get("/ui/t/acme/endpoints/new")
	form := func(filter, sample, action string) url.Values {
		v := url.Values{"url": {"http://127.0.0.1:1/in"}, "event_types": {"invoice.created"}, "format": {"standard"},
			"timeout_seconds": {"10"}, "filter": {filter}, "filter_sample": {sample}}
		if action != "" {
			v.Set("action", action)
		}
		return v
	}
	const f = `data.total > 1000 && external_reference startsWith "FAC-A"`
	r := u.post("/ui/t/acme/endpoints", form(`data.total > 1000`, `{"total": 5000}`, "test_filter"))
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "This event would be delivered.", `data.total &gt; 1000`)
	r = u.post("/ui/t/acme/endpoints", form(`data.total > 1000`, `{"total": 5}`, "test_filter"))
	wantContains(t, r, "This event would not be delivered.")
	r = u.post("/ui/t/acme/endpoints", form(`data.total >`, `{}`, "test_filter"))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `id="filter-error"`, "line 1, column")
	if eps, err := e.store.ListEndpoints(t.Context(), aviso.ListEndpointsParams{TenantID: "acme"}); err != nil || len(eps.Data) != 0 {
		t.Fatalf("testing a filter stored an endpoint: %v, %v", eps, err)
	}

	r = u.post("/ui/t/acme/endpoints", form(f, "", ""))
	wantStatus(t, r, http.StatusSeeOther)
	page := u.follow(r)
	wantContains(t, page, "Payload filter", `startsWith &#34;FAC-A&#34;`)
	if !strings.Contains(r.location, "/ui/t/acme/endpoints/") {
		t.Fatalf("created endpoint at %q", r.location)
	}

	u.get("/ui/lang/es?next=/ui/t/acme/endpoints/new")
	r = u.post("/ui/t/acme/endpoints", form(`type == "invoice.created"`, `{}`, "test_filter"))
	wantContains(t, r, "Este evento se entregaría.", "Filtro de contenido")
}
