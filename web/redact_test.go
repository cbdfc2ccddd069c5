package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// TestCredentialsRedacted: the dashboard's delivery and endpoint pages never show an endpoint's
// auth secrets, secret headers or (in attempts) the TusFacturas token, and saving the edit form,
// which has no credential fields, keeps them.
func TestCredentialsRedacted(t *testing.T) {
	e := newEnv(t)
	const password, apiKey, tfToken = "pw-Ui47zr", "hdr-Qe93lm", "tf-Wq26xc"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "aviso" || p != password || r.Header.Get("X-Api-Key") != apiKey {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	no := false
	ep, err := e.svc.CreateEndpoint(ctx, root, "acme", service.EndpointInput{URL: srv.URL, Verify: &no,
		Format: aviso.FormatTusFacturas, Token: tfToken, EventTypes: []string{"invoice.created"},
		Auth:          &aviso.Auth{Type: aviso.AuthBasic, Username: "aviso", Password: password},
		SecretHeaders: map[string]string{"X-Api-Key": apiKey}})
	if err != nil {
		t.Fatal(err)
	}
	test := func() *aviso.Attempt {
		t.Helper()
		a, err := e.svc.SendTest(ctx, root, "acme", ep.ID, serviceTest("invoice.created"))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := test()
	if a.ResponseStatus != 200 {
		t.Fatalf("test send: %d %s", a.ResponseStatus, a.Error)
	}
	u := e.user(t)
	u.login(rootKey)
	base := "/ui/t/acme/"
	for _, path := range []string{"deliveries/" + a.DeliveryID, "endpoints/" + ep.ID, "endpoints/" + ep.ID + "/edit", "deliveries"} {
		r := u.get(base + path)
		wantStatus(t, r, http.StatusOK)
		for _, secret := range []string{password, apiKey} {
			if strings.Contains(r.body, secret) {
				t.Errorf("%s shows %q", path, secret)
			}
		}
	}
	r := u.get(base + "deliveries/" + a.DeliveryID)
	wantContains(t, r, "Basic "+aviso.Redacted)
	if strings.Contains(r.body, tfToken) {
		t.Errorf("the delivery page shows the TusFacturas token of the attempt's headers")
	}
	// The edit form saved as it is: the credentials are kept, the receiver still accepts.
	r = u.get(base + "endpoints/" + ep.ID + "/edit")
	form := url.Values{"url": {srv.URL}, "format": {"tusfacturas"}, "timeout_seconds": {"10"}, "event_types": {"invoice.created"}}
	if r = u.post(base+"endpoints/"+ep.ID+"/edit", form); r.status != http.StatusSeeOther {
		t.Fatalf("save the edit form: %d: %s", r.status, excerpt(r.body))
	}
	if a := test(); a.ResponseStatus != 200 {
		t.Errorf("after saving the edit form the receiver answers %d: the credentials were lost", a.ResponseStatus)
	}
}
