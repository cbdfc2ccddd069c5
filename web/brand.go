package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Brand is how the tenant portal presents itself: the platform's name, logo, colour and support
// link instead of Aviso's. Every field is optional; the operator's own dashboard keeps Aviso's
// look whatever Brand says.
type Brand struct {
	// Name replaces "Aviso" in the portal's header and titles, e.g. "Facturas Acme".
	Name string
	// LogoURL is an absolute http(s) URL of an image shown before the name (about 28 px high).
	// Its origin is added to the portal pages' CSP img-src.
	LogoURL string
	// PrimaryColor, "#rrggbb", colours the portal's links and buttons. It must reach a contrast of
	// 4.5:1 with white (the buttons' text) and the page background (links), as WCAG AA asks.
	PrimaryColor string
	// SupportURL is an https: or mailto: link the portal shows as "Help", and on the page a
	// signed-out or expired link lands on.
	SupportURL string
}

// validate checks the brand and returns the origin of its logo ("" without one).
func (b Brand) validate() (logoOrigin string, err error) {
	if strings.ContainsAny(b.Name, "\r\n") || len(b.Name) > 80 {
		return "", errors.New("web: Brand.Name must be one line of at most 80 bytes")
	}
	if b.LogoURL != "" {
		u, err := url.Parse(b.LogoURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(b.LogoURL, " ;,'\"") {
			return "", fmt.Errorf("web: Brand.LogoURL %q must be an absolute http(s) URL", b.LogoURL)
		}
		logoOrigin = u.Scheme + "://" + u.Host
	}
	if b.PrimaryColor != "" {
		l, ok := luminance(b.PrimaryColor)
		if !ok {
			return "", fmt.Errorf("web: Brand.PrimaryColor %q must be a colour such as #1d4ed8", b.PrimaryColor)
		}
		// White text on the colour, and the colour on the page background (#f6f7f9, luminance ≈ 0.92).
		if c := (1.05) / (l + 0.05); c < 4.5 {
			return "", fmt.Errorf("web: Brand.PrimaryColor %s has a contrast of %.1f:1 with white text; pick a darker colour (at least 4.5:1)", b.PrimaryColor, c)
		}
		if c := (0.92 + 0.05) / (l + 0.05); c < 4.5 {
			return "", fmt.Errorf("web: Brand.PrimaryColor %s has a contrast of %.1f:1 with the page background; pick a darker colour (at least 4.5:1)", b.PrimaryColor, c)
		}
	}
	if b.SupportURL != "" {
		u, err := url.Parse(b.SupportURL)
		if err != nil || !(u.Scheme == "https" && u.Host != "" || u.Scheme == "mailto" && u.Opaque != "") {
			return "", fmt.Errorf("web: Brand.SupportURL %q must be an https: or mailto: URL", b.SupportURL)
		}
	}
	return logoOrigin, nil
}

// luminance is the WCAG relative luminance of "#rrggbb".
func luminance(hex string) (float64, bool) {
	if len(hex) != 7 || hex[0] != '#' {
		return 0, false
	}
	v, err := strconv.ParseUint(hex[1:], 16, 32)
	if err != nil {
		return 0, false
	}
	lin := func(c uint64) float64 {
		s := float64(c) / 255
		if s <= 0.03928 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(v>>16&0xff) + 0.7152*lin(v>>8&0xff) + 0.0722*lin(v&0xff), true
}

// brandCSS serves the portal's colour as CSS custom properties (the pages' CSP allows no inline
// style), linked from portal pages only.
func (h *Handler) brandCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if c := h.brand.PrimaryColor; c != "" {
		fmt.Fprintf(w, ":root { --accent: %s; }\n", c) // validated: #rrggbb
	}
}
