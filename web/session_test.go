package web

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

func TestSessionToken(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	s := signer{key: []byte("k1")}
	want := session{Principal: aviso.Principal{KeyID: "key_1", TenantID: "acme"}, Expires: now.Add(time.Hour), Nonce: "n1", Gen: "g1"}
	tok := s.sessionToken(want)

	tests := []struct {
		name  string
		token string
		at    time.Time
		ok    bool
	}{
		{"valid", tok, now, true},
		{"expired", tok, now.Add(time.Hour), false},
		{"other key", signer{key: []byte("k2")}.sessionToken(want), now, false},
		{"portal token is not a session", s.portalToken("acme", now.Add(time.Hour)), now, false},
		{"tampered payload", "x" + tok[1:], now, false},
		{"no mac", strings.Split(tok, ".")[0], now, false},
		{"no generation", s.sessionToken(session{Principal: want.Principal, Expires: want.Expires, Nonce: "n1"}), now, false},
		{"empty", "", now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.parseSession(tt.token, tt.at)
			if (err == nil) != tt.ok {
				t.Fatalf("parseSession: err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && (got.Principal != want.Principal || !got.Expires.Equal(want.Expires) || got.Nonce != want.Nonce || got.Gen != want.Gen) {
				t.Errorf("parseSession = %+v, want %+v", got, want)
			}
		})
	}
}

func TestCSRFToken(t *testing.T) {
	s := signer{key: []byte("k")}
	a := session{Nonce: "a"}
	tests := []struct {
		name string
		got  string
		ok   bool
	}{
		{"own token", s.csrfToken(a), true},
		{"other session's token", s.csrfToken(session{Nonce: "b"}), false},
		{"empty", "", false},
		{"other signer", signer{key: []byte("x")}.csrfToken(a), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.checkCSRF(a, tt.got); got != tt.ok {
				t.Errorf("checkCSRF = %v, want %v", got, tt.ok)
			}
		})
	}
}

func TestPortalToken(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	s := signer{key: []byte("k")}
	tests := []struct {
		name   string
		token  string
		tenant string // "" when the token must be refused
	}{
		{"valid", s.portalToken("acme", now.Add(time.Minute)), "acme"},
		{"expired", s.portalToken("acme", now), ""},
		{"bad tenant id", s.portalToken("a|b", now.Add(time.Minute)), ""},
		{"session token is not a portal token", s.sessionToken(session{Principal: aviso.Principal{KeyID: "k", TenantID: "acme"}, Expires: now.Add(time.Hour), Nonce: "n", Gen: "g"}), ""},
		{"forged", signer{key: []byte("other")}.portalToken("acme", now.Add(time.Minute)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.parsePortal(tt.token, now)
			if tt.tenant == "" {
				if err == nil {
					t.Fatalf("parsePortal accepted %q as tenant %q", tt.token, got)
				}
				return
			}
			if err != nil || got != tt.tenant {
				t.Fatalf("parsePortal = %q, %v; want %q", got, err, tt.tenant)
			}
		})
	}
}

func FuzzParseSession(f *testing.F) {
	s := signer{key: []byte("k")}
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	f.Add(s.sessionToken(session{Principal: aviso.Principal{KeyID: "root"}, Expires: now.Add(time.Hour), Nonce: "n", Gen: "g"}))
	f.Add("a.b")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := s.parseSession(tok, now)
		if err != nil {
			return
		}
		// Whatever parses must be exactly what the signer would have produced.
		if s.sessionToken(got) != tok {
			t.Fatalf("token %q parsed to %+v, which signs differently", tok, got)
		}
	})
}

func FuzzParsePortal(f *testing.F) {
	s := signer{key: []byte("k")}
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	f.Add(s.portalToken("acme", now.Add(time.Hour)))
	f.Add("YWNtZXwx.abc")
	f.Fuzz(func(t *testing.T, tok string) {
		tenant, err := s.parsePortal(tok, now)
		if err == nil && !aviso.ValidTenantID(tenant) {
			t.Fatalf("token %q gave invalid tenant %q", tok, tenant)
		}
	})
}

func TestParseAcceptLanguage(t *testing.T) {
	tests := []struct{ name, header, want string }{
		{"empty", "", "en"},
		{"spanish", "es", "es"},
		{"spanish region", "es-AR,es;q=0.9", "es"},
		{"english first", "en-US,es;q=0.5", "en"},
		{"q decides", "en;q=0.3, es-MX;q=0.8", "es"},
		{"unsupported only", "fr-FR,de", "en"},
		{"unsupported then spanish", "fr, es;q=0.1", "es"},
		{"zero q refused", "es;q=0", "en"},
		{"malformed q skipped", "es;q=abc, en;q=0.2", "en"},
		{"upper case", "ES-es", "es"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseAcceptLanguage(tt.header); got != tt.want {
				t.Errorf("parseAcceptLanguage(%q) = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

func FuzzParseAcceptLanguage(f *testing.F) {
	for _, s := range []string{"es-AR,es;q=0.9", "en;q=0.3, es;q=0.8", "*", ";q=", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		if got := parseAcceptLanguage(header); !supported(got) {
			t.Fatalf("parseAcceptLanguage(%q) = %q, not a supported language", header, got)
		}
	})
}

func TestPickLanguageCookieWins(t *testing.T) {
	r, _ := http.NewRequest("GET", "/ui/", nil)
	r.Header.Set("Accept-Language", "es")
	r.AddCookie(&http.Cookie{Name: langCookie, Value: "en"})
	if got := pickLanguage(r); got != "en" {
		t.Errorf("pickLanguage = %q, want the cookie's en", got)
	}
}

// TestMessagesComplete checks that both languages have the same keys, that no label is empty
// and that every key the templates and handlers use exists.
func TestMessagesComplete(t *testing.T) {
	cats := catalogs()
	en, es := cats["en"], cats["es"]
	for _, pair := range []struct {
		name     string
		from, to translator
	}{{"en→es", en, es}, {"es→en", es, en}} {
		t.Run(pair.name, func(t *testing.T) {
			for k, v := range pair.from {
				if _, ok := pair.to[k]; !ok {
					t.Errorf("key %q is missing", k)
				}
				if strings.TrimSpace(v) == "" {
					t.Errorf("key %q is empty", k)
				}
			}
		})
	}
	t.Run("used keys exist", func(t *testing.T) {
		used := map[string]bool{}
		files, err := os.ReadDir("templates")
		if err != nil {
			t.Fatal(err)
		}
		tmplKey := regexp.MustCompile(`\{\{t "([a-z0-9_]+)"`)
		for _, f := range files {
			b, err := os.ReadFile("templates/" + f.Name())
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tmplKey.FindAllStringSubmatch(string(b), -1) {
				used[m[1]] = true
			}
		}
		goKey := regexp.MustCompile(`"((?:error|flash)_[a-z_]+)"|redirect\([^\n]*, "([a-z_]+)"\)|\bT\("([a-z0-9_]+)"\)`)
		gofiles, err := filepath.Glob("*.go")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range gofiles {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range goKey.FindAllStringSubmatch(string(b), -1) {
				switch {
				case m[1] != "":
					used[m[1]] = true
				case m[2] != "":
					used["flash_"+m[2]] = true
				default:
					used[m[3]] = true
				}
			}
		}
		for _, p := range attemptProblems {
			used[p.key] = true
		}
		for _, w := range chartWindows { // built with print in endpoint.html
			used[w.Title], used["window_"+w.Name], used["chart_title_"+w.Name], used["chart_desc_"+w.Name] = true, true, true, true
		}
		for _, s := range []string{"pending", "succeeded", "failed"} {
			used["status_"+s] = true // built with print in deliveries.html
		}
		var missing []string
		for k := range used {
			if _, ok := en[k]; !ok {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("keys used but not translated: %v", missing)
		}
		if len(used) < 50 {
			t.Errorf("found only %d used keys: the scan is broken", len(used))
		}
	})
}

func TestNewChart(t *testing.T) {
	start := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	var buckets []aviso.HistogramBucket
	for i := range 24 {
		buckets = append(buckets, aviso.HistogramBucket{Start: start.Add(time.Duration(i) * time.Hour)})
	}
	buckets[3].Succeeded, buckets[3].Failed = 6, 2
	buckets[10].Failed = 4
	c := newChart("c", chartWindows[0], buckets)
	if c.Max != 8 || c.Succeeded != 6 || c.Failed != 6 || len(c.Bars) != 24 || len(c.XTicks) != 4 {
		t.Fatalf("chart = max %d, %d ok, %d failed, %d bars, %d ticks", c.Max, c.Succeeded, c.Failed, len(c.Bars), len(c.XTicks))
	}
	if len(c.YTicks) != 3 || c.YTicks[0].Label != "0" || c.YTicks[1].Label != "4" || c.YTicks[2].Label != "8" ||
		c.YTicks[1].Y != (c.Base+c.Top)/2 || c.YTicks[2].Y != c.Top {
		t.Errorf("y axis ticks %+v, want 0, 4 and 8 at the base, the middle and the top", c.YTicks)
	}
	if c.XTicks[1].Label != "06:00" {
		t.Errorf("x tick %q, want 06:00", c.XTicks[1].Label)
	}
	tall := c.Bars[3]
	if tall.OkH+tall.BadH != c.Base-c.Top || tall.OkH < 2*tall.BadH || tall.OkH > 4*tall.BadH {
		t.Errorf("tallest bar heights ok %d bad %d, want a full-height stack about 3:1", tall.OkH, tall.BadH)
	}
	if tall.BadY+tall.BadH != tall.OkY || tall.OkY+tall.OkH != c.Base {
		t.Errorf("bar segments do not stack on the base line: %+v", tall)
	}
	if c.Bars[0].OkH != 0 || c.Bars[0].BadH != 0 {
		t.Errorf("empty bucket drawn: %+v", c.Bars[0])
	}
	week := newChart("w", chartWindows[1], make([]aviso.HistogramBucket, 28))
	if len(week.Bars) != 28 || len(week.XTicks) != 7 || len(week.YTicks) != 1 {
		t.Errorf("7-day chart: %d bars, %d x ticks, %d y ticks; want 28 six-hour bars, a tick a day, only 0 on y", len(week.Bars), len(week.XTicks), len(week.YTicks))
	}
	if e := newChart("e", chartWindows[0], nil); len(e.Bars) != 0 || e.Max != 0 {
		t.Errorf("empty chart = %+v", e)
	}
}

func TestLocalPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/ui/t/acme/endpoints?x=1", "/ui/t/acme/endpoints?x=1"},
		{"https://evil.example/", "/ui/"},
		{"//evil.example/ui/", "/ui/"},
		{"/ui/\\evil", "/ui/"},
		{"", "/ui/"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := localPath(tt.in); got != tt.want {
				t.Errorf("localPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
