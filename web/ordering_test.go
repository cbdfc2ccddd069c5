package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/aviso-dev/aviso"
)

// TestEndpointOrderingForm: the endpoint form's ordering checkbox saves "external_reference",
// the endpoint's page says so (in English and Spanish), and the edit form comes back checked;
// unchecking it saves the endpoint unordered.
func TestEndpointOrderingForm(t *testing.T) {
	e := newEnv(t)
	u := e.user(t)
	u.login(rootKey)
	u.get("/ui/t/acme/endpoints/new")
	form := url.Values{"url": {"http://127.0.0.1:1/in"}, "event_types": {"invoice.created"}, "format": {"standard"},
		"timeout_seconds": {"10"}, "ordering": {"external_reference"}}
	r := u.post("/ui/t/acme/endpoints", form)
	wantStatus(t, r, http.StatusSeeOther)
	page := u.follow(r)
	wantContains(t, page, "Ordering", "By external reference: one at a time, in publish order")
	eps, err := e.store.ListEndpoints(t.Context(), aviso.ListEndpointsParams{TenantID: "acme"})
	if err != nil || len(eps.Data) != 1 || eps.Data[0].Ordering != aviso.OrderingExternalReference {
		t.Fatalf("the endpoint saved: %+v, %v; want one ordered by external reference", eps, err)
	}
	ep := eps.Data[0]
	base := "/ui/t/acme/endpoints/" + ep.ID
	wantContains(t, u.get(base+"/edit"), `name="ordering" value="external_reference" checked`)
	u.get("/ui/lang/es?next=" + base)
	wantContains(t, u.get(base), "Orden de entrega", "Por referencia externa")

	form.Del("ordering")
	wantStatus(t, u.post(base+"/edit", form), http.StatusSeeOther)
	if got, err := e.store.GetEndpoint(t.Context(), "acme", ep.ID); err != nil || got.Ordering != aviso.OrderingNone {
		t.Fatalf("unchecked: ordering %q, %v; want none", got.Ordering, err)
	}
	wantContains(t, u.get(base), "Ninguno: las entregas salen en paralelo")
}
