package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// eventTypeForm is the catalog editor's form, as typed.
type eventTypeForm struct {
	Name, Description, DescriptionES, Schema, Example string
}

// editEventType shows the catalog editor. Root only: the service answers EFORBIDDEN to tenant
// keys and portal sessions, and the page checks first so that they see nothing of the form.
func (h *Handler) editEventType(w http.ResponseWriter, r *request) {
	if !r.principal().IsRoot() {
		h.fail(w, r.Request, http.StatusForbidden, "error_forbidden")
		return
	}
	t, err := h.svc.GetEventType(r.Context(), r.principal(), r.PathValue("name"))
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	f := eventTypeForm{Name: t.Name, Description: t.Description, DescriptionES: t.Descriptions["es"],
		Schema: prettyJSON(t.Schema), Example: prettyJSON(t.Example)}
	h.render(w, http.StatusOK, "catalog_edit", h.page(r, "catalog_edit_title", f))
}

// updateEventType saves the catalog editor's form through the service (root only).
func (h *Handler) updateEventType(w http.ResponseWriter, r *request) {
	name := r.PathValue("name")
	f := eventTypeForm{Name: name, Description: strings.TrimSpace(r.PostFormValue("description")),
		DescriptionES: strings.TrimSpace(r.PostFormValue("description_es")),
		Schema:        r.PostFormValue("schema"), Example: r.PostFormValue("example")}
	in := service.EventTypePatch{Description: &f.Description}
	descs := map[string]string{}
	if f.DescriptionES != "" {
		descs["es"] = f.DescriptionES
	}
	in.Descriptions = &descs
	var err error
	if in.Schema, err = jsonField("schema", f.Schema); err == nil {
		in.Example, err = jsonField("example", f.Example)
	}
	if err == nil {
		_, err = h.svc.UpdateEventType(r.Context(), r.principal(), name, in)
	}
	if isUserError(err) {
		v := h.page(r, "catalog_edit_title", f)
		v.Error = errorText(err)
		h.render(w, statusOf(err), "catalog_edit", v)
		return
	}
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	redirect(w, r.Request, "/ui/catalog", "event_type_saved")
}

// jsonField reads a JSON textarea: empty means "remove" (JSON null), anything else must parse.
func jsonField(field, s string) (json.RawMessage, error) {
	if strings.TrimSpace(s) == "" {
		return json.RawMessage("null"), nil
	}
	if !json.Valid([]byte(s)) {
		return nil, aviso.Invalid(field, "is not valid JSON")
	}
	return json.RawMessage(s), nil
}
