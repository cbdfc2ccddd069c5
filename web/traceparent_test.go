package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/aviso-dev/aviso"
)

// TestEndpointTraceparentForm: the endpoint form's trace context box, off by default: checked,
// the endpoint is stored sending traceparent, its page says so and its edit form comes back
// checked; unchecked on edit, it stops. The label reads in English and Spanish.
func TestEndpointTraceparentForm(t *testing.T) {
	e := newEnv(t)
	u := e.user(t)
	u.login(rootKey)
	r := u.get("/ui/t/acme/endpoints/new")
	wantContains(t, r, "Send the trace context to the receiver", `name="send_traceparent" value="1" >`)
	stored := func() *aviso.Endpoint {
		t.Helper()
		eps, err := e.store.ListEndpoints(t.Context(), aviso.ListEndpointsParams{TenantID: "acme"})
		if err != nil || len(eps.Data) != 1 {
			t.Fatalf("endpoints %v, %v: want one", eps, err)
		}
		return eps.Data[0]
	}
	form := url.Values{"url": {"http://127.0.0.1:1/in"}, "format": {"standard"}, "timeout_seconds": {"10"},
		"send_traceparent": {"1"}}
	r = u.post("/ui/t/acme/endpoints", form)
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, u.follow(r), "Trace context", "sent (traceparent)")
	ep := stored()
	if !ep.SendTraceparent {
		t.Fatal("the box was checked, the endpoint does not send traceparent")
	}
	base := "/ui/t/acme/endpoints/" + ep.ID
	wantContains(t, u.get(base+"/edit"), `name="send_traceparent" value="1" checked>`)

	form.Del("send_traceparent")
	r = u.post(base+"/edit", form)
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, u.follow(r), "not sent")
	if stored().SendTraceparent {
		t.Fatal("the box was unchecked, the endpoint still sends traceparent")
	}

	u.get("/ui/lang/es?next=" + base)
	wantContains(t, u.get(base+"/edit"), "Trazas", "Enviar el contexto de traza al receptor")
	wantContains(t, u.get(base), "Contexto de traza", "no se envía")
}
