package web

import (
	"net/http"
	"time"

	"github.com/aviso-dev/aviso"
)

// loginCookie carries the nonce of the sign-in form's CSRF token, before any session exists.
const loginCookie = "aviso_login"

// home sends a signed-in user to their start page: the tenants for root, the endpoints of its
// tenant for a tenant key or portal session.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	s, ok := h.session(r)
	if !ok {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, startPage(s.Principal), http.StatusSeeOther)
}

// startPage is where a principal lands after signing in.
func startPage(p aviso.Principal) string {
	if p.IsRoot() {
		return "/ui/tenants"
	}
	return "/ui/t/" + p.TenantID + "/endpoints"
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.renderLogin(w, r, http.StatusOK, "")
}

// renderLogin shows the sign-in form with a fresh login CSRF token.
func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, errKey string) {
	nonce := newNonce()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: nonce, Path: "/ui/", HttpOnly: true,
		Secure: h.secure, SameSite: http.SameSiteLaxMode, MaxAge: 3600})
	v := h.newView(r, nil, "sign_in_title", nil)
	v.CSRF = h.sign.csrfToken(session{Nonce: nonce})
	if errKey != "" {
		v.Error = h.msgs[v.Lang].T(errKey)
	}
	h.render(w, status, "login", v)
}

// login checks the API key through the service and starts a session for its principal.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil || !h.sign.checkCSRF(session{Nonce: c.Value}, r.PostFormValue(csrfField)) {
		h.fail(w, r, http.StatusForbidden, "error_csrf")
		return
	}
	p, err := h.svc.Authenticate(r.Context(), r.PostFormValue("key"))
	if err != nil {
		if code := aviso.ErrorCode(err); code != aviso.EUNAUTHORIZED {
			h.log.ErrorContext(r.Context(), "dashboard sign-in failed", "error", err)
		}
		h.renderLogin(w, r, http.StatusUnauthorized, "error_bad_key")
		return
	}
	h.startSession(w, p)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/ui/", MaxAge: -1, HttpOnly: true, Secure: h.secure})
	http.Redirect(w, r, startPage(p), http.StatusSeeOther)
}

// startSession sets the session cookie of a new session for p.
func (h *Handler) startSession(w http.ResponseWriter, p aviso.Principal) {
	exp := h.now().Add(h.ttl).Truncate(time.Second)
	s := session{Principal: p, Expires: exp, Nonce: newNonce()}
	http.SetCookie(w, h.sessionCookieFor(h.sign.sessionToken(s), exp))
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	s, ok := h.session(r)
	if ok && !h.sign.checkCSRF(s, r.PostFormValue(csrfField)) {
		h.fail(w, r, http.StatusForbidden, "error_csrf")
		return
	}
	http.SetCookie(w, h.sessionCookieFor("", time.Time{}))
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// setLanguage remembers the chosen language in a cookie and goes back to the page it came from.
func (h *Handler) setLanguage(w http.ResponseWriter, r *http.Request) {
	lang := r.PathValue("lang")
	if !supported(lang) {
		h.notFound(w, r)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/ui/", MaxAge: 365 * 24 * 3600,
		Secure: h.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
}

// portal opens a portal link: it starts a session scoped to the link's tenant (KeyID "portal")
// and redirects to the tenant's endpoints. An invalid or expired link answers 403.
func (h *Handler) portal(w http.ResponseWriter, r *http.Request) {
	tenantID, err := h.sign.parsePortal(r.URL.Query().Get("t"), h.now())
	if err != nil {
		h.fail(w, r, http.StatusForbidden, "error_portal_link")
		return
	}
	h.startSession(w, aviso.Principal{KeyID: PortalKeyID, TenantID: tenantID})
	http.Redirect(w, r, "/ui/t/"+tenantID+"/endpoints", http.StatusSeeOther)
}
