package web

import (
	"errors"
	"net/http"
)

// Destructive and sending actions ask first, without JavaScript: the page's button is a link to
// a confirmation page (GET) that says what will happen and holds the form that does it (POST with
// confirm=yes). A POST without confirm=yes only shows the confirmation page, so no single request
// a user did not look at deletes, rotates or sends anything.

// confirmField is the form field that carries the user's confirmation.
const confirmField = "confirm"

// confirmData is a confirmation page: every text already translated.
type confirmData struct {
	Heading  string
	Question string
	Facts    []fact // what the action acts on
	Body     string // what will be sent, when the action sends something
	Action   string // where the confirming form posts
	Fields   []fact // hidden fields the form carries (Label is the name)
	Button   string
	Danger   bool
	Cancel   string
}

// fact is one line of a confirmation page: a label and its value.
type fact struct{ Label, Value string }

// confirmed reports whether the POST carries the confirmation.
func confirmed(r *request) bool { return r.PostFormValue(confirmField) == "yes" }

// renderConfirm shows a confirmation page; its title is the heading.
func (h *Handler) renderConfirm(w http.ResponseWriter, r *request, d confirmData) {
	v := h.page(r, "confirm_title", d)
	v.Title = d.Heading
	h.render(w, http.StatusOK, "confirm", v)
}

// tr is the translator of the request's language.
func (h *Handler) tr(r *http.Request) translator { return h.msgs[pickLanguage(r)] }

// rotateSecret asks, then rotates the endpoint's signing secret and reveals the new one.
func (h *Handler) rotateSecret(w http.ResponseWriter, r *request) {
	tenantID, id := r.PathValue("tenant"), r.PathValue("endpoint")
	base := "/ui/t/" + tenantID + "/endpoints/" + id
	if r.Method != http.MethodPost || !confirmed(r) {
		ep, err := h.svc.GetEndpoint(r.Context(), r.principal(), tenantID, id)
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		tr := h.tr(r.Request)
		h.renderConfirm(w, r, confirmData{Heading: tr.T("rotate_secret"), Question: tr.T("confirm_rotate"),
			Facts: []fact{{tr.T("url"), ep.URL}}, Action: base + "/rotate", Button: tr.T("rotate_secret"),
			Danger: true, Cancel: base})
		return
	}
	if _, err := h.svc.RotateSecret(r.Context(), r.principal(), tenantID, id); err != nil {
		h.failErr(w, r, err)
		return
	}
	http.Redirect(w, r.Request, base+"?reveal=1&ok=secret_rotated#secret", http.StatusSeeOther)
}

// deleteEndpoint asks, then deletes the endpoint with its deliveries and attempts.
func (h *Handler) deleteEndpoint(w http.ResponseWriter, r *request) {
	tenantID, id := r.PathValue("tenant"), r.PathValue("endpoint")
	base := "/ui/t/" + tenantID + "/endpoints"
	if r.Method != http.MethodPost || !confirmed(r) {
		ep, err := h.svc.GetEndpoint(r.Context(), r.principal(), tenantID, id)
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		tr := h.tr(r.Request)
		h.renderConfirm(w, r, confirmData{Heading: tr.T("delete_endpoint"), Question: tr.T("confirm_delete_endpoint"),
			Facts:  []fact{{tr.T("url"), ep.URL}, {tr.T("description"), ep.Description}},
			Action: base + "/" + id + "/delete", Button: tr.T("delete_endpoint"), Danger: true, Cancel: base + "/" + id})
		return
	}
	if err := h.svc.DeleteEndpoint(r.Context(), r.principal(), tenantID, id); err != nil {
		h.failErr(w, r, err)
		return
	}
	redirect(w, r.Request, base, "endpoint_deleted")
}

// deleteTenant asks, then deletes the tenant and everything it owns. Root only: the page checks
// first so that others see nothing of it, and the service refuses them too.
func (h *Handler) deleteTenant(w http.ResponseWriter, r *request) {
	tenantID := r.PathValue("tenant")
	if !r.principal().IsRoot() {
		h.fail(w, r.Request, http.StatusForbidden, "error_forbidden")
		return
	}
	if r.Method != http.MethodPost || !confirmed(r) {
		t, err := h.svc.GetTenant(r.Context(), r.principal(), tenantID)
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		tr := h.tr(r.Request)
		h.renderConfirm(w, r, confirmData{Heading: tr.T("delete_tenant"), Question: tr.T("confirm_delete_tenant"),
			Facts: []fact{{tr.T("name"), t.Name}, {tr.T("id"), t.ID}}, Action: "/ui/t/" + tenantID + "/delete",
			Button: tr.T("delete_tenant"), Danger: true, Cancel: "/ui/t/" + tenantID + "/endpoints"})
		return
	}
	if err := h.svc.DeleteTenant(r.Context(), r.principal(), tenantID); err != nil {
		h.failErr(w, r, err)
		return
	}
	redirect(w, r.Request, "/ui/tenants", "tenant_deleted")
}

// dict builds a map for a template from key, value pairs: {{template "x" (dict "A" 1 "B" 2)}}.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, errors.New("dict: keys must be strings")
		}
		m[k] = kv[i+1]
	}
	return m, nil
}
