package aviso_test

import (
	"testing"

	"github.com/aviso-dev/aviso"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://h.example/hook?token=abc":          "https://h.example/hook",
		"https://user:pw@h.example:8443/p?q=1#frag": "https://h.example:8443/p",
		"http://h.example/?":                        "http://h.example/",
		"http://h.example/a%20b":                    "http://h.example/a%20b",
		// Unparseable: cut by the text.
		"://bad": "://bad",
		"https://aviso:pw@exa mple.com/hook?token=abc": "https://exa mple.com/hook",
		"https://u:p?w#d@h st/x?q#f":                   "https://h st/x",
		"https://h st/a?b@c":                           "https://c", // the last '@' wins: never a password
		"%zz/p?token=abc":                              "%zz/p",
	} {
		if got := aviso.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
