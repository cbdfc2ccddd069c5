package web

import (
	"net/http"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
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
	key := r.PostFormValue("key")
	p, err := h.svc.Authenticate(r.Context(), key)
	if err != nil {
		if code := aviso.ErrorCode(err); code != aviso.EUNAUTHORIZED {
			h.log.ErrorContext(r.Context(), "dashboard sign-in failed", "error", err)
		}
		h.renderLogin(w, r, http.StatusUnauthorized, "error_bad_key")
		return
	}
	// The stored hash is the hash of the key just accepted.
	h.startSession(w, p, h.sign.keyGen(service.HashKey(key)))
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/ui/", MaxAge: -1, HttpOnly: true, Secure: h.secure})
	http.Redirect(w, r, startPage(p), http.StatusSeeOther)
}

// startSession sets the session cookie of a new session for p of generation gen (see session.go).
func (h *Handler) startSession(w http.ResponseWriter, p aviso.Principal, gen string) {
	exp := h.now().Add(h.ttl).Truncate(time.Second)
	s := session{Principal: p, Expires: exp, Nonce: newNonce(), Gen: gen}
	http.SetCookie(w, h.sessionCookieFor(h.sign.sessionToken(s), exp))
}

// logout ends the session on the server, not only in this browser: its nonce (and for a portal
// session the link that opened it) goes on the store's revoked list until it would have expired,
// so a copied cookie, or the portal link, no longer opens anything. A portal user then sees the
// page saying the link has ended; anyone else the sign-in page.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	dest := h.signedOutPage(r)
	if s, ok := h.session(r); ok {
		if !h.sign.checkCSRF(s, r.PostFormValue(csrfField)) {
			h.fail(w, r, http.StatusForbidden, "error_csrf")
			return
		}
		now := h.now()
		err := h.store.RevokeSession(r.Context(), s.Nonce, s.Expires, now)
		if err == nil && s.Principal.KeyID == PortalKeyID {
			// Every link expires within MaxPortalLinkTTL of its issue, so of now.
			err = h.store.RevokeSession(r.Context(), s.Gen, now.Add(MaxPortalLinkTTL), now)
		}
		if err != nil {
			h.log.ErrorContext(r.Context(), "dashboard sign-out", "error", err)
			h.fail(w, r, http.StatusServiceUnavailable, "error_unavailable")
			return
		}
	}
	http.SetCookie(w, h.sessionCookieFor("", time.Time{}))
	if dest == "/ui/login" {
		dest += "?ok=signed_out"
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
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
// and redirects to the tenant's endpoints. An invalid, expired or signed-out link answers 403
// with the page saying the link has ended.
func (h *Handler) portal(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("t")
	tenantID, err := h.sign.parsePortal(token, h.now())
	if err != nil {
		h.renderPortalEnded(w, r, http.StatusForbidden)
		return
	}
	link := h.sign.linkID(token)
	revoked, err := h.store.SessionRevoked(r.Context(), h.now(), link)
	if err != nil {
		h.log.ErrorContext(r.Context(), "open portal link", "error", err)
		h.fail(w, r, http.StatusServiceUnavailable, "error_unavailable")
		return
	}
	if revoked {
		h.renderPortalEnded(w, r, http.StatusForbidden)
		return
	}
	h.startSession(w, aviso.Principal{KeyID: PortalKeyID, TenantID: tenantID}, link)
	http.Redirect(w, r, "/ui/t/"+tenantID+"/endpoints", http.StatusSeeOther)
}

// portalEnded is where a portal user lands after signing out, or with a session that ended.
func (h *Handler) portalEnded(w http.ResponseWriter, r *http.Request) {
	h.renderPortalEnded(w, r, http.StatusOK)
}

func (h *Handler) renderPortalEnded(w http.ResponseWriter, r *http.Request, status int) {
	v := h.newView(r, nil, "portal_ended_title", nil)
	v.Portal, v.Brand = true, h.brand // framed and branded like the portal it ends
	h.render(w, status, "portal_ended", v)
}
