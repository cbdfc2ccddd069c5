// Package web is Aviso's dashboard and tenant portal: server-rendered html/template pages under
// /ui/, with their templates, CSS and a few lines of JavaScript embedded in the binary. An
// operator signs in with the root key and sees every tenant; a tenant key, or a signed portal
// link the platform hands its customer, sees one tenant only. Every change goes through
// service.Service, which holds the authorization rules; the store is read directly only for the
// statistics the service does not offer, after the principal's tenant check.
//
// Sessions are HMAC-signed, expiring cookies carrying the principal, never the API key (see
// session.go). Unsafe requests pass http.CrossOriginProtection and must carry the session's CSRF
// token. Labels come in English and Spanish (i18n.go, messages.go); every form works without
// JavaScript (plain POST, then redirect), which keeps the pages usable by keyboard alone.
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/outbox"
	"github.com/aviso-dev/aviso/service"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Defaults of Config.
const (
	DefaultSessionTTL    = 12 * time.Hour
	DefaultPortalLinkTTL = 15 * time.Minute
	MaxPortalLinkTTL     = 24 * time.Hour
	// MaxFormBytes bounds a form's body: room for a test payload of the service's 1 MiB limit.
	MaxFormBytes = 2 << 20
)

// Config configures the dashboard.
type Config struct {
	// Service performs every operation with its authorization rules. Required.
	Service *service.Service
	// Store answers the read-only queries the service lacks (endpoint statistics, the attempt
	// histogram). The dashboard checks Principal.CanSeeTenant before each. Required.
	Store aviso.Store
	// Logger receives internal errors. Default: discard.
	Logger *slog.Logger
	// PortalSecret is the HMAC key that signs sessions and portal links. Default: 32 random
	// bytes generated at start, so links and sessions end with the process; set it (and share
	// it between nodes) to keep them valid across restarts and nodes.
	PortalSecret []byte
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Secure marks cookies Secure (serve under TLS) and makes the session cookie SameSite=None so
	// the portal can be embedded in another site's iframe. Default false: SameSite=Lax.
	Secure bool
	// BaseURL, e.g. "https://aviso.example.com", prefixes the portal links PortalLink returns.
	// Default "": links are absolute paths ("/ui/portal?t=…").
	BaseURL string
	// SessionTTL is how long a sign-in or an opened portal link lasts. Default 12h.
	SessionTTL time.Duration
	// PortalFrameAncestors is the CSP frame-ancestors source list of pages shown to a portal
	// session, i.e. the sites that may embed the portal in an iframe, e.g.
	// "https://app.example.com". Default "*": any site (the link itself is the credential).
	// Every other page answers frame-ancestors 'none', so the operator's dashboard and the
	// sign-in page cannot be framed (clickjacking).
	PortalFrameAncestors string
	// Outbox is the node's outbox relay, shown on /ui/outbox (root only). Nil: the page says
	// the node relays none.
	Outbox *outbox.Relay
	// Brand is the portal's white label: name, logo, colour and support link. Default: Aviso's.
	Brand Brand
	// Slowed, when set, says whether this node's delivery engine is slowing an endpoint because
	// its receiver answered 429 or 503 (dispatch.Dispatcher.Slowed); the endpoint page shows it.
	// Default: nil, never shown.
	Slowed func(endpointID string) (dispatch.Pacing, bool)
}

// Handler serves the dashboard under /ui/. Create it with New.
type Handler struct {
	svc       *service.Service
	store     aviso.Store
	log       *slog.Logger
	now       func() time.Time
	sign      signer
	secure    bool
	baseURL   string
	ttl       time.Duration
	frames    string // frame-ancestors of portal pages
	brand     Brand
	portalCSP string // the Content-Security-Policy of portal pages
	msgs      map[string]translator
	pages     map[string]map[string]*template.Template // by language, then page name
	mux       *http.ServeMux
	// routeList is every pattern of mux, the table the isolation test walks (Routes).
	routeList []string
	handler   http.Handler
	outbox    *outbox.Relay
	slowed    func(endpointID string) (dispatch.Pacing, bool)
}

// New validates cfg and returns the dashboard handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Service == nil || cfg.Store == nil {
		return nil, errors.New("web: Config.Service and Config.Store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.PortalSecret) == 0 {
		cfg.PortalSecret = make([]byte, 32)
		_, _ = rand.Read(cfg.PortalSecret) // crypto/rand.Read never fails (Go 1.24+)
	}
	if cfg.SessionTTL < 0 {
		return nil, errors.New("web: Config.SessionTTL must not be negative")
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.PortalFrameAncestors == "" {
		cfg.PortalFrameAncestors = "*"
	}
	if strings.ContainsAny(cfg.PortalFrameAncestors, ";,\r\n") {
		return nil, errors.New("web: Config.PortalFrameAncestors must be a space-separated CSP source list")
	}
	logoOrigin, err := cfg.Brand.validate()
	if err != nil {
		return nil, err
	}
	h := &Handler{
		svc: cfg.Service, store: cfg.Store, log: cfg.Logger,
		now:     func() time.Time { return cfg.Now().UTC() },
		sign:    signer{key: append([]byte(nil), cfg.PortalSecret...)},
		secure:  cfg.Secure,
		baseURL: strings.TrimRight(cfg.BaseURL, "/"),
		ttl:     cfg.SessionTTL,
		frames:  cfg.PortalFrameAncestors,
		brand:   cfg.Brand,
		msgs:    catalogs(),
		outbox:  cfg.Outbox,
		slowed:  cfg.Slowed,
	}
	h.portalCSP = csp + h.frames
	if logoOrigin != "" {
		h.portalCSP = strings.Replace(h.portalCSP, "img-src 'self' data:", "img-src 'self' data: "+logoOrigin, 1)
	}
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

// ServeHTTP serves the dashboard; it expects paths under /ui/.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.handler.ServeHTTP(w, r) }

// PortalLink returns a signed link that opens the dashboard scoped to tenantID for ttl (default
// 15 minutes, at most 24 hours), for the platform to hand to its customer or embed in an iframe.
// Anyone holding the link may open it until it expires; the session it opens sees that tenant
// only and cannot reach another tenant or change the catalog. p must be able to see the tenant
// (ENOTFOUND otherwise, as everywhere); EINVALID for a ttl over 24 hours.
func (h *Handler) PortalLink(ctx context.Context, p aviso.Principal, tenantID string, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 {
		ttl = DefaultPortalLinkTTL
	}
	if ttl > MaxPortalLinkTTL {
		return "", time.Time{}, aviso.Invalid("ttl", "must be at most %s", MaxPortalLinkTTL)
	}
	if _, err := h.svc.GetTenant(ctx, p, tenantID); err != nil {
		return "", time.Time{}, fmt.Errorf("portal link: %w", err)
	}
	exp := h.now().Add(ttl).Truncate(time.Second)
	return h.baseURL + "/ui/portal?t=" + url.QueryEscape(h.sign.portalToken(tenantID, exp)), exp, nil
}

func (h *Handler) parseTemplates() error {
	h.pages = make(map[string]map[string]*template.Template)
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return fmt.Errorf("web: list templates: %w", err)
	}
	for _, lang := range languages() {
		h.pages[lang] = make(map[string]*template.Template)
		for _, n := range names {
			name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
			if name == "layout" {
				continue
			}
			t, err := template.New(name).Funcs(h.funcs(lang)).ParseFS(templateFS, "templates/layout.html", n)
			if err != nil {
				return fmt.Errorf("web: parse %s: %w", n, err)
			}
			h.pages[lang][name] = t
		}
	}
	return nil
}

func (h *Handler) funcs(lang string) template.FuncMap {
	tr := h.msgs[lang]
	return template.FuncMap{
		"t":       tr.T,
		"fmtTime": fmtTime,
		"dur":     func(d aviso.Duration) string { return time.Duration(d).String() },
		"inc":     func(i int) int { return i + 1 },
		"pretty":  prettyJSON,
		"dict":    dict,
		"desc": func(t *aviso.EventType, lang string) string {
			if d := t.Descriptions[lang]; d != "" {
				return d
			}
			return t.Description
		},
	}
}

func (h *Handler) routes() {
	m := &routedMux{ServeMux: http.NewServeMux()}
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /ui/{$}", h.home)
	m.HandleFunc("GET /ui/login", h.loginPage)
	m.HandleFunc("POST /ui/login", h.login)
	m.HandleFunc("POST /ui/logout", h.logout)
	m.HandleFunc("GET /ui/lang/{lang}", h.setLanguage)
	m.HandleFunc("GET /ui/portal", h.portal)
	m.HandleFunc("GET /ui/portal/ended", h.portalEnded)
	m.HandleFunc("GET /ui/brand.css", h.brandCSS)

	m.Handle("GET /ui/tenants", h.auth(h.tenants))
	m.Handle("POST /ui/tenants", h.auth(h.createTenant))
	m.Handle("GET /ui/catalog", h.auth(h.catalog))
	m.Handle("GET /ui/catalog/{name}/edit", h.auth(h.editEventType))
	m.Handle("POST /ui/catalog/{name}/edit", h.auth(h.updateEventType))
	m.Handle("GET /ui/outbox", h.auth(h.outboxPage))

	t := "/ui/t/{tenant}"
	m.Handle("GET "+t+"/endpoints", h.auth(h.endpoints))
	m.Handle("GET "+t+"/endpoints/new", h.auth(h.newEndpoint))
	m.Handle("POST "+t+"/endpoints", h.auth(h.createEndpoint))
	m.Handle("GET "+t+"/endpoints/{endpoint}", h.auth(h.endpoint))
	m.Handle("GET "+t+"/endpoints/{endpoint}/edit", h.auth(h.editEndpoint))
	m.Handle("POST "+t+"/endpoints/{endpoint}/edit", h.auth(h.updateEndpoint))
	m.Handle("POST "+t+"/endpoints/{endpoint}/disable", h.auth(h.setDisabled(true)))
	m.Handle("POST "+t+"/endpoints/{endpoint}/enable", h.auth(h.setDisabled(false)))
	m.Handle("GET "+t+"/endpoints/{endpoint}/rotate", h.auth(h.rotateSecret))
	m.Handle("POST "+t+"/endpoints/{endpoint}/rotate", h.auth(h.rotateSecret))
	m.Handle("POST "+t+"/endpoints/{endpoint}/test", h.auth(h.sendTest))
	m.Handle("GET "+t+"/endpoints/{endpoint}/replay", h.auth(h.replay))
	m.Handle("POST "+t+"/endpoints/{endpoint}/replay", h.auth(h.replay))
	m.Handle("GET "+t+"/endpoints/{endpoint}/delete", h.auth(h.deleteEndpoint))
	m.Handle("POST "+t+"/endpoints/{endpoint}/delete", h.auth(h.deleteEndpoint))
	m.Handle("GET "+t+"/delete", h.auth(h.deleteTenant))
	m.Handle("POST "+t+"/delete", h.auth(h.deleteTenant))
	m.Handle("GET "+t+"/deliveries", h.auth(h.deliveries))
	m.Handle("GET "+t+"/deliveries/{delivery}", h.auth(h.delivery))
	m.Handle("GET "+t+"/deliveries/{delivery}/retry", h.auth(h.retryDelivery))
	m.Handle("POST "+t+"/deliveries/{delivery}/retry", h.auth(h.retryDelivery))
	m.HandleFunc("/ui/", h.notFound)
	h.mux, h.routeList = m.ServeMux, m.routes

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusForbidden, "error_csrf")
	}))
	h.handler = securityHeaders(cop.Handler(m))
}

// csp is the Content-Security-Policy of every page but for frame-ancestors: scripts and styles
// load from this origin only.
const csp = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors "

// securityHeaders sets the headers every dashboard response carries. No page may be framed
// unless render allows it for a portal session.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp+"'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// request is what a signed-in page handler gets: the session and its principal.
type request struct {
	*http.Request
	s session
}

func (r *request) principal() aviso.Principal { return r.s.Principal }

// auth requires a valid session, and on unsafe methods a valid CSRF token. Without a session,
// GET requests are sent to the sign-in page (a portal user's, to the page saying the link has
// ended); others are refused.
func (h *Handler) auth(fn func(w http.ResponseWriter, r *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := h.session(r)
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, h.signedOutPage(r), http.StatusSeeOther)
				return
			}
			h.fail(w, r, http.StatusForbidden, "error_session")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !h.sign.checkCSRF(s, r.PostFormValue(csrfField)) {
				h.fail(w, r, http.StatusForbidden, "error_csrf")
				return
			}
		}
		fn(w, &request{Request: r, s: s})
	})
}

// session returns the request's valid session: a well-signed, unexpired cookie whose session
// has not been revoked (signed out); a key's session also needs its key stored with the hash it
// was opened with, so that replacing or deleting the key ends it. A store error ends the
// request's session too (it is logged): the dashboard fails closed.
func (h *Handler) session(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	now := h.now()
	s, err := h.sign.parseSession(c.Value, now)
	if err != nil {
		return session{}, false
	}
	ctx := r.Context()
	revocable := []string{s.Nonce}
	if s.Principal.KeyID != PortalKeyID {
		k, err := h.store.GetAPIKey(ctx, s.Principal.KeyID)
		if err != nil || k.TenantID != s.Principal.TenantID || h.sign.keyGen(k.Hash) != s.Gen {
			if err != nil && aviso.ErrorCode(err) != aviso.ENOTFOUND {
				h.log.ErrorContext(ctx, "dashboard session check", "error", err)
			}
			return session{}, false
		}
	} else if s.Principal.TenantID == "" {
		return session{}, false // a portal session is always scoped to a tenant
	} else {
		revocable = append(revocable, s.Gen) // the link that opened it
	}
	revoked, err := h.store.SessionRevoked(ctx, now, revocable...)
	if err != nil {
		h.log.ErrorContext(ctx, "dashboard session check", "error", err)
		return session{}, false
	}
	return s, !revoked
}

// signedOutPage is where a request without a valid session goes: the sign-in page, or for a
// cookie of a portal session (ended or expired) the page saying the portal link has ended, since
// a portal user has no API key to sign in with.
func (h *Handler) signedOutPage(r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil {
		// Expiry ignored: only the kind of session matters here.
		if s, err := h.sign.parseSession(c.Value, time.Time{}); err == nil && s.Principal.KeyID == PortalKeyID {
			return "/ui/portal/ended"
		}
	}
	return "/ui/login"
}

// view is what every page template gets.
type view struct {
	Lang       string
	Title      string
	Principal  *aviso.Principal
	Tenant     string // the tenant the page is about, for the navigation
	TenantName string
	Section    string // the navigation entry this page belongs to, marked aria-current
	CSRF       string
	Path       string // this page's path and query, for the language switch
	Portal     bool   // the viewer came through a portal link: the page may be framed, and is branded
	Brand      Brand  // the portal's white label (portal pages only)
	Flash      string
	Error      string
	D          any // the page's own data
}

func (h *Handler) newView(r *http.Request, s *session, titleKey string, d any) *view {
	lang := pickLanguage(r)
	v := &view{Lang: lang, Title: h.msgs[lang].T(titleKey), D: d, Path: localPath(r.URL.RequestURI()),
		Section: section(r.URL.Path)}
	if s != nil {
		p := s.Principal
		v.Principal = &p
		v.CSRF = h.sign.csrfToken(*s)
		v.Tenant = p.TenantID
		v.Portal = p.KeyID == PortalKeyID
	}
	if t := r.PathValue("tenant"); t != "" {
		v.Tenant = t
	}
	if v.Tenant != "" && s != nil {
		// The service checks the principal may see the tenant (and caches it).
		if t, err := h.svc.GetTenant(r.Context(), s.Principal, v.Tenant); err == nil {
			v.TenantName = t.Name
		}
	}
	if v.Portal {
		v.Brand = h.brand
	}
	if ok := r.URL.Query().Get("ok"); ok != "" {
		if msg, found := h.msgs[lang]["flash_"+ok]; found {
			v.Flash = msg
		}
	}
	return v
}

// section names the navigation entry of a dashboard path.
func section(path string) string {
	for _, s := range []string{"deliveries", "endpoints", "catalog", "tenants", "outbox"} {
		if strings.Contains(path, "/"+s) {
			return s
		}
	}
	return ""
}

// page builds the view of a signed-in page.
func (h *Handler) page(r *request, titleKey string, d any) *view {
	return h.newView(r.Request, &r.s, titleKey, d)
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, v *view) {
	t := h.pages[v.Lang][name]
	var sb strings.Builder
	if err := t.ExecuteTemplate(&sb, "layout", v); err != nil {
		h.log.Error("render page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if v.Portal {
		w.Header().Set("Content-Security-Policy", h.portalCSP)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, sb.String())
}

// fail renders an error page with a translated message.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msgKey string) {
	var sp *session
	if s, ok := h.session(r); ok {
		sp = &s
	}
	v := h.newView(r, sp, "error_title", nil)
	v.Title = h.msgs[v.Lang].statusTitle(status)
	v.D = h.msgs[v.Lang].T(msgKey)
	h.render(w, status, "error", v)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, http.StatusNotFound, "error_not_found")
}

// failErr renders the page for an error returned by the service, with the status
// aviso.HTTPStatus gives its code (the API's): 404 for ENOTFOUND (another tenant's resources look
// absent), 403, the message for the errors a user can fix, 503, and 500 (logged) for the rest.
func (h *Handler) failErr(w http.ResponseWriter, r *request, err error) {
	switch code := aviso.ErrorCode(err); code {
	case aviso.ENOTFOUND:
		h.fail(w, r.Request, http.StatusNotFound, "error_not_found")
	case aviso.EFORBIDDEN:
		h.fail(w, r.Request, http.StatusForbidden, "error_forbidden")
	case aviso.EUNAVAILABLE, aviso.ESTORAGE:
		h.log.WarnContext(r.Context(), "dashboard request: store unavailable", "path", r.URL.Path, "error", err)
		h.fail(w, r.Request, aviso.HTTPStatus(code), "error_unavailable")
	default:
		if isUserError(err) {
			status := statusOf(err)
			v := h.page(r, "error_title", errorText(err))
			v.Title = h.msgs[v.Lang].statusTitle(status)
			h.render(w, status, "error", v)
			return
		}
		h.log.ErrorContext(r.Context(), "dashboard request failed", "path", r.URL.Path, "error", err)
		h.fail(w, r.Request, http.StatusInternalServerError, "error_internal")
	}
}

// statusOf is the HTTP status of a service error: the API's (aviso.HTTPStatus).
func statusOf(err error) int { return aviso.HTTPStatus(aviso.ErrorCode(err)) }

// errorText is what a user sees of a service error: the field and the message.
func errorText(err error) string {
	if f := aviso.ErrorField(err); f != "" {
		return f + ": " + aviso.ErrorMessage(err)
	}
	return aviso.ErrorMessage(err)
}

// localPath returns p if it is a dashboard path, else "/ui/", so redirects never leave the site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/ui/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/ui/"
	}
	return p
}

// redirect answers a successful form with 303 See Other, flashing a message key.
func redirect(w http.ResponseWriter, r *http.Request, path, flash string) {
	if flash != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "ok=" + url.QueryEscape(flash)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// Routes returns the patterns of every dashboard route, in the order they were registered: the
// table the isolation test walks, so a route added without a case fails it.
func (h *Handler) Routes() []string { return append([]string(nil), h.routeList...) }

// routedMux is a ServeMux that records the patterns it is given.
type routedMux struct {
	*http.ServeMux
	routes []string
}

func (m *routedMux) Handle(pattern string, h http.Handler) {
	m.routes = append(m.routes, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *routedMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}
