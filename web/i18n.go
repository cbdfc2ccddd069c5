package web

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// The languages the dashboard speaks; English is the default.
const (
	langEN = "en"
	langES = "es"
)

// languages returns the languages the dashboard speaks, default first.
func languages() []string { return []string{langEN, langES} }

// translator looks up the labels of one language. A missing key renders as the key itself, so a
// gap shows on the page instead of breaking it; TestMessagesComplete keeps gaps from landing.
type translator map[string]string

func (t translator) T(key string) string {
	if s, ok := t[key]; ok {
		return s
	}
	return key
}

// catalogs returns the labels of every language. It builds fresh maps on each call so that no
// mutable state lives at package level; New calls it once.
func catalogs() map[string]translator {
	c := map[string]translator{langEN: messagesEN(), langES: messagesES()}
	addOutboxMessages(c)
	return c
}

// pickLanguage chooses the page language: the lang cookie set by the switch, else the best match
// of Accept-Language (es* → Spanish), else English.
func pickLanguage(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && supported(c.Value) {
		return c.Value
	}
	return parseAcceptLanguage(r.Header.Get("Accept-Language"))
}

func supported(lang string) bool {
	for _, l := range languages() {
		if l == lang {
			return true
		}
	}
	return false
}

// parseAcceptLanguage returns the supported language the header prefers (by q-value, then by
// order), or "en". Malformed entries are skipped.
func parseAcceptLanguage(header string) string {
	type choice struct {
		lang string
		q    float64
		pos  int
	}
	var cs []choice
	for i, part := range strings.Split(header, ",") {
		if i >= 32 { // a real header never lists this many; bound the work
			break
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if !supported(base) {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		if q > 0 {
			cs = append(cs, choice{base, q, i})
		}
	}
	if len(cs) == 0 {
		return langEN
	}
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].q > cs[b].q })
	return cs[0].lang
}

// statusTitle is the heading of an error page of an HTTP status, in the translator's language.
func (t translator) statusTitle(status int) string {
	if s, ok := t["http_"+strconv.Itoa(status)]; ok {
		return s
	}
	return http.StatusText(status)
}
